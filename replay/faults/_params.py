"""Parameter types of fault specs: durations, probabilities, links, node groups, rates, delays.

Each is a `Param`: a parser from spec text to a typed value, raising `FaultSpecError` with the
spec and the bad token, and a formatter that prints the canonical spelling (so a plan prints
back to specs that parse to the same plan).
"""

from __future__ import annotations

import fnmatch
import math
import random
import re
from dataclasses import dataclass

from edgetrace import _units as units
from edgetrace._errors import FaultSpecError
from edgetrace.replay.faults._base import Param

__all__ = [
    "BOOL", "COPIES", "COUNT", "DELAY", "DURATION", "LINK", "MODEL_MODES", "NODES", "NUMBER", "POSITIVE",
    "PROBABILITY", "RATE", "SIGNED_DURATION", "Delay", "Link", "Rate", "choice", "glob", "parse_duration",
]

DISTRIBUTIONS = ("uniform", "normal", "exp", "lognormal")
MODEL_MODES = ("error", "empty_output", "truncated_output", "slow")


def parse_duration(text: str, *, key: str = "duration", spec: str = "", signed: bool = False) -> int:
    """'2s', '150ms', '500us', '1.5m' → integer ns (a unit is required in a spec)."""
    try:
        return units.parse_duration(str(text), signed=signed)
    except ValueError as exc:
        raise FaultSpecError(f"bad duration {text!r} for {key!r} in {spec!r}: {exc}", spec=spec,
                             token=str(text)) from None


DURATION: Param[int] = Param(lambda t, k, key, s: parse_duration(t, key=key, spec=s), units.format_duration)
SIGNED_DURATION: Param[int] = Param(lambda t, k, key, s: parse_duration(t, key=key, spec=s, signed=True),
                                    units.format_duration)


@dataclass(frozen=True)
class Delay:
    """A fixed delay or a distribution of delays (ns)."""

    dist: str
    a: int
    b: int = 0

    @classmethod
    def parse(cls, text: str, kind: str, key: str, spec: str) -> Delay:
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
        fmt = units.format_duration
        if self.dist == "fixed":
            return fmt(self.a)
        if self.dist == "exp":
            return f"exp({fmt(self.a)})"
        return f"{self.dist}({fmt(self.a)},{fmt(self.b)})"


DELAY: Param[Delay] = Param(Delay.parse, str)


def _probability(text: str, kind: str, key: str, spec: str) -> float:
    try:
        p = float(text)
    except ValueError:
        p = -1.0
    if not 0.0 <= p <= 1.0:
        raise FaultSpecError(f"bad probability {text!r} for 'p' in {spec!r}; expected a number from 0 to 1",
                             spec=spec, token=text)
    return p


PROBABILITY: Param[float] = Param(_probability, lambda p: f"{p:g}")


def _count(minimum: int) -> Param[int]:
    def parse(text: str, kind: str, key: str, spec: str) -> int:
        if not text.isdigit() or int(text) < minimum:
            raise FaultSpecError(f"bad {key} {text!r} in {spec!r}; expected a whole number", spec=spec, token=text)
        return int(text)

    return Param(parse, str)


COUNT = _count(0)
COPIES = _count(1)


def _number(text: str, kind: str, key: str, spec: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise FaultSpecError(f"bad {key} {text!r} in {spec!r}; expected a number", spec=spec, token=text) from None
    return number


def _positive(text: str, kind: str, key: str, spec: str) -> float:
    number = _number(text, kind, key, spec)
    if number <= 0:
        raise FaultSpecError(f"bad {key} {text!r} in {spec!r}; expected a number above 0", spec=spec, token=text)
    return number


NUMBER: Param[float] = Param(_number, lambda x: f"{x:g}")
POSITIVE: Param[float] = Param(_positive, lambda x: f"{x:g}")

_RATE = re.compile(r"^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit|B/s|kB/s|MB/s)$")
_RATE_BPS = {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "B/s": 8, "kB/s": 8e3, "MB/s": 8e6}


@dataclass(frozen=True)
class Rate:
    """A link rate in bits per second, printed as it was written."""

    bps: float
    text: str

    def __str__(self) -> str:
        return self.text


def _rate(text: str, kind: str, key: str, spec: str) -> Rate:
    m = _RATE.match(text)
    if m is None:
        raise FaultSpecError(f"bad rate {text!r} in {spec!r}; expected e.g. 64kbit, 1mbit or 10kB/s",
                             spec=spec, token=text)
    return Rate(float(m.group(1)) * _RATE_BPS[m.group(2)], text)


RATE: Param[Rate] = Param(_rate, str)


def _bool(text: str, kind: str, key: str, spec: str) -> bool:
    if text not in ("true", "false"):
        raise FaultSpecError(f"bad {key} {text!r} in {spec!r}; expected true or false", spec=spec, token=text)
    return text == "true"


BOOL: Param[bool] = Param(_bool, lambda b: "true" if b else "false")


@dataclass(frozen=True)
class Link:
    """`SRC->DST` or `A<->B`, globs allowed on both ends."""

    src: str
    dst: str
    both: bool

    def matches(self, src: str, dst: str) -> bool:
        forward = fnmatch.fnmatchcase(src, self.src) and fnmatch.fnmatchcase(dst, self.dst)
        return forward or (self.both and fnmatch.fnmatchcase(src, self.dst) and fnmatch.fnmatchcase(dst, self.src))

    def __str__(self) -> str:
        return f"{self.src}{'<->' if self.both else '->'}{self.dst}"


def _link(text: str, kind: str, key: str, spec: str) -> Link:
    both = "<->" in text
    a, sep, b = text.partition("<->" if both else "->")
    if not sep or not a.strip() or not b.strip():
        raise FaultSpecError(f"bad link {text!r} in {spec!r}; expected SRC->DST or A<->B (globs allowed)",
                             spec=spec, token=text)
    return Link(a.strip(), b.strip(), both)


LINK: Param[Link] = Param(_link, str, target="link")


def _nodes(text: str, kind: str, key: str, spec: str) -> tuple[str, ...]:
    return tuple(g.strip() for g in text.split("|") if g.strip())


NODES: Param[tuple[str, ...]] = Param(_nodes, "|".join, target="node")


def glob(target: str) -> Param[str]:
    """A glob over names of `target` (node, model, policy, topic, op, key), kept as written."""
    return Param(lambda t, k, key, s: t, str, target=target)



def choice(options: tuple[str, ...], what: str) -> Param[str]:
    def parse(text: str, kind: str, key: str, spec: str) -> str:
        if text not in options:
            raise FaultSpecError(f"{kind}: unknown {what} {text!r} in {spec!r}; expected one of: "
                                 f"{', '.join(options)}", spec=spec, token=text)
        return text

    return Param(parse, str)
