"""Fault plans: what to break in a replay, parsed from spec strings and TOML files.

A spec is ``kind(key=value, ...)``, e.g. ``latency(op=state.put, delay=2s)`` or
``partition(nodes=tractor-03, at=10s, for=60s)``; several may be joined with ``;``. A TOML
plan holds the same as ``[[fault]]`` tables, where a bare number for a duration means
seconds. Both produce the typed fault values of the registered kinds. The grammar, every
kind and the order effects apply in: docs/faults.md.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from edgetrace._errors import FaultSpecError
from edgetrace.replay.faults._base import REGISTRY, Fault
from edgetrace.replay.faults._catalogue import FaultKind

__all__ = ["FaultPlan", "parse_fault", "parse_specs"]

F = TypeVar("F", bound=Fault)


def _kinds() -> str:
    return ", ".join(sorted(k.value for k in FaultKind))


def build_fault(kind_text: str, raw: Mapping[str, Any], *, spec: str) -> Fault:
    cls = REGISTRY.get(kind_text)
    if cls is None:
        raise FaultSpecError(f"unknown fault kind {kind_text!r} in {spec!r}; expected one of: {_kinds()}",
                             spec=spec, token=kind_text)
    return cls.build(raw, spec=spec)


def _split_top(text: str, sep: str) -> list[str]:
    """Split on `sep` outside parentheses."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def parse_specs(text: str) -> list[Fault]:
    """Every fault in a spec string (``;``-separated)."""
    found = []
    for part in _split_top(text, ";"):
        spec = part.strip()
        if not spec:
            continue
        m = re.fullmatch(r"([A-Za-z_][\w]*)\s*\((.*)\)", spec, re.DOTALL)
        if m is None:
            head = re.match(r"[A-Za-z_]\w*", spec)
            if head and head.group(0) not in REGISTRY:
                raise FaultSpecError(f"unknown fault kind {head.group(0)!r} in {spec!r}; expected one of: {_kinds()}",
                                     spec=spec, token=head.group(0))
            raise FaultSpecError(f"bad fault spec {spec!r}; expected KIND(key=value, ...), e.g. "
                                 "latency(op=state.put, delay=2s)", spec=spec, token=spec[:20])
        kind, body = m.group(1), m.group(2)
        if body.count("(") != body.count(")"):
            raise FaultSpecError(f"unbalanced parentheses in {spec!r}", spec=spec, token=body)
        raw: dict[str, str] = {}
        for item in _split_top(body, ","):
            item = item.strip()
            if not item:
                continue
            key, eq, value = item.partition("=")
            key = key.strip()
            if not eq or not re.fullmatch(r"[a-z_]+", key):
                raise FaultSpecError(f"bad argument {item!r} in {spec!r}; expected key=value", spec=spec, token=item)
            if key in raw:
                raise FaultSpecError(f"{kind}: {key!r} given twice in {spec!r}", spec=spec, token=key)
            raw[key] = value.strip()
        found.append(build_fault(kind, raw, spec=spec))
    return found


def parse_fault(text: str) -> Fault:
    faults = parse_specs(text)
    if len(faults) != 1:
        raise FaultSpecError(f"expected exactly one fault in {text!r}, found {len(faults)}", spec=text)
    return faults[0]


_SECONDS = frozenset({"at", "for", "until", "gap", "amount", "window", "restart", "offset", "delay"})


def _toml_text(key: str, value: Any) -> str:
    """TOML numbers for durations mean seconds; everything else is taken as written."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)) and key in _SECONDS:
        return f"{value}s"
    return str(value)


@dataclass(frozen=True)
class FaultPlan:
    """An ordered set of faults plus a name and an optional default seed."""

    faults: tuple[Fault, ...] = ()
    name: str = ""
    description: str = ""
    seed: int | None = None

    @classmethod
    def parse(cls, specs: Sequence[str] = (), files: Sequence[Path | str] = ()) -> FaultPlan:
        plan = cls()
        for path in files:
            plan = plan + cls.load(path)
        faults = [f for spec in specs for f in parse_specs(spec)]
        return plan + cls(tuple(faults))

    @classmethod
    def load(cls, path: Path | str) -> FaultPlan:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise FaultSpecError(f"cannot read fault plan {path}: {exc.strerror}", spec=str(path)) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise FaultSpecError(f"fault plan {path} is not valid TOML: {exc}", spec=str(path)) from None
        return cls.from_mapping(data, where=str(path))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, where: str = "plan") -> FaultPlan:
        allowed = {"name", "description", "seed", "fault"}
        for key in data:
            if key not in allowed:
                raise FaultSpecError(f"{where}: unknown key {key!r}; expected one of: {', '.join(sorted(allowed))}",
                                     spec=where, token=key)
        seed = data.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise FaultSpecError(f"{where}: seed must be a whole number, got {seed!r}", spec=where, token="seed")
        tables = data.get("fault", [])
        if not isinstance(tables, list):
            raise FaultSpecError(f"{where}: 'fault' must be an array of tables ([[fault]])", spec=where, token="fault")
        faults = []
        for i, table in enumerate(tables):
            if not isinstance(table, Mapping):
                raise FaultSpecError(f"{where}: fault[{i}] must be a table", spec=where, token=f"fault[{i}]")
            kind = table.get("kind")
            if not isinstance(kind, str):
                raise FaultSpecError(f"{where}: fault[{i}] needs kind = \"...\"; expected one of: {_kinds()}",
                                     spec=where, token="kind")
            raw = {k: v for k, v in table.items() if k != "kind"}
            for k, v in raw.items():
                if not isinstance(v, (str, int, float, bool)):
                    raise FaultSpecError(f"{where}: fault[{i}].{k} must be a string or number", spec=where, token=k)
            faults.append(build_fault(kind, {k: _toml_text(k, v) for k, v in raw.items()},
                                      spec=f"{where} fault[{i}]"))
        return cls(tuple(faults), str(data.get("name", "")), str(data.get("description", "")), seed)

    def __add__(self, other: FaultPlan) -> FaultPlan:
        return FaultPlan(self.faults + other.faults, self.name or other.name,
                         self.description or other.description, self.seed if self.seed is not None else other.seed)

    def __bool__(self) -> bool:
        return bool(self.faults)

    def specs(self) -> list[str]:
        return [str(f) for f in self.faults]

    def of(self, kind: type[F]) -> Iterator[F]:
        """The plan's faults of one family or kind, in plan order."""
        return (f for f in self.faults if isinstance(f, kind))
