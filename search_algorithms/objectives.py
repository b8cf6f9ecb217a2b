"""The four objectives, feasibility under bounds, and the Pareto front.

Every objective is minimised: validation error, peak memory usage (bytes), model size (bytes)
and MACs. A bound of None leaves that objective unbounded.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Optional, Sequence

#: Objective names as stored in the journal, in the order used everywhere.
OBJECTIVES = ("val_error", "peak_memory_bytes", "model_size_bytes", "macs")
RESOURCE_OBJECTIVES = OBJECTIVES[1:]
#: Objectives that exist only when configured: ``latency_seconds`` needs a latency model.
OPTIONAL_OBJECTIVES = ("latency_seconds",)

Bounds = Mapping[str, Optional[float]]


def is_feasible(objectives: Mapping[str, float], bounds: Bounds) -> bool:
    """Return whether every bounded objective is at or below its bound."""
    return all(objectives[name] <= bound for name, bound in bounds.items() if bound is not None)


def pareto_objectives(bounds: Bounds) -> tuple[str, ...]:
    """Return the objectives a Pareto front is taken over.

    These are the validation error and the bounded resources. With no resource bounded, all
    three resources count, because a front over the error alone would be a single point.
    """
    bounded = tuple(name for name in (*RESOURCE_OBJECTIVES, *OPTIONAL_OBJECTIVES)
                    if bounds.get(name) is not None)
    return ("val_error",) + (bounded or RESOURCE_OBJECTIVES)


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Return whether ``a`` is no worse than ``b`` everywhere and better somewhere."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def pareto_front(records: Iterable[dict], bounds: Bounds) -> list[dict]:
    """Return the completed, feasible records that no other such record dominates.

    Records with equal objective vectors do not dominate each other, so all of them are kept.
    The result is sorted by validation error.
    """
    names = pareto_objectives(bounds)
    candidates = [record for record in records
                  if record.get("status") == "completed"
                  and is_feasible(record["objectives"], bounds)]
    vectors = [tuple(record["objectives"][name] for name in names) for record in candidates]

    front = [record for record, vector in zip(candidates, vectors)
             if not any(dominates(other, vector) for other in vectors)]
    return sorted(front, key=lambda record: (record["objectives"]["val_error"], record["id"]))


def best_feasible(records: Iterable[dict], bounds: Bounds) -> Optional[dict]:
    """Return the completed feasible record with the lowest validation error, if any."""
    feasible = [record for record in records if record.get("status") == "completed"
                and is_feasible(record["objectives"], bounds)]
    return min(feasible, key=lambda record: record["objectives"]["val_error"], default=None)
