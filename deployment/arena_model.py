"""Prediction of TFLite Micro's whole tensor arena from a resource graph, before conversion.

TFLM's arena has two parts (see `deployment.tflm.ArenaUsage`):

- the head, the planned activation buffers. It equals the graph's peak memory usage in the
  optimal order, up to 16-byte alignment, once the model is exported with
  `deployment.export` (operators reordered, offline memory plan where it helps);
- the tail, TFLM's bookkeeping: 24 bytes per tensor, 64 per operator, per-operator data
  and 8 bytes per output channel of each convolution and dense layer (per-channel
  multiplier and shift). `PERSISTENT_COEFFICIENTS` is a linear fit of it.

Below a few KB of activations the head is not the limit: kernels allocate temporary
buffers while they prepare, and the arena needs ``tail + max(head, temporary)`` bytes.
`TEMPORARY_BYTES_PER_UNIT` and `TEMPORARY_BASE_BYTES` estimate the temporary part from the
widest Dense layer.

NOTE: the coefficients were fitted by ``benchmarks/tflm_accuracy.py`` to 50 random CNN
architectures (28x28x1 input) with tflite-micro 0.dev20261023182759 on an x86-64 host.
Pointers and structs are smaller on 32-bit microcontrollers, so the tail there is smaller.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from resource_models import Graph

logger = logging.getLogger(__name__)

#: Op kinds whose counts are features of the tail formula.
COUNTED_KINDS = ("Conv2D", "DepthwiseConv2D", "Dense", "Pool2D", "GlobalPool2D", "Add", "Pad")

_WEIGHTED_KINDS = ("Conv2D", "DepthwiseConv2D", "Dense")

#: Bytes of the tail: the intercept, then one coefficient per feature of
#: `persistent_features` after the intercept.
PERSISTENT_COEFFICIENTS = {
    "intercept": 1096.5,
    "Conv2D": 254.7, "DepthwiseConv2D": 260.7, "Dense": 244.8, "Pool2D": 122.4,
    "GlobalPool2D": 57.8, "Add": 174.9, "Pad": 174.9,
    "output_channels": 8.1,
}

#: Temporary bytes per unit of the widest Dense layer, and the fixed part.
TEMPORARY_BYTES_PER_UNIT = 8
TEMPORARY_BASE_BYTES = 240


@dataclass(frozen=True)
class ArenaPrediction:
    """Predicted TFLM arena of a graph, in bytes.

    Attributes:
        activation_bytes: peak memory usage in the optimal order (the head).
        persistent_bytes: the tail formula's estimate.
        temporary_bytes: the estimate of kernels' temporary allocations while preparing.
        total_bytes: ``persistent_bytes + max(activation_bytes, temporary_bytes)``.
    """

    activation_bytes: int
    persistent_bytes: int
    temporary_bytes: int
    total_bytes: int


def binary_add_graph(graph: Graph) -> Graph:
    """Return a copy of ``graph`` in which every Add of k > 2 inputs is k - 1 binary Adds.

    TFLite's ADD takes two inputs, so the converter sums ``a + b + c`` as ``(a + b) + c``.
    The partial sum frees ``a`` and ``b`` before ``c`` is added, so the binary form needs
    less memory than one Add that keeps all inputs and its output live.
    """
    from resource_models import ops

    result = Graph(name=graph.name)
    tensors = {}
    for tensor in graph.inputs:
        tensors[tensor.name] = result.add_input(tensor.shape, name=tensor.name,
                                                element_bytes=tensor.element_bytes)
    for node in graph.ops:
        inputs = [tensors[tensor.name] for tensor in node.inputs]
        if node.op.type_name == "Add" and len(inputs) > 2:
            total = inputs[0]
            for position, addend in enumerate(inputs[1:-1], start=1):
                total = result.add(ops.Add(), total, addend,
                                   name=f"{node.name}_partial{position}")
            inputs = [total, inputs[-1]]
        tensors[node.output.name] = result.add(node.op, *inputs, name=node.name)
    result.mark_output(*(tensors[tensor.name] for tensor in graph.outputs))
    return result


def persistent_features(graph: Graph) -> dict[str, float]:
    """Return the features of the tail formula for a graph with binary Adds.

    They are the intercept, op counts per kind and the output channels of convolutions
    and dense layers.
    """
    features = {"intercept": 1.0}
    for kind in COUNTED_KINDS:
        features[kind] = float(sum(node.op.type_name == kind for node in graph.ops))
    features["output_channels"] = float(sum(node.output.shape[-1] for node in graph.ops
                                            if node.op.type_name in _WEIGHTED_KINDS))
    return features


def temporary_bytes(graph: Graph) -> int:
    """Estimate the temporary arena bytes that kernels allocate while preparing."""
    widest = max((node.output.shape[-1] for node in graph.ops if node.op.type_name == "Dense"),
                 default=0)
    return TEMPORARY_BYTES_PER_UNIT * widest + TEMPORARY_BASE_BYTES if widest else 0


def predict_tflm_arena(graph: Graph,
                       coefficients: dict[str, float] = PERSISTENT_COEFFICIENTS) -> ArenaPrediction:
    """Predict the smallest TFLM arena for the exported int8 model of ``graph``.

    The activation bytes are the peak memory usage of `binary_add_graph`, which can be
    lower than that of ``graph`` when it sums three or more tensors.
    """
    graph = binary_add_graph(graph)
    features = persistent_features(graph)
    persistent = int(round(sum(coefficients[name] * value for name, value in features.items())))
    activations = graph.peak_memory().peak_bytes
    temporary = temporary_bytes(graph)
    return ArenaPrediction(activations, persistent, temporary,
                           persistent + max(activations, temporary))


def fit_persistent_coefficients(graphs: list[Graph], tail_bytes: list[int]) -> dict[str, float]:
    """Fit `PERSISTENT_COEFFICIENTS` to measured tails by least squares."""
    names = list(PERSISTENT_COEFFICIENTS)
    design = np.array([[persistent_features(binary_add_graph(graph))[name] for name in names]
                       for graph in graphs])
    solution, *_ = np.linalg.lstsq(design, np.asarray(tail_bytes, dtype=float), rcond=None)
    return {name: float(value) for name, value in zip(names, solution)}
