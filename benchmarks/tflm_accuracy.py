"""Compare the resource models' predictions with TFLite Micro on random CNN architectures.

For each random architecture of `CnnSearchSpace` (28x28x1 input, 10 classes) the script
trains the Keras model briefly on MNIST, converts it to int8 TFLite, reorders its operators
and adds an offline memory plan where that helps (`deployment.export`), then measures:

- the predicted model size against the weight and bias bytes in the flatbuffer;
- the predicted peak memory usage against TFLM's arena: activations (head), bookkeeping
  (tail) and the smallest arena TFLM accepts, for the converter's order and the final model;
- TFLM's outputs against LiteRT's reference kernels, and float against int8 accuracy.

One JSON object per architecture goes to ``results.jsonl`` in the output folder, and
``--summarize`` turns that file into the tables of ``docs/resource_truth.md``.

Usage::

    python benchmarks/tflm_accuracy.py --count 50 --output-dir artifacts/tflm_accuracy
    python benchmarks/tflm_accuracy.py --summarize artifacts/tflm_accuracy/results.jsonl
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deployment import flatbuffer, memory_plan  # noqa: E402
from deployment.tflm_worker import TflmAbortError  # noqa: E402

logger = logging.getLogger("benchmarks.tflm_accuracy")

DEFAULT_DATA = Path("/work/shared/datasets/tiny/mnist_1000_200.npz")
INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10


def load_mnist(path: Path) -> dict[str, np.ndarray]:
    """Load the MNIST subset as float32 images in [0, 1] with a channel axis."""
    if not path.is_file():
        raise SystemExit(f"MNIST subset {path} not found; pass --data with the path of "
                         "mnist_1000_200.npz (keys x_train, y_train, x_test, y_test).")
    with np.load(path) as archive:
        return {
            "x_train": (archive["x_train"].astype(np.float32) / 255.0)[..., np.newaxis],
            "y_train": archive["y_train"].astype(np.int64),
            "x_test": (archive["x_test"].astype(np.float32) / 255.0)[..., np.newaxis],
            "y_test": archive["y_test"].astype(np.int64),
        }


def sample_architectures(count: int, seed: int, max_macs: float, max_model_size: float):
    """Yield ``count`` random architectures within the MAC and model size limits."""
    from cnn import CnnSearchSpace

    space = CnnSearchSpace()
    rng = np.random.default_rng(seed)
    produced = rejected = 0
    while produced < count:
        architecture = space.random_architecture(rng, INPUT_SHAPE)
        graph = architecture.build_resource_graph(INPUT_SHAPE, NUM_CLASSES)
        if graph.macs() > max_macs or graph.model_size_bytes() > max_model_size:
            rejected += 1
            continue
        produced += 1
        yield architecture, graph
    logger.info("Drew %d architectures, rejected %d over the limits.", produced + rejected,
                rejected)


def tflite_counts(tflite_bytes: bytes) -> dict:
    """Return operator, tensor and per-channel counts of a model, for the overhead fit."""
    model = flatbuffer.read_model(tflite_bytes)
    subgraph = model.subgraphs[0]
    types = [flatbuffer.operator_type_name(model, operator) for operator in subgraph.operators]
    channels = 0
    weighted = 0
    for operator, operator_type in zip(subgraph.operators, types):
        if operator_type in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            weighted += 1
            channels += int(subgraph.tensors[int(operator.outputs[0])].shape[-1])
    quantization_bytes = 0
    for tensor in subgraph.tensors:
        parameters = tensor.quantization
        if parameters is not None and parameters.scale is not None:
            # Each scale is a float32 and each zero point an int64 in the flatbuffer.
            quantization_bytes += 4 * len(parameters.scale) + 8 * len(parameters.zeroPoint)
    constants = flatbuffer.constant_bytes(model)
    return {
        "operators": len(types), "operator_types": types, "tensors": len(subgraph.tensors),
        "weighted_operators": weighted, "channels": channels,
        "weight_bytes": constants.weight_bytes, "other_constant_bytes": constants.other_bytes,
        "unique_buffer_bytes": constants.unique_buffer_bytes,
        "quantization_parameter_bytes": quantization_bytes, "file_bytes": len(tflite_bytes),
    }


def graph_counts(graph) -> dict:
    """Return op counts of a resource graph, the features of the overhead formula."""
    weighted = [node for node in graph.ops if node.op.type_name in
                ("Conv2D", "DepthwiseConv2D", "Dense")]
    return {
        "ops": len(graph.ops),
        "weighted_ops": len(weighted),
        "channels": sum(node.output.shape[-1] for node in weighted),
        "reshape_ops": sum(node.op.type_name == "Reshape" for node in graph.ops),
    }


def usage_record(usage) -> dict:
    return {"head": usage.head_bytes, "tail": usage.tail_bytes, "total": usage.total_bytes,
            "minimal": usage.minimal_arena_bytes,
            "records": {name: record.used_bytes for name, record in usage.records.items()}}


def measure_one(index: int, architecture, graph, data: dict, args) -> dict:
    """Train, export and measure one architecture; return its JSON record."""
    import keras

    from deployment import tflm
    from deployment.conversion import convert_to_tflite
    from deployment.export import optimise_for_tflm
    from deployment.litert import evaluate_tflite_accuracy
    from deployment.verification import compare_tflm_with_litert

    started = time.time()
    record = {"index": index, "fingerprint": architecture.fingerprint(),
              "architecture": architecture.to_dict(),
              "branches": sum(block.is_branch for block in architecture.conv_blocks),
              "predicted": {"model_size_bytes": graph.model_size_bytes(), "macs": graph.macs(),
                            "peak_memory_bytes": graph.peak_memory().peak_bytes,
                            **graph_counts(graph)}}

    keras.utils.set_random_seed(args.seed + index)
    model = architecture.build_model(INPUT_SHAPE, NUM_CLASSES)
    # Small batches and a high learning rate get more random architectures off chance
    # level in one short epoch than Keras's defaults do.
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x_train = data["x_train"][:args.train_examples]
    y_train = data["y_train"][:args.train_examples]
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=16, verbose=0)
    record["float_accuracy"] = float(model.evaluate(data["x_test"], data["y_test"],
                                                    verbose=0)[1])

    converted = convert_to_tflite(model, x_train)
    record["tflite_accuracy"] = evaluate_tflite_accuracy(converted, data["x_test"],
                                                         data["y_test"])
    record["converted"] = tflite_counts(converted)
    record["converted"]["greedy_plan_bytes"] = memory_plan.greedy_plan(
        memory_plan.activation_buffers(converted)).arena_bytes

    export = optimise_for_tflm(converted, graph)
    record["export"] = {
        "file_order_peak_bytes": export.file_order_peak_bytes,
        "peak_bytes": export.peak_bytes, "greedy_plan_bytes": export.greedy_plan_bytes,
        "planned_bytes": export.planned_bytes, "lower_bound_bytes": export.lower_bound_bytes,
        "has_offline_plan": export.has_offline_plan,
        "reordered": export.operator_order != sorted(export.operator_order),
        "file_bytes": len(export.tflite_bytes),
    }

    record["export"]["final_greedy_plan_bytes"] = memory_plan.greedy_plan(
        memory_plan.activation_buffers(export.tflite_bytes)).arena_bytes

    try:
        # The converter's order needs no bisection: head + tail is within 8 bytes of the
        # smallest arena whenever the activations exceed TFLM's temporary allocations.
        record["tflm_converted"] = usage_record(tflm.measure_arena(converted, bisect=False))
        final_usage = tflm.measure_arena(export.tflite_bytes)
        record["tflm_final"] = usage_record(final_usage)
        if export.has_offline_plan:
            # The same order without the plan shows what the offline plan saves.
            from deployment.reorder import apply_operator_order
            reordered = apply_operator_order(converted, export.operator_order)
            record["tflm_reordered_without_plan"] = usage_record(
                tflm.measure_arena(reordered, bisect=False))
        comparison = compare_tflm_with_litert(export.tflite_bytes,
                                              data["x_test"][:args.compare_examples],
                                              arena_size=final_usage.minimal_arena_bytes)
        record["outputs"] = {"examples": comparison.examples,
                             "identical_fraction": comparison.identical_fraction,
                             "max_abs_difference": comparison.max_abs_difference,
                             "argmax_agreement": comparison.argmax_agreement}
    except TflmAbortError as error:
        record["tflm_error"] = str(error).splitlines()[0]
        logger.warning("Architecture %d: %s", index, record["tflm_error"])

    record["seconds"] = round(time.time() - started, 1)
    return record


def run(args) -> None:
    data = load_mnist(args.data)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    results_path = output_dir / "results.jsonl"
    done = set()
    if results_path.exists():
        done = {json.loads(line)["index"] for line in results_path.read_text().splitlines()}
        logger.info("Resuming: %d architectures already measured in %s", len(done),
                    results_path)

    architectures = sample_architectures(args.count, args.seed, args.max_macs,
                                         args.max_model_size)
    with results_path.open("a") as results:
        for index, (architecture, graph) in enumerate(architectures):
            if index in done:
                continue
            try:
                record = measure_one(index, architecture, graph, data, args)
            except (RuntimeError, ValueError) as error:
                # One failing architecture should not end a 20-minute run; the summary
                # counts these records.
                logger.exception("Architecture %d (%s) failed", index,
                                 architecture.fingerprint())
                record = {"index": index, "fingerprint": architecture.fingerprint(),
                          "architecture": architecture.to_dict(),
                          "error": f"{type(error).__name__}: {error}", "seconds": 0.0}
            results.write(json.dumps(record) + "\n")
            results.flush()
            final = record.get("tflm_final", {})
            logger.info("Architecture %d (%s): predicted peak %s, TFLM head %s, total %s, "
                        "%.1f s", index, record["fingerprint"],
                        record.get("predicted", {}).get("peak_memory_bytes"),
                        final.get("head"), final.get("total"), record["seconds"])


def _relative_errors(predicted, measured) -> np.ndarray:
    """Return (predicted - measured) / measured for paired values."""
    predicted = np.asarray(predicted, dtype=float)
    measured = np.asarray(measured, dtype=float)
    return (predicted - measured) / measured


def _error_row(name: str, errors: np.ndarray) -> str:
    worst = errors[np.argmax(np.abs(errors))]
    within = np.mean(np.abs(errors) <= 0.05)
    return (f"| {name} | {100 * np.median(np.abs(errors)):.2f} % | {100 * worst:+.2f} % | "
            f"{100 * within:.0f} % |")


def fit_tail_formula(records: list[dict]) -> tuple[dict, np.ndarray, list]:
    """Fit the tail formula of `deployment.arena_model` to the measured tails.

    Returns the coefficients, the leave-one-out tail predictions and the records' graphs.
    """
    from cnn import CnnSearchSpace
    from deployment.arena_model import (binary_add_graph, fit_persistent_coefficients,
                                        persistent_features)

    space = CnnSearchSpace()
    graphs = [space.architecture_from_dict(record["architecture"]).build_resource_graph(
        INPUT_SHAPE, NUM_CLASSES) for record in records]
    tails = [record["tflm_final"]["tail"] for record in records]
    coefficients = fit_persistent_coefficients(graphs, tails)

    held_out = np.empty(len(records))
    for index in range(len(records)):
        others = [position for position in range(len(records)) if position != index]
        fold = fit_persistent_coefficients([graphs[i] for i in others], [tails[i] for i in others])
        features = persistent_features(binary_add_graph(graphs[index]))
        held_out[index] = sum(fold[name] * value for name, value in features.items())
    return coefficients, held_out, graphs


def summarize(results_path: Path) -> str:
    """Return the Markdown tables of a results file."""
    records = [json.loads(line) for line in Path(results_path).read_text().splitlines()]
    failed = [record for record in records if "error" in record]
    records = [record for record in records if "error" not in record]
    measured = [record for record in records if "tflm_final" in record]
    aborted = [record for record in records if "tflm_error" in record]
    minutes = sum(record["seconds"] for record in records) / 60
    lines = [f"Architectures: {len(records)}; measured on TFLM: {len(measured)}; TFLM "
             f"aborted: {len(aborted)}; failed: {len(failed)}; run time {minutes:.1f} min.", ""]

    # Model size: weights and biases in the flatbuffer against the prediction.
    predicted_size = np.array([r["predicted"]["model_size_bytes"] for r in records])
    weight_bytes = np.array([r["converted"]["weight_bytes"] for r in records])
    unique_bytes = np.array([r["converted"]["unique_buffer_bytes"] for r in records])
    file_bytes = np.array([r["export"]["file_bytes"] for r in records])
    quantization = np.array([r["converted"]["quantization_parameter_bytes"] for r in records])
    other = np.array([r["converted"]["other_constant_bytes"] for r in records])
    lines += [
        "| model size | value |", "|---|---|",
        f"| weight+bias bytes == prediction | {np.sum(weight_bytes == predicted_size)} of "
        f"{len(records)} |",
        f"| weight+bias bytes - prediction (min, max) | {np.min(weight_bytes - predicted_size)}, "
        f"{np.max(weight_bytes - predicted_size)} |",
        f"| distinct buffers < weight+bias bytes (shared constants) | "
        f"{np.sum(unique_bytes < weight_bytes + other)} |",
        f"| other constants (axes, paddings, shapes), median / max | {np.median(other):.0f} / "
        f"{np.max(other)} B |",
        f"| quantisation parameters, median / max | {np.median(quantization):.0f} / "
        f"{np.max(quantization)} B |",
        f"| file bytes / prediction, median (min, max) | "
        f"{np.median(file_bytes / predicted_size):.3f} ({np.min(file_bytes / predicted_size):.3f}, "
        f"{np.max(file_bytes / predicted_size):.3f}) |",
        "",
    ]
    if not measured:
        return "\n".join(lines)

    # Activation memory and the total arena.
    predicted_peak = np.array([r["predicted"]["peak_memory_bytes"] for r in measured])
    head = np.array([r["tflm_final"]["head"] for r in measured])
    tail = np.array([r["tflm_final"]["tail"] for r in measured])
    minimal = np.array([r["tflm_final"]["minimal"] for r in measured])
    coefficients, held_out_tail, graphs = fit_tail_formula(measured)
    from deployment.arena_model import binary_add_graph, temporary_bytes
    temporary = np.array([temporary_bytes(graph) for graph in graphs])
    binary_peak = np.array([binary_add_graph(graph).peak_memory().peak_bytes
                            for graph in graphs])
    simulated = np.array([r["converted"]["greedy_plan_bytes"] for r in measured])
    converted_head = np.array([r["tflm_converted"]["head"] for r in measured])
    planned = np.array([r["export"]["planned_bytes"] for r in measured])
    lines += [
        "| prediction vs TFLM (final model) | median abs error | worst error | within 5 % |",
        "|---|---|---|---|",
        _error_row("peak memory usage vs head", _relative_errors(predicted_peak, head)),
        _error_row("peak memory usage, binary Adds, vs head",
                   _relative_errors(binary_peak, head)),
        _error_row("peak memory usage vs smallest arena", _relative_errors(predicted_peak,
                                                                            minimal)),
        _error_row("tail formula (leave-one-out) vs tail", _relative_errors(held_out_tail, tail)),
        _error_row("peak (binary Adds) + tail formula (leave-one-out) vs smallest arena",
                   _relative_errors(binary_peak + held_out_tail, minimal)),
        _error_row("max(peak, temporary) + tail formula (leave-one-out) vs smallest arena",
                   _relative_errors(np.maximum(binary_peak, temporary) + held_out_tail,
                                    minimal)),
        "",
        "Tail formula coefficients (bytes): " + ", ".join(
            f"{name} {value:.1f}" for name, value in coefficients.items()),
        f"Smallest arena - (head + tail): min {np.min(minimal - head - tail)}, max "
        f"{np.max(minimal - head - tail)} bytes; models where it exceeds 8 bytes: "
        + ", ".join(f"{r['fingerprint']} (head {h}, needs {m - t})" for r, h, t, m
                    in zip(measured, head, tail, minimal) if m - h - t > 8) + ".",
        f"Greedy-planner simulation == TFLM head, converter's order: "
        f"{np.sum(simulated == converted_head)} of {len(measured)}; planned activation bytes "
        f"== TFLM head, final model: {np.sum(planned == head)} of {len(measured)}.",
        "",
    ]

    # Reordering and offline plans.
    reordered = [r for r in measured if r["export"]["file_order_peak_bytes"]
                 > r["export"]["peak_bytes"]]
    lines += ["| architecture | peak, file order | peak, optimal order | TFLM head + tail "
              "before | after |", "|---|---|---|---|---|"]
    for r in reordered:
        after = r.get("tflm_reordered_without_plan", r["tflm_final"])
        lines.append(f"| {r['fingerprint']} | {r['export']['file_order_peak_bytes']} | "
                     f"{r['export']['peak_bytes']} | {r['tflm_converted']['total']} | "
                     f"{after['total']} |")
    planned = [r for r in measured if r["export"]["has_offline_plan"]]
    lines += ["", f"Reordered: {len(reordered)} of {len(measured)} architectures "
              f"({sum(r['branches'] > 0 for r in measured)} have branches).", "",
              "| architecture | greedy plan (TFLM head) | offline plan (TFLM head) | "
              "lower bound |", "|---|---|---|---|"]
    for r in planned:
        without = r.get("tflm_reordered_without_plan", {})
        lines.append(f"| {r['fingerprint']} | {without.get('head')} | {r['tflm_final']['head']}"
                     f" | {r['export']['lower_bound_bytes']} |")
    lines += ["", f"Offline plan stored: {len(planned)} of {len(measured)} architectures.", ""]

    # Outputs and accuracy.
    compared = [r for r in measured if "outputs" in r]
    identical = np.array([r["outputs"]["identical_fraction"] for r in compared])
    difference = np.array([r["outputs"]["max_abs_difference"] for r in compared])
    float_accuracy = np.array([r["float_accuracy"] for r in records])
    int8_accuracy = np.array([r["tflite_accuracy"] for r in records])
    lines += [
        f"TFLM vs LiteRT reference kernels: {len(compared)} models x "
        f"{compared[0]['outputs']['examples'] if compared else 0} images, identical outputs in "
        f"{100 * np.mean(identical):.1f} % (lowest per model {100 * np.min(identical):.0f} %), "
        f"largest difference {np.max(difference)} quantisation steps.",
        f"Accuracy on 200 test images, float vs int8: median |difference| "
        f"{100 * np.median(np.abs(float_accuracy - int8_accuracy)):.1f} points, worst "
        f"{100 * np.max(np.abs(float_accuracy - int8_accuracy)):.1f} points; median float "
        f"accuracy {100 * np.median(float_accuracy):.1f} %.",
    ]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=50,
                        help="number of random architectures (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the architecture sampler")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="MNIST subset .npz with x_train, y_train, x_test, y_test")
    parser.add_argument("--output-dir", default="artifacts/tflm_accuracy",
                        help="folder for results.jsonl (default artifacts/tflm_accuracy)")
    parser.add_argument("--train-examples", type=int, default=500,
                        help="training images per architecture (default 500)")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs (default 1)")
    parser.add_argument("--compare-examples", type=int, default=20,
                        help="test images run through both TFLM and LiteRT (default 20)")
    parser.add_argument("--max-macs", type=float, default=20e6,
                        help="skip architectures with more MACs (default 20e6)")
    parser.add_argument("--max-model-size", type=float, default=500_000,
                        help="skip architectures with a larger model size in bytes "
                             "(default 500000)")
    parser.add_argument("--summarize", type=Path, metavar="RESULTS_JSONL",
                        help="print the summary tables of a results file and exit")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    if args.summarize:
        print(summarize(args.summarize))
        return
    run(args)


if __name__ == "__main__":
    main()
