"""Write random CNN architectures as int8 .tflite models for latency measurements on a device.

Each model is a random architecture of `CnnSearchSpace` with random weights: Keras's
initialisers for the kernels, and random biases and batch-normalisation statistics so that
no constant is all zeros (the converter would drop or share such constants). It is
calibrated on uniform random inputs in [0, 1], converted to int8, reordered for minimum
peak memory usage, given an offline memory plan where that helps, and measured with the
TFLM interpreter. The weights are not trained, so the models' outputs are meaningless,
but their operators, shapes and arena are those of trained models of the same architecture.

Usage::

    python generate_tflite_models.py --count 20 --output-dir artifacts/latency_models

writes ``model_000.tflite`` ..., ``model_000.json`` (the architecture) and ``models.csv``
with the columns file, fingerprint, predicted_peak_memory_bytes,
predicted_model_size_bytes, macs, tflm_arena_bytes, tflm_activation_bytes,
tflm_persistent_bytes, file_bytes, offline_plan and latency_ms (left empty). Fill in
latency_ms with measurements and fit `deployment.latency_model.LatencyModel.fit_csv`.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

logger = logging.getLogger("generate_tflite_models")

CSV_COLUMNS = ("file", "fingerprint", "predicted_peak_memory_bytes",
               "predicted_model_size_bytes", "macs", "tflm_arena_bytes",
               "tflm_activation_bytes", "tflm_persistent_bytes", "file_bytes", "offline_plan",
               "latency_ms")

#: Random inputs used to calibrate the activation ranges of each model.
CALIBRATION_EXAMPLES = 32

#: Architectures drawn per requested model before giving up.
MAX_DRAWS_PER_MODEL = 20


def randomise_weights(model, rng: np.random.Generator) -> None:
    """Give every bias and batch-normalisation statistic a random, non-zero value."""
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        names = [variable.name for variable in layer.weights]
        randomised = []
        for name, values in zip(names, weights):
            if name in ("bias", "beta", "moving_mean"):
                values = rng.normal(0.0, 0.1, values.shape)
            elif name in ("gamma", "moving_variance"):
                values = rng.uniform(0.5, 1.5, values.shape)
            randomised.append(values.astype(np.float32))
        layer.set_weights(randomised)


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid input shape {text!r}: expected comma-separated positive ints such as "
            "28,28,1") from None
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(
            f"invalid input shape {text!r}: expected height,width,channels, such as 28,28,1")
    return shape


def generate(count: int, output_dir: Path, seed: int, input_shape: tuple[int, ...],
             num_classes: int, max_macs: Optional[float],
             max_model_size: Optional[float]) -> list[dict]:
    """Write ``count`` models and ``models.csv`` to ``output_dir``; return the CSV rows."""
    import keras

    from cnn import CnnSearchSpace
    from deployment import tflm
    from deployment.conversion import convert_to_tflite
    from deployment.export import optimise_for_tflm
    from deployment.tflm_worker import TflmAbortError

    output_dir.mkdir(parents=True, exist_ok=True)
    space = CnnSearchSpace()
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    calibration = rng.uniform(0.0, 1.0, (CALIBRATION_EXAMPLES, *input_shape)).astype(np.float32)

    rows: list[dict] = []
    draws = 0
    while len(rows) < count:
        draws += 1
        if draws > MAX_DRAWS_PER_MODEL * count:
            raise SystemExit(f"Drew {draws - 1} architectures but only {len(rows)} fit the "
                             "limits and ran on TFLM; raise --max-macs or --max-model-size.")

        architecture = space.random_architecture(rng, input_shape)
        graph = architecture.build_resource_graph(input_shape, num_classes)
        if (max_macs is not None and graph.macs() > max_macs) or \
                (max_model_size is not None and graph.model_size_bytes() > max_model_size):
            continue

        model = architecture.build_model(input_shape, num_classes)
        randomise_weights(model, rng)
        export = optimise_for_tflm(convert_to_tflite(model, calibration), graph)
        try:
            usage = tflm.measure_arena(export.tflite_bytes)
        except TflmAbortError as error:
            # Random weights can leave an activation constant on the calibration inputs.
            logger.warning("Skipped architecture %s: %s", architecture.fingerprint(),
                           str(error).splitlines()[0])
            continue

        stem = f"model_{len(rows):03d}"
        (output_dir / f"{stem}.tflite").write_bytes(export.tflite_bytes)
        (output_dir / f"{stem}.json").write_text(json.dumps(architecture.to_dict()) + "\n")
        rows.append({
            "file": f"{stem}.tflite", "fingerprint": architecture.fingerprint(),
            "predicted_peak_memory_bytes": graph.peak_memory().peak_bytes,
            "predicted_model_size_bytes": graph.model_size_bytes(), "macs": graph.macs(),
            "tflm_arena_bytes": usage.minimal_arena_bytes,
            "tflm_activation_bytes": usage.head_bytes, "tflm_persistent_bytes": usage.tail_bytes,
            "file_bytes": len(export.tflite_bytes), "offline_plan": export.has_offline_plan,
            "latency_ms": "",
        })
        logger.info("Wrote %s: %d MACs, arena %d bytes", stem, graph.macs(),
                    usage.minimal_arena_bytes)

    with (output_dir / "models.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write random CNN architectures as int8 .tflite models with their "
                    "predicted and measured resources, for latency benchmarking.")
    parser.add_argument("--count", type=int, required=True, help="number of models to write")
    parser.add_argument("--output-dir", type=Path, required=True,
                        help="folder for the .tflite files and models.csv")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the architectures and weights (default 0)")
    parser.add_argument("--input-shape", type=parse_shape, default=(28, 28, 1),
                        help="height,width,channels of the input (default 28,28,1)")
    parser.add_argument("--num-classes", type=int, default=10,
                        help="classifier outputs (default 10)")
    parser.add_argument("--max-macs", type=float, default=None,
                        help="skip architectures with more MACs (default: no limit)")
    parser.add_argument("--max-model-size", type=float, default=None,
                        help="skip architectures with a larger model size, in bytes "
                             "(default: no limit)")
    args = parser.parse_args(argv)
    if args.count < 1 or args.num_classes < 1:
        parser.error(f"--count and --num-classes must be positive, got {args.count} and "
                     f"{args.num_classes}")

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    generate(args.count, args.output_dir, args.seed, args.input_shape, args.num_classes,
             args.max_macs, args.max_model_size)
    logger.info("Wrote %d models and models.csv to %s", args.count, args.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
