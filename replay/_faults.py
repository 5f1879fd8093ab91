"""Fault plans: what to break in a replay, parsed from spec strings and TOML files.

A spec is ``kind(key=value, ...)``, e.g. ``latency(op=state.put, delay=2s)`` or
``partition(nodes=tractor-03, at=10s, for=60s)``; several may be joined with ``;``. A TOML
plan holds the same as ``[[fault]]`` tables. The simulator asks the plan pure questions —
"what happens to this message?", "what does this node's clock read?" — and passes in the RNG
to draw from, so a plan never holds state and a replay with the same seed draws the same.
The grammar, every kind and the order effects apply in: docs/faults.md.
"""

from __future__ import annotations

import enum
import fnmatch
import math
import random
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgetrace import _units as units
from edgetrace._errors import FaultSpecError

__all__ = ["Fault", "FaultKind", "FaultPlan", "ModelFault", "parse_duration"]


class FaultKind(enum.StrEnum):
    LATENCY = "latency"
    JITTER = "jitter"
    DROP = "drop"
    DUPLICATE = "duplicate"
    REORDER = "reorder"
    PARTITION = "partition"
    BANDWIDTH = "bandwidth"
    SKEW = "skew"
    DRIFT = "drift"
    CRASH = "crash"
    PAUSE = "pause"
    MODEL = "model"
    RULE_TIMEOUT = "rule_timeout"
    STATE_UNAVAILABLE = "state_unavailable"


_WINDOW = ("at", "for", "until")
_NET_SCOPE = ("link", "nodes", "op", "topic", *_WINDOW, "p")
KEYS: dict[FaultKind, tuple[str, ...]] = {
    FaultKind.LATENCY: ("delay", *_NET_SCOPE),
    FaultKind.JITTER: ("amount", *_NET_SCOPE),
    FaultKind.DROP: _NET_SCOPE,
    FaultKind.DUPLICATE: ("copies", "gap", *_NET_SCOPE),
    FaultKind.REORDER: ("window", *_NET_SCOPE),
    FaultKind.PARTITION: ("nodes", "link", "oneway", "op", "topic", *_WINDOW),
    FaultKind.BANDWIDTH: ("rate", *_NET_SCOPE),
    FaultKind.SKEW: ("node", "offset"),
    FaultKind.DRIFT: ("node", "ppm"),
    FaultKind.CRASH: ("node", "at", "restart"),
    FaultKind.PAUSE: ("node", "at", "for", "until"),
    FaultKind.MODEL: ("name", "fault", "factor", "delay", "tokens", "node", *_WINDOW, "p"),
    FaultKind.RULE_TIMEOUT: ("policy", "node", *_WINDOW, "p"),
    FaultKind.STATE_UNAVAILABLE: ("op", "key", "node", *_WINDOW, "p"),
}
REQUIRED: dict[FaultKind, tuple[str, ...]] = {
    FaultKind.LATENCY: ("delay",),
    FaultKind.JITTER: ("amount",),
    FaultKind.REORDER: ("window",),
    FaultKind.BANDWIDTH: ("rate",),
    FaultKind.SKEW: ("node", "offset"),
    FaultKind.DRIFT: ("node", "ppm"),
    FaultKind.CRASH: ("node", "at"),
    FaultKind.PAUSE: ("node", "at"),
    FaultKind.MODEL: ("fault",),
}
MODEL_MODES = ("error", "empty_output", "truncated_output", "slow")
DISTRIBUTIONS = ("uniform", "normal", "exp", "lognormal")

_RATE = re.compile(r"^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit|B/s|kB/s|MB/s)$")
_RATE_BPS = {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "B/s": 8, "kB/s": 8e3, "MB/s": 8e6}


def parse_duration(text: str, *, key: str = "duration", spec: str = "", signed: bool = False) -> int:
    """'2s', '150ms', '500us', '1.5m' → integer ns (a unit is required in a spec)."""
    try:
        return units.parse_duration(str(text), signed=signed)
    except ValueError as exc:
        raise FaultSpecError(f"bad duration {text!r} for {key!r} in {spec!r}: {exc}", spec=spec, token=str(text)) from None


_fmt_ns = units.format_duration


