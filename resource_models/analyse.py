"""Report the memory, size and MACs of a ``.tflite`` file, in its own and the optimal order.

Usage::

    python -m resource_models.analyse MODEL.tflite [--json] [--plot PNG] [--subgraph N]

The report lists each operator with its output tensor, MACs and the working set while it
runs in file order, which is the order TFLite Micro uses. It then gives the peak memory
usage in file order and in the order that minimises it, that order, the model size and
the MACs.
The activation bytes that TFLM's greedy planner needs for the file order are included;
they can exceed the peak when buffers fragment (see `deployment.memory_plan`).

``--json`` prints one JSON object instead; ``--plot`` writes the working set over the
schedule, for both orders, as a PNG.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from resource_models.tflite_reader import TfliteGraph, read_tflite

logger = logging.getLogger(__name__)


def analyse(tflite_graph: TfliteGraph, tflite_bytes: bytes, subgraph_index: int = 0) -> dict:
    """Return the report of `main` as JSON-compatible data."""
    from deployment import memory_plan

    graph = tflite_graph.graph
    file_order = graph.schedule_memory(tflite_graph.file_order)
    optimal = graph.peak_memory()
    buffers = memory_plan.activation_buffers(tflite_bytes, subgraph_index)
    constants = tflite_graph.constant_bytes

    operators = []
    for index, (node, working_set) in enumerate(zip(graph.ops, file_order.working_set_bytes)):
        operators.append({
            "index": index, "name": node.name, "type": tflite_graph.operator_types[index],
            "output_shape": list(node.output.shape), "output_bytes": node.output.size_bytes,
            "macs": node.macs(), "working_set_bytes": working_set,
        })

    return {
        "file_bytes": tflite_graph.file_bytes,
        "operators": operators,
        "peak_memory_bytes": file_order.peak_bytes,
        "optimal_peak_memory_bytes": optimal.peak_bytes,
        "optimal_order": optimal.order,
        "optimal_operator_order": [tflite_graph.operator_index(name) for name in optimal.order],
        "optimal_working_set_bytes": optimal.working_set_bytes,
        "tflm_greedy_plan_bytes": memory_plan.greedy_plan(buffers).arena_bytes,
        "model_size_bytes": constants.weight_bytes,
        "int8_model_size_bytes": graph.model_size_bytes(),
        "other_constant_bytes": constants.other_bytes,
        "unique_constant_buffer_bytes": constants.unique_buffer_bytes,
        "macs": graph.macs(),
        "unsupported_operator_types": tflite_graph.unsupported_types,
    }


def format_report(report: dict, path: str) -> str:
    """Return the report as aligned text for a terminal."""
    lines = [f"{path}: {report['file_bytes']} bytes, {len(report['operators'])} operators", ""]
    header = f"{'#':>4}  {'operator':<22} {'output shape':<16} {'bytes':>9} {'MACs':>12} " \
             f"{'working set':>12}"
    lines.append(header)
    lines.append("-" * len(header))
    for operator in report["operators"]:
        shape = "x".join(str(size) for size in operator["output_shape"])
        lines.append(f"{operator['index']:>4}  {operator['type']:<22} {shape:<16} "
                     f"{operator['output_bytes']:>9} {operator['macs']:>12} "
                     f"{operator['working_set_bytes']:>12}")
    lines.append("")

    order = " ".join(str(index) for index in report["optimal_operator_order"])
    lines += [
        f"Peak memory usage, file order:    {report['peak_memory_bytes']:>12} bytes",
        f"Peak memory usage, optimal order: {report['optimal_peak_memory_bytes']:>12} bytes",
        f"TFLM greedy plan, file order:     {report['tflm_greedy_plan_bytes']:>12} bytes "
        "(16-byte aligned buffers)",
        f"Optimal operator order: {order}",
        f"Model size (weights and biases):  {report['model_size_bytes']:>12} bytes",
        f"Other constant data:              {report['other_constant_bytes']:>12} bytes",
        f"MACs:                             {report['macs']:>12}",
    ]
    if report["unsupported_operator_types"]:
        lines.append("Counted with 0 MACs (no formula): "
                     + ", ".join(report["unsupported_operator_types"]))
    return "\n".join(lines)


def plot_working_sets(report: dict, path: Path, title: str) -> None:
    """Write a PNG of the working set per step for the file order and the optimal order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    file_order = [operator["working_set_bytes"] for operator in report["operators"]]
    optimal = report["optimal_working_set_bytes"]
    steps = range(1, len(file_order) + 1)

    figure, axes = plt.subplots(figsize=(max(6.0, 0.25 * len(file_order) + 3), 4))
    axes.step(steps, file_order, where="mid",
              label=f"file order (peak {report['peak_memory_bytes']} B)")
    axes.step(steps, optimal, where="mid", linestyle="--",
              label=f"optimal order (peak {report['optimal_peak_memory_bytes']} B)")
    axes.set_xlabel("step (position in the operator order)")
    axes.set_ylabel("working set (bytes)")
    axes.set_title(title)
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m resource_models.analyse",
        description="Report the peak memory usage (file order and optimal order), model "
                    "size and MACs of a .tflite model.")
    parser.add_argument("model", help="path of a .tflite file")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object instead of the text report")
    parser.add_argument("--plot", metavar="PNG",
                        help="write the working set over the schedule to this PNG file")
    parser.add_argument("--subgraph", type=int, default=0,
                        help="index of the subgraph to analyse (default 0)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")

    path = Path(args.model)
    try:
        tflite_bytes = path.read_bytes()
        tflite_graph = read_tflite(tflite_bytes, subgraph_index=args.subgraph, name=path.stem)
    except FileNotFoundError:
        print(f"error: TFLite file {str(path)!r} not found; pass the path of a .tflite file.",
              file=sys.stderr)
        return 2
    except (ValueError, IsADirectoryError) as error:
        print(f"error: cannot read {str(path)!r}: {error}", file=sys.stderr)
        return 2

    report = analyse(tflite_graph, tflite_bytes, args.subgraph)
    if args.plot:
        plot_working_sets(report, Path(args.plot), path.name)

    if args.json:
        print(json.dumps({"file": str(path), **report}))
    else:
        print(format_report(report, str(path)))
        if args.plot:
            print(f"Plot written to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
