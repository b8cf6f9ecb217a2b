"""Run a constrained architecture search from a config file.

    python driver.py configs/cnn_digits_quick.py --name quick

Running the same command again resumes the run from its journal.
"""
from __future__ import annotations

import argparse
import logging
import os
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Search for small neural networks under memory, size and MAC bounds.",
        epilog="Each option left out keeps the config file's value.")
    parser.add_argument("config", help="Python config file, e.g. configs/cnn_digits_quick.py.")
    parser.add_argument("--name", help="Run name; the run folder is OUTPUT_DIR/NAME. Running "
                        "with an existing name resumes that run. Default: the config file's "
                        "name without .py.")
    parser.add_argument("--load-from", metavar="PATH",
                        help="Start a new run from another run's evaluated candidates (its "
                        "folder or its journal.jsonl).")
    parser.add_argument("--rounds", type=int, metavar="N",
                        help="Candidates to evaluate in total, failed ones included.")
    parser.add_argument("--epochs", type=int, metavar="N", help="Training epochs per candidate.")
    parser.add_argument("--parallel", type=int, metavar="N",
                        help="Candidates trained at once (one worker process each).")
    parser.add_argument("--seed", type=int, metavar="N",
                        help="Seed of the search and of each candidate's training.")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="Directory with the dataset's files (also read from the "
                        "UNAS_DATA_DIR environment variable).")
    parser.add_argument("--ray-address", metavar="ADDR",
                        help="Join this Ray cluster (e.g. 10.0.0.5:6379) instead of starting "
                        "a local Ray instance on 127.0.0.1.")
    parser.add_argument("--output-dir", metavar="DIR",
                        help="Folder that holds run folders. Default: the config's "
                        "checkpoint_dir, which defaults to artifacts/.")
    parser.add_argument("--dry-run", action="store_true",
                        help="Check the config and the dataset, build one random candidate and "
                        "print its resources, then exit without training.")
    parser.add_argument("--force", action="store_true",
                        help="Resume even if the config's search space or dataset changed.")
    parser.add_argument("--debug", action="store_true",
                        help="Log at DEBUG level and show full tracebacks.")
    return parser


def _check_positive(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for option in ("rounds", "epochs", "parallel"):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option} must be a positive integer, but got {value}.")
    if args.seed is not None and args.seed < 0:
        parser.error(f"--seed must be a non-negative integer, but got {args.seed}.")


def configure_logging(debug: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    if not debug:
        for noisy in ("ray", "absl", "tensorflow", "h5py"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def run(args: argparse.Namespace) -> int:
    """Load the config, prepare the run folder, run the search and report the Pareto front."""
    import numpy as np

    from config import load_config
    from execution.ray_pool import WorkerPool, start_ray, stop_ray
    from execution.search_loop import SearchLoop
    from search_state.journal import RunDirectory, import_records
    from search_state.report import format_pareto_table, write_pareto_csv

    # Configuration: the file, then the command-line overrides, validated together.
    config = load_config(args.config).with_overrides(
        rounds=args.rounds, epochs=args.epochs, parallel=args.parallel, seed=args.seed,
        data_dir=args.data_dir, output_dir=args.output_dir)
    name = args.name or config.path.stem
    search = config.search
    bounds = config.bounds.as_objective_bounds()

    # Load the data here first, so that a missing file is reported before Ray starts.
    dataset = config.training.dataset
    splits = dataset.load()
    logger.info("Dataset %s: %d train, %d validation, %d test examples of shape %s, %d classes.",
                dataset.name, len(splits.y_train), len(splits.y_val), len(splits.y_test),
                dataset.input_shape, dataset.num_classes)

    if args.dry_run:
        return dry_run(config)

    # The run folder: resume when it exists, otherwise create it (optionally seeded).
    run_dir = RunDirectory(Path(search.checkpoint_dir) / name)
    description = config.describe()
    if run_dir.exists():
        if args.load_from:
            raise UnasError(f"--load-from was given, but the run {run_dir.path} already exists. "
                            "Choose a new --name, or leave out --load-from to resume it.")
        run_dir.check_compatible(description, force=args.force)
        logger.info("Resuming the run in %s (%d candidates recorded).", run_dir.path,
                    len(run_dir.records()))
    else:
        imported = import_records(Path(args.load_from)) if args.load_from else []
        run_dir.create(name, description, config.path)
        for record in imported:
            run_dir.append(record)
        logger.info("Created the run folder %s%s.", run_dir.path,
                    f" with {len(imported)} candidates from {args.load_from}"
                    if args.load_from else "")

    # Workers: one per parallel evaluation, sharing the machine's cores.
    cpus = os.cpu_count() or 1
    parallel = search.max_parallel_evaluations
    start_ray(num_cpus=cpus, address=args.ray_address)
    try:
        pool = WorkerPool(config.training, search.search_space, size=parallel,
                          cpus_per_worker=min(1.0, cpus / parallel),
                          intra_op_threads=max(1, cpus // parallel))
        algorithm = config.search_algorithm.algorithm(
            search.search_space, dataset.input_shape, bounds,
            population_size=search.population_size, sample_size=search.sample_size,
            rng=np.random.default_rng(search.seed))
        loop = SearchLoop(algorithm, pool, run_dir, rounds=search.rounds, parallel=parallel,
                          bounds=bounds, base_seed=search.seed)
        logger.info("Searching %s: %d rounds, %d in parallel, population %d, sample %d, "
                    "%d epochs per candidate.", search.search_space.name, search.rounds,
                    parallel, search.population_size, search.sample_size,
                    config.training.epochs)
        outcome = loop.run()
    finally:
        stop_ray()

    # Report: summary, Pareto table and CSV.
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
        print("\nInterrupted. Run the same command again to resume.")
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
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_positive(parser, args)
    configure_logging(args.debug)
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    try:
        return run(args)
    except UnasError as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("\nInterrupted before the search started.", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
