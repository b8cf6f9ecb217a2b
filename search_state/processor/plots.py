"""PNG plots of one or several runs: error against each resource, and search progress.

Figures are drawn on `matplotlib.figure.Figure` objects and saved with the Agg renderer,
without pyplot, so no window opens and no global plotting state is shared between calls.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import matplotlib
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import EngFormatter, LogLocator, NullFormatter

from search_algorithms.objectives import is_feasible, pareto_front
from search_state.processor.runs import LoadedRun
from search_state.processor.summary import OBJECTIVE_LABELS

logger = logging.getLogger(__name__)

#: Pixels per inch of the saved PNG files; with the figure size below, 1,500 x 780 pixels.
DPI = 150
FIGURE_SIZE_INCHES = (10.0, 5.2)

#: A resource axis switches to a log scale when its largest value exceeds its smallest
#: by this factor, because the MACs of random CNNs can span several decades.
LOG_SCALE_RATIO = 30.0

#: Up to this many completed candidates in a plot, every point carries its candidate id.
#: Above it only the Pareto front does, because more labels would overlap.
LABEL_ALL_POINTS_LIMIT = 40

PROGRESS_FILE = "search_progress.png"


@dataclass(frozen=True)
class ResourcePlot:
    """One error-against-resource plot: the objective, its axis label, unit and file name."""

    objective: str
    axis_label: str
    unit: str
    file_name: str


RESOURCE_PLOTS = (
    ResourcePlot("peak_memory_bytes", "peak memory usage (bytes)", "B",
                 "error_vs_peak_memory.png"),
    ResourcePlot("model_size_bytes", "model size (bytes)", "B", "error_vs_model_size.png"),
    ResourcePlot("macs", "MACs per inference", "", "error_vs_macs.png"),
)


def _run_colours(count: int) -> list:
    palette = matplotlib.colormaps["tab10"].colors
    return [palette[index % len(palette)] for index in range(count)]


def _new_axes():
    figure = Figure(figsize=FIGURE_SIZE_INCHES, layout="constrained")
    return figure, figure.add_subplot()


def _error_percent(record: dict) -> float:
    return 100.0 * record["objectives"]["val_error"]


def _split_by_feasibility(run: LoadedRun) -> tuple[list[dict], list[dict]]:
    feasible, infeasible = [], []
    for record in run.completed:
        if is_feasible(record["objectives"], run.bounds):
            feasible.append(record)
        else:
            infeasible.append(record)
    return feasible, infeasible


def _draw_bound(axes, value: float, vertical: bool, colour, text: str) -> None:
    # The label sits just left of a vertical line and just above a horizontal one.
    if vertical:
        axes.axvline(value, color=colour, linestyle="--", linewidth=1.2)
        axes.annotate(text, xy=(value, 1.0), xycoords=axes.get_xaxis_transform(),
                      xytext=(-3, -4), textcoords="offset points", color=colour, fontsize=8,
                      rotation=90, ha="right", va="top")
    else:
        axes.axhline(value, color=colour, linestyle="--", linewidth=1.2)
        axes.annotate(text, xy=(1.0, value), xycoords=axes.get_yaxis_transform(),
                      xytext=(-4, 3), textcoords="offset points", color=colour, fontsize=8,
                      ha="right", va="bottom")


def _draw_bounds(axes, runs: Sequence[LoadedRun], colours: list, objective: str,
                 vertical: bool) -> None:
    """Draw one dashed line per distinct bound: grey when all runs share it, else per run.

    The error bound is a fraction in run.json and is drawn in percent, like the error axis.
    """
    scale = 100.0 if objective == "val_error" else 1.0
    values = [run.bounds.get(objective) for run in runs]
    if all(value is None for value in values):
        return
    if len(set(values)) == 1:
        _draw_bound(axes, scale * values[0], vertical, "0.25",
                    f"bound {_format_bound(objective, values[0])}")
        return
    for run, colour, value in zip(runs, colours, values):
        if value is not None:
            _draw_bound(axes, scale * value, vertical, colour,
                        f"bound {_format_bound(objective, value)} ({run.label})")


def _format_bound(objective: str, value: float) -> str:
    if objective == "val_error":
        return f"{100 * value:g}%"
    unit = "B" if objective.endswith("_bytes") else ""
    return EngFormatter(unit=unit)(value)


def _use_log_scale_if_wide(axes, values: list[float]) -> None:
    positive = [value for value in values if value > 0]
    if not positive or max(positive) / min(positive) < LOG_SCALE_RATIO:
        return
    axes.set_xscale("log")
    # A narrow log axis gets ticks at 1, 2 and 5 per decade, so it shows several labels.
    # A wide one gets one tick per decade, so that its labels do not overlap.
    decades = math.log10(max(positive) / min(positive))
    axes.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if decades <= 3
                                            else (1.0,)))
    axes.xaxis.set_minor_formatter(NullFormatter())


def _marker_handles(shown: set[str], colour, labels: dict[str, str]) -> list:
    """Return legend handles for the marker kinds in ``shown``, in a fixed order."""
    styles = {
        "feasible": {"marker": "o", "alpha": 0.6},
        "infeasible": {"marker": "x", "alpha": 0.6},
        "front": {"marker": "D", "markersize": 8, "markeredgecolor": "black"},
    }
    handles = [Line2D([], [], color=colour, linestyle="", label=labels[kind], **styles[kind])
               for kind in styles if kind in shown]
    if "bound" in shown:
        handles.append(Line2D([], [], color="0.25", linestyle="--", label=labels["bound"]))
    return handles


def _run_handles(runs: Sequence[LoadedRun], colours: list) -> list:
    """Return one legend handle per run when several runs share a plot, else none."""
    if len(runs) == 1:
        return []
    return [Line2D([], [], color=colour, marker="o", linestyle="",
                   label=f"{run.label} ({len(run.completed)} completed, "
                         f"{len(run.records) - len(run.completed)} failed)")
            for run, colour in zip(runs, colours)]


def _place_legend(axes, handles: list) -> None:
    # Outside the axes, on the right, so that the legend never hides a candidate.
    axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
                borderaxespad=0.0)


def _subtitle(runs: Sequence[LoadedRun]) -> str:
    if len(runs) > 1:
        return f"{len(runs)} runs; failed candidates have no objectives and are not shown"
    run = runs[0]
    failed = len(run.records) - len(run.completed)
    return (f"run {run.label}: {len(run.completed)} completed candidates"
            + (f", {failed} failed (not shown)" if failed else ""))


def plot_error_against_resource(runs: Sequence[LoadedRun], plot: ResourcePlot,
                                path: Path) -> Path:
    """Scatter validation error (%) against one resource, one colour per run; save a PNG."""
    figure, axes = _new_axes()
    colours = _run_colours(len(runs))
    resource_values: list[float] = []
    shown: set[str] = set()
    label_all = sum(len(run.completed) for run in runs) <= LABEL_ALL_POINTS_LIMIT

    for run, colour in zip(runs, colours):
        feasible, infeasible = _split_by_feasibility(run)
        front = pareto_front(run.records, run.bounds)
        shown |= {kind for kind, records in (("feasible", feasible), ("infeasible", infeasible),
                                             ("front", front)) if records}

        if feasible:
            axes.scatter([record["objectives"][plot.objective] for record in feasible],
                         [_error_percent(record) for record in feasible],
                         color=colour, marker="o", s=22, alpha=0.6)
        if infeasible:
            axes.scatter([record["objectives"][plot.objective] for record in infeasible],
                         [_error_percent(record) for record in infeasible],
                         color=colour, marker="x", s=22, alpha=0.6, linewidths=1.0)
        if front:
            axes.scatter([record["objectives"][plot.objective] for record in front],
                         [_error_percent(record) for record in front],
                         color=colour, marker="D", s=55, edgecolors="black", linewidths=1.0,
                         zorder=3)
        labelled = run.completed if label_all else front
        for record in labelled:
            axes.annotate(f"#{record['id']}", (record["objectives"][plot.objective],
                                               _error_percent(record)),
                          textcoords="offset points", xytext=(5, 4), fontsize=7, color=colour)
        resource_values += [record["objectives"][plot.objective] for record in run.completed]

    bound_values = [run.bounds[plot.objective] for run in runs
                    if run.bounds.get(plot.objective) is not None]
    _use_log_scale_if_wide(axes, resource_values + bound_values)
    if any(run.bounds.get(name) is not None for run in runs
           for name in (plot.objective, "val_error")):
        shown.add("bound")
    _draw_bounds(axes, runs, colours, plot.objective, vertical=True)
    _draw_bounds(axes, runs, colours, "val_error", vertical=False)
    marker_colour = colours[0] if len(runs) == 1 else "0.45"
    handles = _run_handles(runs, colours) + _marker_handles(shown, marker_colour, {
        "feasible": "feasible", "infeasible": "infeasible (breaks a bound)",
        "front": "Pareto front", "bound": "bound"})
    if resource_values:
        handles.append(Line2D([], [], linestyle="none",
                              label="#N: candidate id" if label_all
                              else "#N: candidate id (Pareto front)"))
    _finish_axes(axes, handles, bool(resource_values))
    axes.xaxis.set_major_formatter(EngFormatter(unit=plot.unit))
    axes.set_xlabel(plot.axis_label)
    axes.set_title(f"Validation error against {OBJECTIVE_LABELS[plot.objective]}\n"
                   f"{_subtitle(runs)}", fontsize=11)
    return _save(figure, path)


def _finish_axes(axes, handles: list, has_points: bool) -> None:
    axes.set_ylabel("validation error (%)")
    axes.set_ylim(bottom=0)
    axes.grid(True, which="major", alpha=0.3)
    if has_points:
        _place_legend(axes, handles)
    else:
        axes.text(0.5, 0.5, "No completed candidates to plot", ha="center", va="center",
                  transform=axes.transAxes, fontsize=12, color="0.4")


def _step(axes, series: list[Optional[float]], colour, linewidth: float,
          linestyle: str) -> None:
    axes.step(range(1, len(series) + 1),
              [math.nan if value is None else 100 * value for value in series],
              where="post", color=colour, linewidth=linewidth, linestyle=linestyle)


def best_feasible_by_round(run: LoadedRun, feasible_only: bool = True) -> list[Optional[float]]:
    """Return, per journal position, the lowest validation error so far (or None).

    Only feasible candidates count, unless ``feasible_only`` is False.
    """
    best: Optional[float] = None
    series = []
    for record in run.records:
        if record["status"] == "completed" and (
                not feasible_only or is_feasible(record["objectives"], run.bounds)):
            error = record["objectives"]["val_error"]
            best = error if best is None else min(best, error)
        series.append(best)
    return series


def plot_search_progress(runs: Sequence[LoadedRun], path: Path) -> Path:
    """Plot every candidate's error by round and the best feasible error so far; save a PNG.

    The round is the record's 1-based position in the journal, as the driver numbers it.
    """
    figure, axes = _new_axes()
    colours = _run_colours(len(runs))
    handles = []
    shown: set[str] = set()
    for run, colour in zip(runs, colours):
        rounds = {id(record): position for position, record in enumerate(run.records, start=1)}
        feasible, infeasible = _split_by_feasibility(run)
        shown |= {kind for kind, records in (("feasible", feasible), ("infeasible", infeasible))
                  if records}
        if feasible:
            axes.scatter([rounds[id(record)] for record in feasible],
                         [_error_percent(record) for record in feasible],
                         color=colour, marker="o", s=16, alpha=0.45)
        if infeasible:
            axes.scatter([rounds[id(record)] for record in infeasible],
                         [_error_percent(record) for record in infeasible],
                         color=colour, marker="x", s=16, alpha=0.45, linewidths=1.0)

        prefix = f"{run.label}: " if len(runs) > 1 else ""
        series = best_feasible_by_round(run)
        if any(value is not None for value in series):
            _step(axes, series, colour, linewidth=2.0, linestyle="-")
            handles.append(Line2D([], [], color=colour, linewidth=2.0,
                                  label=f"{prefix}best feasible so far "
                                        f"(final {100 * series[-1]:.2f}%)"))
        else:
            handles.append(Line2D([], [], linestyle="none",
                                  label=f"{prefix}no feasible candidate"))

        # Also the best error regardless of bounds, which shows progress in runs whose
        # bounds few candidates meet.
        completed_series = best_feasible_by_round(run, feasible_only=False)
        if any(value is not None for value in completed_series):
            _step(axes, completed_series, colour, linewidth=1.0, linestyle="--")
            handles.append(Line2D([], [], color=colour, linewidth=1.0, linestyle="--",
                                  label=f"{prefix}best of all completed so far "
                                        f"(final {100 * completed_series[-1]:.2f}%)"))

    _draw_bounds(axes, runs, colours, "val_error", vertical=False)
    if any(run.bounds.get("val_error") is not None for run in runs):
        shown.add("bound")
    marker_colour = colours[0] if len(runs) == 1 else "0.45"
    handles += _marker_handles(shown, marker_colour, {
        "feasible": "feasible candidate", "infeasible": "infeasible candidate",
        "bound": "error bound"})
    has_points = any(run.completed for run in runs)
    axes.set_xlabel("round (candidates evaluated, failed ones included)")
    axes.set_ylabel("validation error (%)")
    axes.set_ylim(bottom=0)
    axes.set_xlim(left=0)
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.grid(True, alpha=0.3)
    if has_points:
        _place_legend(axes, handles)
    else:
        axes.text(0.5, 0.5, "No completed candidates to plot", ha="center", va="center",
                  transform=axes.transAxes, fontsize=12, color="0.4")
    axes.set_title(f"Search progress: best feasible validation error by round\n"
                   f"{_subtitle(runs)}", fontsize=11)
    return _save(figure, path)


def _save(figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, format="png")
    logger.info("Wrote %s", path)
    return path


def write_plots(runs: Sequence[LoadedRun], output_dir: Path) -> list[Path]:
    """Write the three error-against-resource plots and the progress plot into ``output_dir``."""
    if not runs:
        raise ValueError("write_plots needs at least one run.")
    output_dir = Path(output_dir)
    paths = [plot_error_against_resource(runs, plot, output_dir / plot.file_name)
             for plot in RESOURCE_PLOTS]
    paths.append(plot_search_progress(runs, output_dir / PROGRESS_FILE))
    return paths