@dataclass(frozen=True)
class _Delay:
    """A fixed delay or a distribution of delays (ns)."""

    dist: str
    a: int
    b: int = 0

    @classmethod
    def parse(cls, text: str, *, key: str, spec: str) -> _Delay:
        m = re.fullmatch(r"(\w+)\((.*)\)", text.strip())
        if m is None:
            return cls("fixed", parse_duration(text, key=key, spec=spec))
        name, args = m.group(1), [a.strip() for a in m.group(2).split(",")]
        if name not in DISTRIBUTIONS:
            raise FaultSpecError(f"unknown distribution {name!r} for {key!r} in {spec!r}; expected one of: "
                                 f"{', '.join(DISTRIBUTIONS)}", spec=spec, token=name)
        want = 1 if name == "exp" else 2
        if len(args) != want:
            raise FaultSpecError(f"{name}() takes {want} duration(s) in {spec!r}, got {len(args)}", spec=spec,
                                 token=text)
        values = [parse_duration(a, key=key, spec=spec) for a in args]
        if name == "uniform" and values[1] < values[0]:
            raise FaultSpecError(f"uniform({args[0]}, {args[1]}) in {spec!r}: the upper bound is below the lower",
                                 spec=spec, token=text)
        return cls(name, values[0], values[1] if want == 2 else 0)

    def draw(self, rng: random.Random) -> int:
        if self.dist == "fixed":
            return self.a
        if self.dist == "uniform":
            return rng.randint(self.a, self.b)
        if self.dist == "normal":
            return max(0, int(rng.gauss(self.a, self.b)))
        if self.dist == "exp":
            return int(rng.expovariate(1.0 / max(self.a, 1)))
        # lognormal: median a, spread factor b/a
        sigma = math.log(max(self.b, self.a + 1) / max(self.a, 1))
        return int(self.a * math.exp(rng.gauss(0.0, sigma)))

    def __str__(self) -> str:
        if self.dist == "fixed":
            return _fmt_ns(self.a)
        if self.dist == "exp":
            return f"exp({_fmt_ns(self.a)})"
        return f"{self.dist}({_fmt_ns(self.a)},{_fmt_ns(self.b)})"


@dataclass(frozen=True)
class ModelFault:
    mode: str
    factor: float
    extra_ns: int
    tokens: int
    spec: str


@dataclass(frozen=True)
class Fault:
    """One fault: a kind, its arguments (canonical text), and parsed values."""

    kind: FaultKind
    args: tuple[tuple[str, str], ...]
    values: Mapping[str, Any] = field(compare=False, hash=False, repr=False, default_factory=dict)

    @property
    def spec(self) -> str:
        return str(self)

    def __str__(self) -> str:
        return f"{self.kind.value}(" + ", ".join(f"{k}={v}" for k, v in self.args) + ")"

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    @property
    def p(self) -> float:
        return float(self.values.get("p", 1.0))

    @classmethod
    def parse(cls, text: str) -> Fault:
        faults = _parse_specs(text)
        if len(faults) != 1:
            raise FaultSpecError(f"expected exactly one fault in {text!r}, found {len(faults)}", spec=text)
        return faults[0]

    @classmethod
    def build(cls, kind_text: str, raw: Mapping[str, Any], *, spec: str) -> Fault:
        try:
            kind = FaultKind(kind_text)
        except ValueError:
            raise FaultSpecError(
                f"unknown fault kind {kind_text!r} in {spec!r}; expected one of: "
                f"{', '.join(sorted(k.value for k in FaultKind))}", spec=spec, token=kind_text) from None
        allowed = KEYS[kind]
        for key in raw:
            if key not in allowed:
                raise FaultSpecError(f"{kind.value}: unknown key {key!r} in {spec!r}; expected one of: "
                                     f"{', '.join(sorted(allowed))}", spec=spec, token=key)
        for key in REQUIRED.get(kind, ()):
            if key not in raw:
                raise FaultSpecError(f"{kind.value}: missing {key!r} in {spec!r}", spec=spec, token=kind.value)
        values: dict[str, Any] = {}
        canon: dict[str, str] = {}
        for key in allowed:
            if key not in raw:
                continue
            text = str(raw[key]).strip() if not isinstance(raw[key], bool) else str(raw[key]).lower()
            if text == "":
                raise FaultSpecError(f"{kind.value}: empty value for {key!r} in {spec!r}", spec=spec, token=key)
            value, text = _value(kind, key, text, spec)
            values[key] = value
            canon[key] = text
        if "for" in values and "until" in values:
            raise FaultSpecError(f"{kind.value}: give 'for' or 'until', not both, in {spec!r}", spec=spec,
                                 token="until")
        return cls(kind, tuple((k, canon[k]) for k in allowed if k in canon), values)

    # --- scope ------------------------------------------------------------------------------

    def active(self, at: int) -> bool:
        start = self.values.get("at", 0)
        if at < start:
            return False
        if "for" in self.values:
            return at < start + self.values["for"]
        if "until" in self.values:
            return at < self.values["until"]
        return True

    def heal_time(self) -> int | None:
        if "for" in self.values:
            return int(self.values.get("at", 0) + self.values["for"])
        if "until" in self.values:
            return int(self.values["until"])
        return None

    def on_link(self, src: str, dst: str) -> bool:
        link = self.values.get("link")
        if link is not None:
            a, b, both = link
            forward = fnmatch.fnmatchcase(src, a) and fnmatch.fnmatchcase(dst, b)
            backward = both and fnmatch.fnmatchcase(src, b) and fnmatch.fnmatchcase(dst, a)
            if not (forward or backward):
                return False
        nodes = self.values.get("nodes")
        if nodes is not None and self.kind is not FaultKind.PARTITION:
            if not any(fnmatch.fnmatchcase(src, g) or fnmatch.fnmatchcase(dst, g) for g in nodes):
                return False
        return True

    def on_message(self, src: str, dst: str, op: str, topic: str, at: int) -> bool:
        if not self.on_link(src, dst) or not self.active(at):
            return False
        if "op" in self.values and not fnmatch.fnmatchcase(op, self.values["op"]):
            return False
        return not ("topic" in self.values and not fnmatch.fnmatchcase(topic, self.values["topic"]))

    def on_node(self, node: str) -> bool:
        glob = self.values.get("node")
        return glob is None or fnmatch.fnmatchcase(node, glob)


