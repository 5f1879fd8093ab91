"""Minimisation that finds the cause: delta debugging over a plan's faults, then over what
they did — this drop, that delay.

A failing sweep says "this plan breaks the invariant on these seeds". Taking faults away one
at a time on one seed (greedy) is misleading: faults of one node draw from one RNG, so
removing an irrelevant jitter shifts the draws of the drop that mattered, the seed passes,
and the jitter looks needed. Here:

1. **Faults**, judged across the failing seeds: a smaller plan still fails when it breaks the
   invariant on any of the sweep's failing seeds (up to `seeds` of them). `ddmin` (Zeller &
   Hildebrandt) gives a 1-minimal plan: removing any one of its faults passes on all of them.
2. **Occurrences**, on the first of those seeds that the minimal plan breaks: the injector
   logs every occurrence (`Occurrence`: which fault, which message or step, what it did) and
   `OccurrenceInjector` replays a subset exactly as logged, drawing nothing, so removing one
   occurrence cannot change another. `ddmin` over the log gives the injected events that still
   break the invariant; `edgetrace replay ... --occurrences 3,17` reproduces exactly them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from edgetrace._errors import UsageError
from edgetrace.replay.faults import (
    FaultInjector,
    FaultPlan,
    Occurrence,
    OccurrenceInjector,
    PlanInjector,
)
from edgetrace.replay.faults._injector import choose

__all__ = ["Cause", "ddmin", "find_cause", "occurrence_injector", "occurrence_log"]

T = TypeVar("T")


def ddmin(items: Sequence[T], fails: Callable[[list[T]], bool], *,
          most: int | None = None) -> tuple[list[T], int, bool]:
    """A 1-minimal sub-list of `items` (kept in order) for which `fails` holds, assuming it holds
    for all of them: removing any single element of the result makes it pass.

    Returns (result, tests run, complete); `complete` is False when `most` tests ran out first
    (the result then still fails, but may not be 1-minimal). The empty list is tested first:
    when it fails, nothing in `items` is needed.
    """
    tried: dict[tuple[int, ...], bool] = {}
    budget = [0]

    def test(subset: list[int]) -> bool:
        key = tuple(subset)
        if key not in tried:
            if most is not None and budget[0] >= most:
                raise _OutOfTests
            budget[0] += 1
            tried[key] = fails([items[i] for i in subset])
        return tried[key]

    current = list(range(len(items)))
    try:
        if test([]):
            return [], budget[0], True
        n = 2
        while len(current) >= 2:
            chunks = _split(current, n)
            for chunk in chunks:  # reduce to a subset
                if test(chunk):
                    current, n = chunk, 2
                    break
            else:
                for chunk in chunks:  # reduce to a complement
                    rest = [i for i in current if i not in set(chunk)]
                    if n > 2 and test(rest):
                        current, n = rest, max(n - 1, 2)
                        break
                else:
                    if n >= len(current):
                        break
                    n = min(len(current), 2 * n)
        complete = True
    except _OutOfTests:
        complete = False
    return [items[i] for i in current], budget[0], complete


class _OutOfTests(Exception):
    pass


def _split(items: list[int], n: int) -> list[list[int]]:
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        if end > start:
            out.append(items[start:end])
        start = end
    return out


@dataclass
class Cause:
    """What minimisation found: the smallest plan, the seed it fails on, and the occurrences of
    it under that seed that still break the invariant."""

    plan: list[str]
    seed: int
    first: dict[str, Any] | None  # the violation the minimal plan shows on `seed`
    tries: int
    seeds_judged: list[int]
    occurrences: list[tuple[int, Occurrence]] = field(default_factory=list)  # (number in the log, it)
    logged: int = 0  # occurrences the minimal plan made under `seed`
    occurrence_tries: int = 0
    occurrence_first: dict[str, Any] | None = None
    complete: bool = True

    @property
    def numbers(self) -> list[int]:
        return [n for n, _ in self.occurrences]


Outcome = tuple[bool, dict[str, Any] | None]  # (violates, first violation)


def find_cause(
    specs: Sequence[str],
    failing: Sequence[int],
    run: Callable[[list[str], int, list[Occurrence] | None], Outcome],
    log: Callable[[list[str], int], list[Occurrence]],
    *,
    seeds: int = 8,
    most: int = 400,
) -> Cause:
    """ddmin over the faults of `specs` judged on the first `seeds` of `failing`, then over the
    occurrences of the minimal plan on the first of those seeds it breaks.

    `run(plan, seed, occurrences)` replays (occurrences None: the plan's own draws; else only
    those occurrences, re-applied); `log(plan, seed)` replays with the occurrence log on and
    returns it.
    """
    judged = list(failing[:max(1, seeds)])
    shown: dict[tuple[tuple[str, ...], int], dict[str, Any] | None] = {}

    def plan_fails(plan: list[str]) -> bool:
        for seed in judged:
            bad, first = run(plan, seed, None)
            if bad:
                shown[(tuple(plan), seed)] = first
                return True
        return False

    plan, tries, complete = ddmin(list(specs), plan_fails, most=most)
    seed = next((s for s in judged if (tuple(plan), s) in shown), judged[0])
    cause = Cause(plan, seed, shown.get((tuple(plan), seed)), tries, judged, complete=complete)
    if not plan:
        return cause
    events = log(plan, seed)
    cause.logged = len(events)
    numbered = list(enumerate(events))
    found: dict[tuple[int, ...], dict[str, Any] | None] = {}

    def occurrences_fail(chosen: list[tuple[int, Occurrence]]) -> bool:
        bad, first = run(plan, seed, [o for _, o in chosen])
        if bad:
            found[tuple(n for n, _ in chosen)] = first
        return bad

    chosen, cause.occurrence_tries, done = ddmin(numbered, occurrences_fail, most=most)
    cause.complete = cause.complete and done
    cause.occurrences = chosen
    cause.occurrence_first = found.get(tuple(n for n, _ in chosen))
    return cause


def occurrence_log(replayer: Any, *, plan: FaultPlan | None, seed: int | None, **options: Any) -> list[Occurrence]:
    """Every occurrence of `plan`'s faults when `replayer` replays it under `seed`, in order."""
    if not plan:
        raise UsageError("--occurrences needs a fault plan (--fault or --faults)")
    resolved = replayer.session.manifest.seed if seed is None else seed
    logs: list[list[Occurrence]] = []

    def logging() -> FaultInjector:
        logs.append([])  # a replay may simulate more than once (races, counterfactuals): the first is it
        return PlanInjector(plan, resolved, log=logs[-1])

    options.pop("make_injector", None)
    replayer.run(plan=plan, seed=resolved, make_injector=logging, **options)
    return logs[0]


def occurrence_injector(replayer: Any, numbers: Sequence[int], *, plan: FaultPlan | None,
                        seed: int | None, **options: Any) -> Callable[[], FaultInjector]:
    """The injectors of `--occurrences`: those occurrences of the plan under this seed, numbered
    as a replay with the whole plan makes them, and nothing else."""
    chosen = choose(occurrence_log(replayer, plan=plan, seed=seed, **options), numbers)
    assert plan is not None
    return lambda: OccurrenceInjector(plan, chosen)
