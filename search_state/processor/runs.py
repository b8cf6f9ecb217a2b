"""Loading finished or running searches from their run folders, read-only."""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from errors import JournalError, UnasError
from search_algorithms.objectives import OBJECTIVES
from search_state.journal import RunDirectory, read_journal

logger = logging.getLogger(__name__)


class CandidateNotFoundError(UnasError):
    """A candidate id is not in the journal, or names a candidate whose evaluation failed."""


@dataclass(frozen=True)
class LoadedRun:
    """One run folder as read from disk: its run.json and the journal records.

    Attributes:
        path: the run folder.
        label: the run's name, made unique among the runs loaded together; used in legends
            and output file names.
        metadata: the contents of run.json.
        records: the journal records in the order they were written; a half-written last
            line (a run still writing, or one that crashed) is left out.
    """

    path: Path
    label: str
    metadata: dict
    records: list[dict]

    @property
    def config(self) -> dict:
        """The resolved settings the run was created with (run.json's ``config``)."""
        return self.metadata["config"]

    @property
    def bounds(self) -> dict[str, Optional[float]]:
        """The objective bounds, keyed by objective name; None leaves one unbounded."""
        return self.config["bounds"]

    @property
    def completed(self) -> list[dict]:
        """Records of the candidates that trained and have all objectives."""
        return [record for record in self.records if record["status"] == "completed"]


def _check_bounds(path: Path, config: dict) -> None:
    bounds = config.get("bounds") if isinstance(config, dict) else None
    if not isinstance(bounds, dict) or set(OBJECTIVES) - set(bounds):
        raise JournalError(
            f"{path / 'run.json'} has no valid config.bounds (expected an object with the keys "
            f"{', '.join(OBJECTIVES)}, got {bounds!r}). Was the folder written by driver.py?")


def _is_number(value: object) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _check_records(journal: Path, records: list[dict]) -> None:
    # The Pareto front and the plots index every objective of a completed record, so a
    # record without them is reported here, by id, instead of as a KeyError later.
    for record in records:
        if record["status"] != "completed":
            continue
        objectives = record.get("objectives")
        if not isinstance(objectives, dict) or not all(
                _is_number(objectives.get(name)) for name in OBJECTIVES):
            raise JournalError(
                f"Candidate {record['id']} in {journal} is 'completed' but its objectives are "
                f"{objectives!r}; expected numbers for {', '.join(OBJECTIVES)}. The journal was "
                "not written by this version of driver.py, or was edited by hand.")


def load_run(path: str | Path, label: Optional[str] = None) -> LoadedRun:
    """Read run.json and the journal of the run folder ``path``.

    Raises:
        JournalError: ``path`` is not a run folder, or its run.json or journal is invalid.
    """
    path = Path(path).expanduser()
    if not path.is_dir():
        raise JournalError(
            f"Run folder {path} not found. Pass a folder that driver.py created, such as "
            "artifacts/quick.")

    run_directory = RunDirectory(path)
    metadata = run_directory.metadata()
    _check_bounds(path, metadata.get("config"))
    records = read_journal(run_directory.journal_path)
    _check_records(run_directory.journal_path, records)

    logger.info("Loaded %s: %d records.", path, len(records))
    return LoadedRun(path=path, label=label or str(metadata.get("name") or path.name),
                     metadata=metadata, records=records)


def load_runs(paths: Sequence[str | Path]) -> list[LoadedRun]:
    """Load several run folders; runs that share a name get a ``#<position>`` suffix."""
    runs = [load_run(path) for path in paths]
    names = [run.label for run in runs]
    return [run if names.count(run.label) == 1
            else LoadedRun(run.path, f"{run.label}#{position}", run.metadata, run.records)
            for position, run in enumerate(runs, start=1)]


def file_stem(label: str) -> str:
    """Return ``label`` with every character outside ``[A-Za-z0-9_.-]`` replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", label)


def format_id_ranges(ids: Sequence[int]) -> str:
    """Return sorted ids as compact ranges, such as ``0-4, 7, 9-12``."""
    ranges: list[list[int]] = []
    for candidate_id in sorted(set(ids)):
        if ranges and candidate_id == ranges[-1][1] + 1:
            ranges[-1][1] = candidate_id
        else:
            ranges.append([candidate_id, candidate_id])
    return ", ".join(str(low) if low == high else f"{low}-{high}" for low, high in ranges)


def find_candidate(run: LoadedRun, candidate_id: int) -> dict:
    """Return the completed record of ``candidate_id``.

    Raises:
        CandidateNotFoundError: no record has that id, or its evaluation failed. The message
            lists the ids of the completed candidates.
    """
    available = format_id_ranges([record["id"] for record in run.completed]) or "none"
    for record in run.records:
        if record["id"] != candidate_id:
            continue
        if record["status"] != "completed":
            raise CandidateNotFoundError(
                f"Candidate {candidate_id} of run {run.label} failed during the search "
                f"({record.get('error') or 'no reason recorded'}), so it has no trained result "
                f"to export. Completed candidates: {available}.")
        return record
    raise CandidateNotFoundError(
        f"Candidate {candidate_id} not found in {RunDirectory(run.path).journal_path}. Completed "
        f"candidates: {available}.")
