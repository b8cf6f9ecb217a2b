"""Per-run summary: candidate counts, best feasible candidate per objective, search time."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from search_algorithms.objectives import OBJECTIVES, is_feasible, pareto_front
from search_state.journal import RunDirectory
from search_state.processor.runs import LoadedRun

logger = logging.getLogger(__name__)

#: Objective names as printed in summaries and plot labels.
OBJECTIVE_LABELS = {
    "val_error": "validation error",
    "peak_memory_bytes": "peak memory usage",
    "model_size_bytes": "model size",
    "macs": "MACs",
}


@dataclass(frozen=True)
class BestCandidate:
    """The feasible candidate with the lowest value of one objective (lowest id on ties)."""

    candidate_id: int
    value: float


@dataclass(frozen=True)
class RunSummary:
    """Counts, best feasible candidates and duration of one run.

    Attributes:
        rounds_planned: the ``rounds`` setting the run was created with.
        evaluated: journal records, failed ones included.
        in_flight: candidates in in_flight.json without a record yet: being trained now,
            or lost when the run stopped (a resume proposes them again).
        best: per objective, the best feasible candidate; None when none is feasible.
        best_completed: per objective, the best completed candidate regardless of the
            bounds; None when none completed. It shows how far a run without feasible
            candidates is from its bounds.
        pareto_size: candidates on the Pareto front of feasible candidates.
        wall_seconds: from the first proposal to the last finished training, in seconds;
            None when the records carry no timings.
        train_seconds: the sum of the candidates' time in ``model.fit``, in seconds.
    """

    label: str
    rounds_planned: Optional[int]
    evaluated: int
    completed: int
    failed: int
    feasible: int
    in_flight: int
    best: dict[str, Optional[BestCandidate]]
    best_completed: dict[str, Optional[BestCandidate]]
    pareto_size: int
    wall_seconds: Optional[float]
    train_seconds: float


def _unix_seconds(value: object) -> Optional[float]:
    # proposed_at is ISO 8601 text (written by the driver), started_at and finished_at
    # are Unix seconds (written by the worker).
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None
    return None


def search_wall_seconds(records: list[dict]) -> Optional[float]:
    """Return the seconds from the first proposal to the last finished candidate.

    NOTE: a run that was stopped and resumed counts the time it was stopped, too.
    """
    starts, ends = [], []
    for record in records:
        timings = record.get("timings") or {}
        start = _unix_seconds(timings.get("proposed_at"))
        if start is None:
            start = _unix_seconds(timings.get("started_at"))
        end = _unix_seconds(timings.get("finished_at"))
        if start is not None:
            starts.append(start)
        if end is not None:
            ends.append(end)
    if not starts or not ends:
        return None
    return max(0.0, max(ends) - min(starts))


def _best_by(records: list[dict], objective: str) -> Optional[BestCandidate]:
    winner = min(records, key=lambda record: (record["objectives"][objective], record["id"]),
                 default=None)
    return None if winner is None else BestCandidate(winner["id"], winner["objectives"][objective])


def summarize_run(run: LoadedRun) -> RunSummary:
    """Count the run's candidates and find its best feasible candidate per objective."""
    feasible = [record for record in run.completed
                if is_feasible(record["objectives"], run.bounds)]

    best = {name: _best_by(feasible, name) for name in OBJECTIVES}
    best_completed = {name: _best_by(run.completed, name) for name in OBJECTIVES}

    recorded_ids = {record["id"] for record in run.records}
    in_flight = [proposal for proposal in RunDirectory(run.path).load_in_flight()
                 if isinstance(proposal, dict) and proposal.get("id") not in recorded_ids]

    train_seconds = sum((record.get("timings") or {}).get("train_seconds") or 0.0
                        for record in run.records)
    return RunSummary(
        label=run.label,
        rounds_planned=(run.config.get("search") or {}).get("rounds"),
        evaluated=len(run.records),
        completed=len(run.completed),
        failed=len(run.records) - len(run.completed),
        feasible=len(feasible),
        in_flight=len(in_flight),
        best=best,
        best_completed=best_completed,
        pareto_size=len(pareto_front(run.records, run.bounds)),
        wall_seconds=search_wall_seconds(run.records),
        train_seconds=float(train_seconds),
    )


def format_duration(seconds: Optional[float]) -> str:
    """Return a duration such as ``1h02m``, ``3m05s`` or ``42s``; ``unknown`` for None."""
    if seconds is None:
        return "unknown"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


def format_objective(name: str, value: Optional[float]) -> str:
    """Return an objective value with its unit: errors in %, memory in bytes."""
    if value is None:
        return "unbounded"
    if name == "val_error":
        return f"{100 * value:.2f}%"
    if name == "macs":
        return f"{int(value):,}"
    return f"{int(value):,} B"


def format_bounds(bounds: dict) -> str:
    """Return the bounds as ``name <= value`` items; ``none`` when nothing is bounded."""
    items = [f"{OBJECTIVE_LABELS[name]} <= {format_objective(name, bounds.get(name))}"
             for name in OBJECTIVES if bounds.get(name) is not None]
    return ", ".join(items) or "none"


def format_summary(run: LoadedRun, summary: RunSummary) -> str:
    """Return the summary of one run as indented text lines."""
    planned = f" of {summary.rounds_planned} rounds" if summary.rounds_planned else ""
    lines = [
        f"Run {summary.label} ({run.path})",
        f"  candidates: {summary.evaluated} evaluated{planned} ({summary.completed} "
        f"completed, {summary.failed} failed), {summary.feasible} feasible",
    ]
    if summary.in_flight:
        lines.append(f"  in flight: {summary.in_flight} candidates have no record yet (the run "
                     "is still going, or stopped before they finished)")
    lines.append(f"  bounds: {format_bounds(run.bounds)}")
    lines.append(f"  search time: {format_duration(summary.wall_seconds)} from the first "
                 f"proposal to the last result; {format_duration(summary.train_seconds)} of "
                 "training in total")

    if summary.feasible:
        lines.append("  best feasible per objective:")
        lines += _format_best(summary.best)
    elif summary.completed:
        lines.append("  best feasible: none of the completed candidates meets every bound")
        lines.append("  best completed per objective, bounds ignored:")
        lines += _format_best(summary.best_completed)
    return "\n".join(lines)


def _format_best(best: dict[str, Optional[BestCandidate]]) -> list[str]:
    width = max(len(label) for label in OBJECTIVE_LABELS.values())
    return [f"    {OBJECTIVE_LABELS[name].ljust(width)}  "
            f"{format_objective(name, best[name].value):>14}  candidate {best[name].candidate_id}"
            for name in OBJECTIVES]


def format_comparison(summaries: list[RunSummary]) -> str:
    """Return one aligned row per run: counts, best feasible error, front size, time."""
    header = ("run", "evaluated", "failed", "feasible", "best val_error", "Pareto", "time")
    rows = [header]
    for summary in summaries:
        best_error = summary.best["val_error"]
        rows.append((summary.label, str(summary.evaluated), str(summary.failed),
                     str(summary.feasible),
                     "none" if best_error is None
                     else f"{format_objective('val_error', best_error.value)} (#"
                          f"{best_error.candidate_id})",
                     str(summary.pareto_size), format_duration(summary.wall_seconds)))
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) if column == 0 else cell.rjust(width)
                               for column, (cell, width) in enumerate(zip(row, widths)))
                     for row in rows)
