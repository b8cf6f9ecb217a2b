"""Summarise finished or running searches, plot their trade-offs, and export a chosen model.

    python search_state_processor.py artifacts/quick
    python search_state_processor.py artifacts/run_a artifacts/run_b --output-dir reports/
    python search_state_processor.py artifacts/quick --export 17 --epochs 30

Reading a run never changes its journal. Outputs go to --output-dir, by default the first
run's folder: pareto.csv (one pareto_<run>.csv per run when several are given), four PNG
plots, and with --export a folder candidate_<ID>/ with the trained model in every format.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Optional

from errors import UnasError

logger = logging.getLogger("search_state_processor")

EXIT_EXPORT_FAILED = 1
EXIT_USER_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Summarise search runs, write their Pareto fronts and plots, and export "
                    "one candidate as a trained Keras, int8 TFLite and C model.")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="Run folder written by driver.py, such as artifacts/quick. Give "
                             "several to compare them in one set of plots.")
    parser.add_argument("--output-dir", metavar="DIR",
                        help="Folder for pareto.csv, the PNG plots and candidate_<ID>/. "
                             "Default: the first RUN_DIR.")
    parser.add_argument("--export", type=int, metavar="ID",
                        help="Retrain candidate ID of the run and export it into "
                             "OUTPUT_DIR/candidate_<ID>/. Needs exactly one RUN_DIR.")
    parser.add_argument("--epochs", type=int, metavar="N",
                        help="Training epochs for --export. Default: the epochs the run "
                             "trained each candidate for.")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="Dataset folder for --export. Default: the folder the run used.")
    parser.add_argument("--debug", action="store_true",
                        help="Log at DEBUG level and show full tracebacks.")
    return parser


def _check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.export is None:
        for option in ("epochs", "data_dir"):
            if getattr(args, option) is not None:
                parser.error(f"--{option.replace('_', '-')} applies only to --export; add "
                             "--export ID or remove it.")
        return
    if len(args.run_dirs) != 1:
        parser.error(f"--export needs exactly one RUN_DIR, but got {len(args.run_dirs)}. Run "
                     "the command again with only the run that contains the candidate.")
    if args.export < 0:
        parser.error(f"--export must be a candidate id (0 or more), but got {args.export}.")
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be a positive integer, but got {args.epochs}.")


def configure_logging(debug: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    if not debug:
        for noisy in ("absl", "tensorflow", "h5py", "matplotlib", "PIL"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def _prepare_output_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UnasError(f"Cannot create the output folder {path}: {error}. Choose a writable "
                        "--output-dir.") from error
    if not os.access(path, os.W_OK):
        raise UnasError(f"The output folder {path} is not writable. Choose a writable "
                        "--output-dir.")
    return path


def _report_runs(runs: list, output_dir: Path) -> None:
    from search_algorithms.objectives import pareto_objectives
    from search_state.processor.plots import write_plots
    from search_state.processor.runs import file_stem
    from search_state.processor.summary import (OBJECTIVE_LABELS, format_comparison,
                                                format_summary, summarize_run)
    from search_state.report import format_pareto_table, write_pareto_csv

    summaries = []
    for run in runs:
        summary = summarize_run(run)
        summaries.append(summary)
        csv_name = "pareto.csv" if len(runs) == 1 else f"pareto_{file_stem(run.label)}.csv"
        csv_path = output_dir / csv_name
        front = write_pareto_csv(run.records, run.bounds, csv_path)
        over = ", ".join(OBJECTIVE_LABELS[name] for name in pareto_objectives(run.bounds))
        print(format_summary(run, summary))
        count = f"{len(front)} candidate{'' if len(front) == 1 else 's'}"
        print(f"\nPareto front of feasible candidates over {over} ({count}), also in "
              f"{csv_path}:")
        print(format_pareto_table(front))
        print()

    if len(runs) > 1:
        print("Comparison:")
        print(format_comparison(summaries))
        print()

    paths = write_plots(runs, output_dir)
    print("Plots:")
    for path in paths:
        print(f"  {path}")


def _export(run, args: argparse.Namespace, output_dir: Path) -> int:
    from model_trainer import CandidateFailed
    from search_state.processor.export import export_candidate

    try:
        result = export_candidate(run, args.export, output_dir, epochs=args.epochs,
                                  data_dir=args.data_dir)
    except CandidateFailed as error:
        # Not an input error: the same settings trained this candidate during the search.
        print(f"error: retraining candidate {args.export} failed: {error}. Run the export "
              "again, or change --epochs.", file=sys.stderr)
        return EXIT_EXPORT_FAILED
    card = result.card
    print(f"\nExported candidate {args.export} into {result.directory}:")
    for path in result.files:
        print(f"  {path}")
    accuracy = card["accuracy"]
    print(f"Test accuracy: float {100 * accuracy['float_test']:.2f}%, int8 "
          f"{100 * accuracy['int8_test']:.2f}%; TFLM arena "
          f"{card['tflm']['minimal_arena_bytes']:,} B; predicted peak memory usage "
          f"{card['predicted_resources']['peak_memory_bytes']:,} B.")
    return 0


def process(args: argparse.Namespace) -> int:
    """Load the runs, print and write the reports, and export a candidate if requested."""
    from search_state.processor.runs import load_runs

    runs = load_runs([Path(path) for path in args.run_dirs])
    output_dir = _prepare_output_dir(Path(args.output_dir or runs[0].path).expanduser())
    try:
        _report_runs(runs, output_dir)
    except OSError as error:
        raise UnasError(f"Cannot write the reports into {output_dir}: {error}. Choose a "
                        "writable --output-dir with free space.") from error
    if args.export is not None:
        return _export(runs[0], args, output_dir)
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_arguments(parser, args)
    configure_logging(args.debug)
    try:
        return process(args)
    except UnasError as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
