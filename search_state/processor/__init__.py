"""Reports on finished or running searches: summaries, Pareto fronts, plots and model export.

`search_state_processor.py` is the command line; this package contains the parts:

- `runs`: reading run folders (`load_run`, `load_runs`, `find_candidate`);
- `summary`: counts, best feasible candidates and search time (`summarize_run`);
- `plots`: PNG plots of error against resources and of search progress (`write_plots`);
- `export`: retraining one candidate and writing its Keras, TFLite and C files and a model
  card (`export_candidate`). It imports TensorFlow, so it is not imported here.
"""
from search_state.processor.plots import write_plots
from search_state.processor.runs import (CandidateNotFoundError, LoadedRun, find_candidate,
                                         load_run, load_runs)
from search_state.processor.summary import RunSummary, format_summary, summarize_run

__all__ = [
    "CandidateNotFoundError",
    "LoadedRun",
    "RunSummary",
    "find_candidate",
    "format_summary",
    "load_run",
    "load_runs",
    "summarize_run",
    "write_plots",
]
