"""What every fault kind is made of: typed parameters, scopes, and the registry of kinds.

A fault kind is a frozen dataclass whose fields are its parameters, each declared with a
`Param` that parses the spec text into a typed value and prints it back canonically. The
grammar (`kind(key=value, ...)`) and the TOML loader build instances through `Fault.build`,
which checks unknown, missing and empty keys the same way for every kind. Registering a class
(`@register`) is all it takes to make a new kind parse, print, load from TOML and appear in
error messages; its effect is one of the hooks the injector calls (see `_injector.py`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from edgetrace._errors import FaultSpecError

__all__ = ["REGISTRY", "Fault", "Param", "param", "register"]

T = TypeVar("T")
F = TypeVar("F", bound="type[Fault]")


@dataclass(frozen=True)
class Param(Generic[T]):
    """How one argument is read from spec text and written back.

    `target` says what the value names in a session (node, link, model, policy, topic, op,
    key), so plans can be checked against what a session holds.
    """

    parse: Callable[[str, str, str, str], T]  # (text, kind, key, spec) -> value
    format: Callable[[T], str]
    target: str = ""


def param(p: Param[Any], *, key: str | None = None, required: bool = False) -> Any:
    """A dataclass field that is a fault parameter (`key` when the spec name is a Python keyword)."""
    meta = {"param": p, "key": key}
    if required:
        return field(metadata=meta)
    return field(default=None, metadata=meta)


REGISTRY: dict[str, type[Fault]] = {}


def register(cls: F) -> F:
    """Make a fault kind known to the grammar, the TOML loader and the injector."""
    names = {key for key, _, _ in cls.params()}
    if set(cls.keys) != names or len(cls.keys) != len(names):
        raise TypeError(f"{cls.__name__}.keys {cls.keys} must list exactly its parameters {sorted(names)}")
    REGISTRY[cls.name] = cls
    return cls


@dataclass(frozen=True, kw_only=True)
class Fault:
    """One fault of a plan. Subclasses are frozen dataclasses of typed parameters."""

    name: ClassVar[str]
    #: Spec keys in canonical order (how `str()` prints them).
    keys: ClassVar[tuple[str, ...]]

    @classmethod
    def params(cls) -> Iterator[tuple[str, str, Param[Any]]]:
        """(spec key, attribute name, Param) for every parameter."""
        for f in dataclasses.fields(cls):
            p = f.metadata.get("param")
            if p is not None:
                yield f.metadata.get("key") or f.name, f.name, p

    @classmethod
    def required(cls) -> tuple[str, ...]:
        found = {f.metadata.get("key") or f.name for f in dataclasses.fields(cls)
                 if "param" in f.metadata and f.default is dataclasses.MISSING}
        return tuple(k for k in cls.keys if k in found)

    @classmethod
    def build(cls, raw: Mapping[str, Any], *, spec: str) -> Fault:
        """An instance from raw text values (spec arguments or TOML values turned into text)."""
        allowed = cls.keys
        for key in raw:
            if key not in allowed:
                raise FaultSpecError(f"{cls.name}: unknown key {key!r} in {spec!r}; expected one of: "
                                     f"{', '.join(sorted(allowed))}", spec=spec, token=key)
        for key in cls.required():
            if key not in raw:
                raise FaultSpecError(f"{cls.name}: missing {key!r} in {spec!r}", spec=spec, token=cls.name)
        values: dict[str, Any] = {}
        by_key = {key: (attr_name, p) for key, attr_name, p in cls.params()}
        for key in allowed:
            if key not in raw:
                continue
            value = raw[key]
            text = str(value).lower() if isinstance(value, bool) else str(value).strip()
            if text == "":
                raise FaultSpecError(f"{cls.name}: empty value for {key!r} in {spec!r}", spec=spec, token=key)
            attr_name, p = by_key[key]
            values[attr_name] = p.parse(text, cls.name, key, spec)
        if "for" in raw and "until" in raw:
            raise FaultSpecError(f"{cls.name}: give 'for' or 'until', not both, in {spec!r}", spec=spec,
                                 token="until")
        fault = cls(**values)
        fault.check(spec)
        return fault

    def check(self, spec: str) -> None:
        """Cross-parameter rules of a kind; raise FaultSpecError naming the spec."""

    def args(self) -> tuple[tuple[str, str], ...]:
        """(key, canonical text) of every given parameter, in canonical order."""
        given = {key: p.format(getattr(self, attr_name)) for key, attr_name, p in self.params()
                 if getattr(self, attr_name) is not None}
        return tuple((k, given[k]) for k in self.keys if k in given)

    @property
    def kind(self) -> Any:
        from edgetrace.replay.faults._catalogue import FaultKind

        return FaultKind(self.name)

    @property
    def spec(self) -> str:
        return str(self)

    def __str__(self) -> str:
        return f"{self.name}(" + ", ".join(f"{k}={v}" for k, v in self.args()) + ")"

    def targets(self) -> Iterator[tuple[str, str, Any]]:
        """(target kind, spec key, value) of every parameter that names something in a session."""
        for key, attr_name, p in self.params():
            value = getattr(self, attr_name)
            if p.target and value is not None:
                yield p.target, key, value
