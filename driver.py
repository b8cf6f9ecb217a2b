"""Run a constrained architecture search from a config file.

    python driver.py configs/cnn_digits_quick.py --name quick

Running the same command again resumes the run from its journal.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
from pathlib import Path
from typing import Optional

# Set before TensorFlow is imported (config files import it): hide its start-up banner.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from errors import UnasError  # noqa: E402 - after the environment is set

logger = logging.getLogger("driver")

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

#: Accepted forms of --ray-address: "auto", or HOST:PORT with an optional ray:// scheme.
RAY_ADDRESS_PATTERN = re.compile(r"auto|(ray://)?[^\s:/]+:\d{1,5}")


def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="driver.py",
        description="Search for small neural networks under memory, size and MAC bounds.",
        epilog="Each option left out keeps the config file's value.")
    parser.add_argument("config", help="Python config file, e.g. configs/cnn_digits_quick.py.")
    parser.add_argument("--name", help="Run name; the run folder is OUTPUT_DIR/NAME. Running "
                        "with an existing name resumes that run. Default: the config file's "
                        "name without .py.")
    parser.add_argument("--load-from", metavar="PATH",
                        help="Start a new run from another run's evaluated candidates (its "
                        "folder or its journal.jsonl).")
    parser.add_argument("--rounds", type=_positive_int, metavar="N",
                        help="Candidates to evaluate in total, failed ones included.")
    parser.add_argument("--epochs", type=_positive_int, metavar="N",
                        help="Training epochs per candidate.")
    parser.add_argument("--parallel", type=_positive_int, metavar="N",
                        help="Candidates trained at once (one worker process each).")
    parser.add_argument("--seed", type=_non_negative_int, metavar="N",
                        help="Seed of the search and of each candidate's training.")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="Directory with the dataset's files (also read from the "
                        "UNAS_DATA_DIR environment variable).")
    parser.add_argument("--ray-address", metavar="ADDR",
                        help="Join this Ray cluster (e.g. 10.0.0.5:6379) instead of starting "
                        "a local Ray instance on 127.0.0.1.")
    parser.add_argument("--output-dir", metavar="DIR",
                        help="Folder that contains run folders. Default: the config's "
                        "checkpoint_dir, which defaults to artifacts/.")
    parser.add_argument("--dry-run", action="store_true",
                        help="Check the config and the dataset, build one random candidate and "
                        "print its resources, then exit without training.")
    parser.add_argument("--force", action="store_true",
                        help="Resume even if the config's search space or dataset changed.")
    parser.add_argument("--debug", action="store_true",
                        help="Log at DEBUG level and show full tracebacks.")
    return parser


def _check_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Report option values that argparse's types cannot check, the way argparse does."""
    if args.name is not None and (args.name in ("", ".", "..") or "/" in args.name
                                  or os.sep in args.name or "\0" in args.name):
        parser.error(f"argument --name: expected a folder name without '/', got {args.name!r}. "
                     "Use --output-dir to choose where run folders go.")
    if args.ray_address is not None and not RAY_ADDRESS_PATTERN.fullmatch(args.ray_address):
        parser.error(f"argument --ray-address: expected HOST:PORT (e.g. 10.0.0.5:6379) or "
                     f"'auto', got {args.ray_address!r}")


