"""Pareto-front tables and CSV files made from journal records."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterable

from search_algorithms.objectives import OBJECTIVES, OPTIONAL_OBJECTIVES, pareto_front

PARETO_CSV_COLUMNS = ("id", "round", *OBJECTIVES, "test_error", "architecture")


def write_pareto_csv(records: Iterable[dict], bounds: dict, path: Path) -> list[dict]:
    """Write the Pareto front of feasible candidates as CSV and return its records.

    Columns: candidate id, round, the four objectives (errors as fractions, bytes, MACs), the
    test error, ``latency_seconds`` when a latency model is configured, and the architecture
    as compact JSON.
    """
    front = pareto_front(records, bounds)
    # Optional objectives get a column only when the run has them (a latency model).
    extra = [name for name in OPTIONAL_OBJECTIVES if name in bounds]
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([*PARETO_CSV_COLUMNS[:-1], *extra, PARETO_CSV_COLUMNS[-1]])
        for record in front:
            objectives = record["objectives"]
            writer.writerow([record["id"], record["round"],
                             *(objectives[name] for name in OBJECTIVES),
                             objectives.get("test_error"),
                             *(objectives.get(name) for name in extra),
                             json.dumps(record["architecture"], separators=(",", ":"))])
    return front


def format_pareto_table(front: list[dict]) -> str:
    """Return the Pareto front as an aligned text table."""
    if not front:
        return "No feasible candidate: the Pareto front is empty."
    header = ("id", "round", "val_error", "test_error", "peak_mem_B", "model_size_B", "MACs")
    rows = [header]
    for record in front:
        objectives = record["objectives"]
        rows.append((str(record["id"]), str(record["round"]),
                     f"{objectives['val_error']:.4f}", f"{objectives['test_error']:.4f}",
                     f"{objectives['peak_memory_bytes']:,}", f"{objectives['model_size_bytes']:,}",
                     f"{objectives['macs']:,}"))
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(row, widths))
                     for row in rows)