def _value(kind: FaultKind, key: str, text: str, spec: str) -> tuple[Any, str]:
    """Parse one argument; return (value, canonical text)."""
    if key in ("at", "for", "until", "gap", "amount", "window", "restart"):
        ns = parse_duration(text, key=key, spec=spec)
        return ns, _fmt_ns(ns)
    if key == "offset":
        ns = parse_duration(text, key=key, spec=spec, signed=True)
        return ns, ("-" + _fmt_ns(-ns)) if ns < 0 else _fmt_ns(ns)
    if key == "delay":
        if kind is FaultKind.MODEL:
            ns = parse_duration(text, key=key, spec=spec)
            return ns, _fmt_ns(ns)
        d = _Delay.parse(text, key=key, spec=spec)
        return d, str(d)
    if key == "p":
        try:
            p = float(text)
        except ValueError:
            p = -1.0
        if not 0.0 <= p <= 1.0:
            raise FaultSpecError(f"bad probability {text!r} for 'p' in {spec!r}; expected a number from 0 to 1",
                                 spec=spec, token=text)
        return p, f"{p:g}"
    if key in ("copies", "tokens"):
        if not text.isdigit() or int(text) < (1 if key == "copies" else 0):
            raise FaultSpecError(f"bad {key} {text!r} in {spec!r}; expected a whole number", spec=spec, token=text)
        return int(text), str(int(text))
    if key in ("factor", "ppm"):
        try:
            number = float(text)
        except ValueError:
            raise FaultSpecError(f"bad {key} {text!r} in {spec!r}; expected a number", spec=spec,
                                 token=text) from None
        if key == "factor" and number <= 0:
            raise FaultSpecError(f"bad factor {text!r} in {spec!r}; expected a number above 0", spec=spec, token=text)
        return number, f"{number:g}"
    if key == "rate":
        m = _RATE.match(text)
        if m is None:
            raise FaultSpecError(f"bad rate {text!r} in {spec!r}; expected e.g. 64kbit, 1mbit or 10kB/s",
                                 spec=spec, token=text)
        return float(m.group(1)) * _RATE_BPS[m.group(2)], text
    if key == "oneway":
        if text not in ("true", "false"):
            raise FaultSpecError(f"bad oneway {text!r} in {spec!r}; expected true or false", spec=spec, token=text)
        return text == "true", text
    if key == "link":
        both = "<->" in text
        a, sep, b = text.partition("<->" if both else "->")
        if not sep or not a.strip() or not b.strip():
            raise FaultSpecError(f"bad link {text!r} in {spec!r}; expected SRC->DST or A<->B (globs allowed)",
                                 spec=spec, token=text)
        a, b = a.strip(), b.strip()
        return (a, b, both), f"{a}{'<->' if both else '->'}{b}"
    if key == "nodes":
        groups = [g.strip() for g in text.split("|") if g.strip()]
        return tuple(groups), "|".join(groups)
    if key == "fault":
        if text not in MODEL_MODES:
            raise FaultSpecError(f"model: unknown fault {text!r} in {spec!r}; expected one of: "
                                 f"{', '.join(MODEL_MODES)}", spec=spec, token=text)
        return text, text
    if key == "op" and kind is FaultKind.STATE_UNAVAILABLE and not fnmatch.fnmatchcase("state.get", text) \
            and not fnmatch.fnmatchcase("state.put", text):
        raise FaultSpecError(f"state_unavailable: op {text!r} in {spec!r} matches neither state.get nor "
                             "state.put", spec=spec, token=text)
    return text, text  # globs: node, name, policy, key, op, topic


