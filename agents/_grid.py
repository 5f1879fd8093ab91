"""Grid and link profiles: how slow and lossy the links between nodes are.

A profile is used twice: live, to emulate a 4G link on loopback (the sender holds each
message for a drawn delay, or loses it), and in replay, to time messages the recording
never saw (a retry, a new message after a policy swap). Draws come from an RNG the caller
seeds, so a replay's new messages are timed the same way every run.
"""

from __future__ import annotations

import fnmatch
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgetrace import _units as units
from edgetrace._errors import ConfigError

__all__ = ["GridProfile", "LinkProfile", "parse_duration"]

def parse_duration(value: Any, *, what: str = "duration") -> int:
    """'150ms' / '2s' / 0.5 (a number is seconds) → integer nanoseconds."""
    try:
        return units.parse_duration(value, bare="s")
    except ValueError as exc:
        raise ConfigError(f"bad {what} {value!r}: {exc}") from None


@dataclass(frozen=True)
class LinkProfile:
    """Latency drawn uniformly in [latency_min, latency_max] plus ±jitter; loss probability.

    Cellular links are mostly fine and sometimes terrible, so a profile may add spikes:
    with probability `spike`, the latency is drawn from [spike_min, spike_max] instead.
    """

    latency_min: int = 0
    latency_max: int = 0
    jitter: int = 0
    loss: float = 0.0
    spike: float = 0.0
    spike_min: int = 0
    spike_max: int = 0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, where: str = "link") -> LinkProfile:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a table of link settings, got {type(data).__name__}")
        known = {"latency", "latency_min", "latency_max", "jitter", "loss", "spike", "spike_min", "spike_max"}
        unknown = sorted(set(data) - known - {"from", "to"})
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r}; expected one of: {', '.join(sorted(known))}")
        lo = hi = 0
        if "latency" in data:
            lo = hi = parse_duration(data["latency"], what=f"{where}.latency")
        if "latency_min" in data:
            lo = parse_duration(data["latency_min"], what=f"{where}.latency_min")
        if "latency_max" in data:
            hi = parse_duration(data["latency_max"], what=f"{where}.latency_max")
        hi = max(hi, lo)
        loss = data.get("loss", 0.0)
        if isinstance(loss, bool) or not isinstance(loss, (int, float)) or not 0 <= loss <= 1:
            raise ConfigError(f"{where}.loss: expected a probability between 0 and 1, got {loss!r}")
        jitter = parse_duration(data.get("jitter", 0), what=f"{where}.jitter")
        spike = data.get("spike", 0.0)
        if isinstance(spike, bool) or not isinstance(spike, (int, float)) or not 0 <= spike <= 1:
            raise ConfigError(f"{where}.spike: expected a probability between 0 and 1, got {spike!r}")
        s_lo = parse_duration(data.get("spike_min", 0), what=f"{where}.spike_min")
        s_hi = max(s_lo, parse_duration(data.get("spike_max", 0), what=f"{where}.spike_max"))
        return cls(lo, hi, jitter, float(loss), float(spike), s_lo, s_hi)

    def draw(self, rng: random.Random) -> int | None:
        """A delay in ns, or None when the message is lost."""
        if self.loss and rng.random() < self.loss:
            return None
        lo, hi = self.latency_min, self.latency_max
        if self.spike and rng.random() < self.spike:
            lo, hi = self.spike_min, self.spike_max
        delay = rng.randint(lo, hi) if hi > lo else lo
        if self.jitter:
            delay += rng.randint(-self.jitter, self.jitter)
        return max(0, delay)

    def to_dict(self) -> dict[str, Any]:
        return {"latency_min": self.latency_min, "latency_max": self.latency_max, "jitter": self.jitter,
                "loss": self.loss, "spike": self.spike, "spike_min": self.spike_min, "spike_max": self.spike_max}


@dataclass(frozen=True)
class GridProfile:
    """Named link conditions; the first rule whose globs match (src, dst) applies."""

    name: str
    description: str = ""
    links: tuple[tuple[str, str, LinkProfile], ...] = ()
    default: LinkProfile = field(default_factory=LinkProfile)

    @classmethod
    def from_mapping(cls, name: str, data: Mapping[str, Any]) -> GridProfile:
        if not isinstance(data, Mapping):
            raise ConfigError(f"profile {name!r}: expected a table, got {type(data).__name__}")
        unknown = sorted(set(data) - {"description", "default", "links", "name"})
        if unknown:
            raise ConfigError(f"profile {name!r}: unknown key {unknown[0]!r}; expected one of: default, description, "
                              "links")
        links = data.get("links", [])
        if not isinstance(links, list):
            raise ConfigError(f"profile {name!r}: 'links' must be an array of tables, got {type(links).__name__}")
        rules = []
        for i, link in enumerate(links):
            where = f"profile {name!r} links[{i}]"
            if not isinstance(link, Mapping):
                raise ConfigError(f"{where}: expected a table")
            rules.append((str(link.get("from", "*")), str(link.get("to", "*")),
                          LinkProfile.from_mapping(link, where=where)))
        default = LinkProfile.from_mapping(data.get("default", {}), where=f"profile {name!r} default")
        return cls(name, str(data.get("description", "")), tuple(rules), default)

    def link(self, src: str, dst: str) -> LinkProfile:
        for s, d, profile in self.links:
            if fnmatch.fnmatchcase(src, s) and fnmatch.fnmatchcase(dst, d):
                return profile
        return self.default

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "links": [{"from": s, "to": d, **p.to_dict()} for s, d, p in self.links],
            "default": self.default.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GridProfile:
        """Inverse of to_dict (durations already in ns), for profiles stored in a manifest.

        A manifest is data from a file: anything malformed is a ConfigError, never a crash.
        """
        def lp(d: Any) -> LinkProfile:
            if not isinstance(d, Mapping):
                raise TypeError(f"a link is a map, not {type(d).__name__}")
            ints = [int(d.get(k, 0)) for k in ("latency_min", "latency_max", "jitter", "spike_min", "spike_max")]
            loss, spike = float(d.get("loss", 0.0)), float(d.get("spike", 0.0))
            if any(not 0 <= v < 2**62 for v in ints) or not 0.0 <= loss <= 1.0 or not 0.0 <= spike <= 1.0:
                raise ValueError("durations must be 0 to 2^62 ns, probabilities 0 to 1")
            return LinkProfile(ints[0], max(ints[0], ints[1]), ints[2], loss, spike, ints[3], max(ints[3], ints[4]))
        try:
            raw_links = data.get("links", [])
            if not isinstance(raw_links, list):
                raise TypeError("links are a list")
            links = tuple((str(x.get("from", "*")), str(x.get("to", "*")), lp(x)) for x in raw_links)
            return cls(str(data.get("name", "")), str(data.get("description", "")), links, lp(data.get("default", {})))
        except (TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise ConfigError(f"malformed grid profile: {exc}") from None