def configure_logging(debug: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    if not debug:
        for noisy in ("ray", "absl", "tensorflow", "h5py"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def run(args: argparse.Namespace) -> int:
    """Load the config, prepare the run folder, run the search and report the Pareto front.

    Every check of the user's input (config, options, data, bounds, run folder and journal)
    happens before Ray starts, and a new run folder is created only after all of them pass.
    """
    from config import check_bounds_reachable, check_training_factories, load_config

    # Configuration: the file, then the command-line overrides, validated together.
    config = load_config(args.config).with_overrides(
        rounds=args.rounds, epochs=args.epochs, parallel=args.parallel, seed=args.seed,
        data_dir=args.data_dir, output_dir=args.output_dir)
    name = args.name or config.path.stem

    # Load the data here first, so that a missing file is reported before Ray starts.
    dataset = config.training.dataset
    splits = dataset.load()
    logger.info("Dataset %s: %d train, %d validation, %d test examples of shape %s, %d classes.",
                dataset.name, len(splits.y_train), len(splits.y_val), len(splits.y_test),
                dataset.input_shape, dataset.num_classes)
    check_bounds_reachable(config.bounds, dataset.input_shape)
    check_training_factories(config.training)

    if args.dry_run:
        return dry_run(config)

    run_dir = open_run_directory(args, config, name)
    try:
        outcome = search(args, config, run_dir)
    finally:
        run_dir.unlock()
    return report(name, config, run_dir, outcome)


def open_run_directory(args: argparse.Namespace, config, name: str):
    """Resume the run folder ``OUTPUT_DIR/NAME`` or create it, holding its lock on return.

    Raises:
        UnasError: the folder is in use, belongs to another config (without ``--force``), has
            an unreadable journal, or cannot be written; or ``--load-from`` is invalid.
    """
    from search_state.journal import (RunDirectory, check_architectures, check_records,
                                      import_records)

    search_space = config.search.search_space
    input_shape = config.training.dataset.input_shape
    run_dir = RunDirectory(Path(config.search.checkpoint_dir) / name)
    existing_run_error = UnasError(
        f"--load-from was given, but the run {run_dir.path} already exists. Choose a new "
        "--name, or leave out --load-from to resume it.")
    if run_dir.exists() and args.load_from:
        raise existing_run_error

    imported = []
    if args.load_from:
        imported = import_records(Path(args.load_from))
        check_architectures(imported, search_space, input_shape, Path(args.load_from))

    run_dir.lock()
    try:
        if run_dir.exists():
            # Checked again under the lock: another driver may have created the run meanwhile.
            if args.load_from:
                raise existing_run_error
            run_dir.check_compatible(config.describe(), force=args.force)
            records = run_dir.records()
            check_records(records, run_dir.journal_path)
            check_architectures(records, search_space, input_shape, run_dir.journal_path)
            run_dir.discard_torn_tail()
            logger.info("Resuming the run in %s (%d candidates recorded).", run_dir.path,
                        len(records))
        else:
            run_dir.create(name, config.describe(), config.path, records=imported)
            logger.info("Created the run folder %s%s.", run_dir.path,
                        f" with {len(imported)} candidates from {args.load_from}"
                        if args.load_from else "")
    except BaseException:
        run_dir.unlock()
        raise
    return run_dir


def search(args: argparse.Namespace, config, run_dir):
    """Start Ray and the workers, run the search loop and stop Ray again."""
    from execution.ray_pool import WorkerPool, start_ray, stop_ray
    from execution.search_loop import SearchLoop

    search_settings = config.search
    dataset = config.training.dataset
    bounds = config.bounds.as_objective_bounds()

    # Workers: one per parallel evaluation, sharing the machine's cores.
    cpus = os.cpu_count() or 1
    parallel = search_settings.max_parallel_evaluations
    try:
        start_ray(num_cpus=cpus, address=args.ray_address)
        # ray.init replaces the SIGTERM handler with one that exits at once.
        signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
        pool = WorkerPool(config.training, search_settings.search_space, size=parallel,
                          cpus_per_worker=min(1.0, cpus / parallel),
                          intra_op_threads=max(1, cpus // parallel),
                          latency_model=config.bounds.load_latency_model())
        algorithm = config.search_algorithm.algorithm(
            search_settings.search_space, dataset.input_shape, bounds,
            population_size=search_settings.population_size,
            sample_size=search_settings.sample_size,
            seed=search_settings.seed)
        loop = SearchLoop(algorithm, pool, run_dir, rounds=search_settings.rounds,
                          parallel=parallel, bounds=bounds, base_seed=search_settings.seed,
                          keep_pareto_models=search_settings.keep_pareto_models)
        logger.info("Searching %s: %d rounds, %d in parallel, population %d, sample %d, "
                    "%d epochs per candidate.", search_settings.search_space.name,
                    search_settings.rounds, parallel, search_settings.population_size,
                    search_settings.sample_size, config.training.epochs)
        return loop.run()
    finally:
        stop_ray()


def report(name: str, config, run_dir, outcome) -> int:
    """Print the summary and the Pareto table, write pareto.csv and return the exit code."""
    from search_state.report import format_pareto_table, write_pareto_csv

    bounds = config.bounds.as_objective_bounds()
    records = outcome.records
    failed = sum(record["status"] != "completed" for record in records)
    feasible = sum(bool(record.get("feasible")) for record in records)
    front = write_pareto_csv(records, bounds, run_dir.path / "pareto.csv")
    print(f"\nRun {name}: {len(records)} candidates evaluated ({failed} failed, "
          f"{feasible} feasible) in {run_dir.path}.")
    print(f"Pareto front of feasible candidates ({len(front)}), also in "
          f"{run_dir.path / 'pareto.csv'}:")
    print(format_pareto_table(front))
    if outcome.interrupted:
        cancelled = (f" The cancelled candidates {outcome.abandoned_ids} will be proposed "
                     "again." if outcome.abandoned_ids else "")
        print(f"\nInterrupted.{cancelled} Run the same command again to resume.")
        return EXIT_INTERRUPTED
    return 0


def _interrupt_on_sigterm(signum, frame):
    # A scheduler or `timeout` stops jobs with SIGTERM: treat it like Ctrl-C, so the running
    # candidates finish or are cancelled and the summary is written.
    raise KeyboardInterrupt


def dry_run(config) -> int:
    """Print the dataset's shapes and class counts and one random candidate's resources."""
    import json

    import numpy as np

    from model_trainer import resource_objectives

    dataset = config.training.dataset
    summary = dataset.describe()
    print(f"Config {config.path}: valid.")
    print(f"Dataset {summary['name']}: input shape {tuple(summary['input_shape'])}, "
          f"{summary['num_classes']} classes.")
    for split in ("train", "val", "test"):
        print(f"  {split:5s} {summary[split]['examples']:7,d} examples, per class: "
              f"{summary[split]['class_counts']}")

    search_space = config.search.search_space
    architecture = search_space.random_architecture(
        np.random.default_rng(config.search.seed), dataset.input_shape)
    resources = resource_objectives(architecture, dataset.input_shape, dataset.num_classes)
    bounds = config.bounds.as_objective_bounds()
    print(f"One random {search_space.name} candidate: "
          f"{json.dumps(architecture.to_dict(), separators=(',', ':'))}")
    for name, value in resources.items():
        bound = bounds.get(name)
        print(f"  {name:18s} {value:>12,d}" + (f"  (bound {bound:,})" if bound else ""))
    print("Dry run finished: nothing was trained or written.")
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    """Run the command line and return the exit code: 0, 2 for invalid input, 130 if stopped."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        _check_options(parser, args)
    except SystemExit as exit_request:
        # argparse exits with 2 after printing usage and the error, and with 0 after --help.
        return exit_request.code if isinstance(exit_request.code, int) else EXIT_USER_ERROR
    configure_logging(args.debug)

    # Set SIGINT explicitly: a shell without job control starts background jobs with SIGINT
    # ignored, and then `kill -INT` would do nothing.
    previous_handlers = {signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
                         signal.SIGTERM: signal.signal(signal.SIGTERM, _interrupt_on_sigterm)}
    try:
        return run(args)
    except UnasError as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("\nInterrupted. Run the same command again to resume.", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())