def _split_top(text: str, sep: str) -> list[str]:
    """Split on `sep` outside parentheses."""
    parts, depth, cur = [], 0, []
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


def _parse_specs(text: str) -> list[Fault]:
    found = []
    for part in _split_top(text, ";"):
        spec = part.strip()
        if not spec:
            continue
        m = re.fullmatch(r"([A-Za-z_][\w]*)\s*\((.*)\)", spec, re.DOTALL)
        if m is None:
            head = re.match(r"[A-Za-z_]\w*", spec)
            if head and head.group(0) not in {k.value for k in FaultKind}:
                raise FaultSpecError(
                    f"unknown fault kind {head.group(0)!r} in {spec!r}; expected one of: "
                    f"{', '.join(sorted(k.value for k in FaultKind))}", spec=spec, token=head.group(0))
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
        found.append(Fault.build(kind, raw, spec=spec))
    return found


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
        faults = [f for spec in specs for f in _parse_specs(spec)]
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
                raise FaultSpecError(f"{where}: fault[{i}] needs kind = \"...\"; expected one of: "
                                     f"{', '.join(sorted(k.value for k in FaultKind))}", spec=where, token="kind")
            raw = {k: v for k, v in table.items() if k != "kind"}
            for k, v in raw.items():
                if not isinstance(v, (str, int, float, bool)):
                    raise FaultSpecError(f"{where}: fault[{i}].{k} must be a string or number", spec=where, token=k)
            faults.append(Fault.build(kind, {k: _toml_text(k, v) for k, v in raw.items()},
                                      spec=f"{where} fault[{i}]"))
        return cls(tuple(faults), str(data.get("name", "")), str(data.get("description", "")), seed)

    def __add__(self, other: FaultPlan) -> FaultPlan:
        return FaultPlan(self.faults + other.faults, self.name or other.name,
                         self.description or other.description, self.seed if self.seed is not None else other.seed)

    def __bool__(self) -> bool:
        return bool(self.faults)

    def specs(self) -> list[str]:
        return [str(f) for f in self.faults]

    def describe(self) -> list[str]:
        return [f"{f}" for f in self.faults]

    def touches(self, kind: FaultKind | str) -> bool:
        return any(f.kind == kind for f in self.faults)

    def _of(self, *kinds: FaultKind) -> Iterable[Fault]:
        return (f for f in self.faults if f.kind in kinds)

    @staticmethod
    def _fires(fault: Fault, rng: random.Random) -> bool:
        return fault.p >= 1.0 or (fault.p > 0.0 and rng.random() < fault.p)

    # --- questions the simulator asks -----------------------------------------------------

    def message(self, src: str, dst: str, op: str, topic: str, size: int, sent_at: int, base_delay: int,
                rng: random.Random) -> list[int]:
        """Delivery delays (ns) for one message: [] dropped, several duplicated.

        Order: partition, drop, latency, jitter, bandwidth, reorder, duplicate.
        """
        delay = base_delay
        for f in self._of(FaultKind.PARTITION):
            if self._partitioned(f, src, dst, op, topic, sent_at):
                heal = f.heal_time()
                if heal is None:
                    return []
                delay = max(delay, heal - sent_at + base_delay)
        for f in self._of(FaultKind.DROP):
            if f.on_message(src, dst, op, topic, sent_at) and self._fires(f, rng):
                return []
        for f in self._of(FaultKind.LATENCY):
            if f.on_message(src, dst, op, topic, sent_at) and self._fires(f, rng):
                delay += f.values["delay"].draw(rng)
        for f in self._of(FaultKind.JITTER):
            if f.on_message(src, dst, op, topic, sent_at) and self._fires(f, rng):
                amount = f.values["amount"]
                delay = max(0, delay + rng.randint(-amount, amount))
        for f in self._of(FaultKind.BANDWIDTH):
            if f.on_message(src, dst, op, topic, sent_at) and self._fires(f, rng):
                delay += int(size * 8 / f.values["rate"] * 1e9)
        for f in self._of(FaultKind.REORDER):
            if f.on_message(src, dst, op, topic, sent_at) and self._fires(f, rng):
                delay += rng.randint(0, f.values["window"])
        delays = [delay]
        for f in self._of(FaultKind.DUPLICATE):
            if f.on_message(src, dst, op, topic, sent_at) and self._fires(f, rng):
                gap = f.values.get("gap", 0)
                delays += [delay + gap * (i + 1) for i in range(f.values.get("copies", 1))]
        return delays

    @staticmethod
    def _partitioned(f: Fault, src: str, dst: str, op: str, topic: str, at: int) -> bool:
        if not f.active(at):
            return False
        if "op" in f.values and not fnmatch.fnmatchcase(op, f.values["op"]):
            return False
        if "topic" in f.values and not fnmatch.fnmatchcase(topic, f.values["topic"]):
            return False
        if "link" in f.values and not f.on_link(src, dst):
            return False
        groups = f.values.get("nodes")
        if groups is None:
            return "link" in f.values
        side = [any(fnmatch.fnmatchcase(n, g) for g in groups[:1]) for n in (src, dst)]
        if len(groups) > 1:  # a|b: cut between the two groups
            in_a = [fnmatch.fnmatchcase(n, groups[0]) for n in (src, dst)]
            in_b = [any(fnmatch.fnmatchcase(n, g) for g in groups[1:]) for n in (src, dst)]
            cut = (in_a[0] and in_b[1]) or (in_b[0] and in_a[1] and not f.values.get("oneway", False))
            return cut
        if f.values.get("oneway", False):
            return side[0] and not side[1]
        return side[0] != side[1]

    def local_time(self, node: str, true_ns: int) -> int:
        t = true_ns
        for f in self._of(FaultKind.DRIFT):
            if f.on_node(node):
                t += int(true_ns * f.values["ppm"] / 1e6)
        for f in self._of(FaultKind.SKEW):
            if f.on_node(node):
                t += f.values["offset"]
        return t

    def crashes(self, node: str) -> list[tuple[int, int | None]]:
        return sorted(((f.values["at"], f.values.get("restart")) for f in self._of(FaultKind.CRASH)
                       if f.on_node(node)), key=lambda x: (x[0], x[1] or 0))

    def pauses(self, node: str) -> list[tuple[int, int]]:
        found = []
        for f in self._of(FaultKind.PAUSE):
            if f.on_node(node):
                end = f.heal_time()
                found.append((f.values["at"], end if end is not None else f.values["at"]))
        return sorted(found)

    def model(self, node: str, model: str, at: int, rng: random.Random) -> ModelFault | None:
        for f in self._of(FaultKind.MODEL):
            if f.on_node(node) and fnmatch.fnmatchcase(model, f.values.get("name", "*")) and f.active(at) \
                    and self._fires(f, rng):
                return ModelFault(f.values["fault"], float(f.values.get("factor", 1.0 if "delay" in f.values
                                                                      else 10.0)),
                                  int(f.values.get("delay", 0)), int(f.values.get("tokens", 2)), str(f))
        return None

    def rule_timeout(self, node: str, policy: str, at: int, rng: random.Random) -> Fault | None:
        for f in self._of(FaultKind.RULE_TIMEOUT):
            if f.on_node(node) and fnmatch.fnmatchcase(policy, f.values.get("policy", "*")) and f.active(at) \
                    and self._fires(f, rng):
                return f
        return None

    def state_unavailable(self, node: str, op: str, key: str, at: int, rng: random.Random) -> Fault | None:
        for f in self._of(FaultKind.STATE_UNAVAILABLE):
            if (f.on_node(node) and fnmatch.fnmatchcase(op, f.values.get("op", "state.*"))
                    and fnmatch.fnmatchcase(key, f.values.get("key", "*")) and f.active(at) and self._fires(f, rng)):
                return f
        return None


def _toml_text(key: str, value: Any) -> str:
    """TOML numbers for durations mean seconds; everything else is taken as written."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)) and key in ("at", "for", "until", "gap", "amount", "window", "restart",
                                                   "offset", "delay"):
        return f"{value}s"
    return str(value)
