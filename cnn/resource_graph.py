"""Resource graphs of CNN architectures, as TFLite runs the int8 model.

The converter folds batch norm into the convolution's bias and fuses ReLU into it, so each
convolution layer becomes one op with ``use_bias=True``. Dropout runs only in training and
adds nothing. Op names follow `cnn.assembly`, such as ``block0_layer1_conv``.
"""
from __future__ import annotations

import logging
from typing import Sequence

from resource_models import Graph, ops

from cnn.architecture import CnnArchitecture, ConvLayer, Pooling
from cnn.assembly import assemble
from cnn.shapes import check_input_shape, check_num_classes

logger = logging.getLogger(__name__)


class GraphBackend:
    """Adds `resource_models` ops to a graph for `cnn.assembly.assemble`."""

    def __init__(self, graph: Graph):
        self.graph = graph

    def max_pool(self, x, pool_size, strides, name):
        return self.graph.add(ops.Pool2D(kind="max", pool_size=pool_size, strides=strides,
                                         padding="valid"), x, name=name)

    def convolution(self, x, layer: ConvLayer, output_channels: int, name: str):
        activation = "relu" if layer.relu else None
        if layer.type == "DWConv2D":
            op = ops.DepthwiseConv2D(kernel_size=layer.kernel_size, strides=layer.strides,
                                     padding="same", depth_multiplier=1, use_bias=True,
                                     activation=activation)
        else:
            op = ops.Conv2D(filters=output_channels, kernel_size=layer.kernel_size,
                            strides=layer.strides, padding="same", use_bias=True,
                            activation=activation)
        return self.graph.add(op, x, name=name)

    def pad_channels(self, x, padding, name):
        return self.graph.add(ops.Pad(paddings=((0, 0), (0, 0), (0, padding))), x, name=name)

    def add(self, xs: Sequence, name: str):
        # TFLite's ADD takes two inputs, so the converter sums a + b + c as (a + b) + c. The
        # partial sum frees a and b before c is added, which lowers the peak memory usage.
        total = xs[0]
        for position, addend in enumerate(xs[1:-1], start=1):
            total = self.graph.add(ops.Add(), total, addend, name=f"{name}_partial{position}")
        return self.graph.add(ops.Add(), total, xs[-1], name=name)

    def pooling(self, x, pooling: Pooling, name: str):
        if pooling.size == "global":
            return self.graph.add(ops.GlobalPool2D(kind=pooling.kind), x, name=name)
        return self.graph.add(ops.Pool2D(kind=pooling.kind, pool_size=pooling.size,
                                         padding="valid"), x, name=name)

    def flatten(self, x, name):
        return self.graph.add(ops.Reshape(target_shape=(-1,)), x, name=name)

    def dense(self, x, units, name):
        return self.graph.add(ops.Dense(units, use_bias=True, activation="relu"), x, name=name)

    def classifier(self, x, num_classes, name):
        x = self.graph.add(ops.Dense(num_classes, use_bias=True), x, name=name)
        return self.graph.add(ops.Softmax(), x, name=f"{name}_softmax")


def build_resource_graph(architecture: CnnArchitecture, input_shape: tuple[int, ...],
                         num_classes: int) -> Graph:
    """Build the resource graph of ``architecture``, with one output: the class scores.

    Raises `InvalidArchitectureError` if a shape rule breaks, and ValueError if
    ``input_shape`` is not ``(height, width, channels)`` or ``num_classes`` is below 1.
    """
    shape = check_input_shape(input_shape)
    check_num_classes(num_classes)

    graph = Graph(name=f"cnn_{architecture.fingerprint()}")
    inputs = graph.add_input(shape, name="input")
    outputs, _ = assemble(architecture, GraphBackend(graph), inputs, shape, num_classes)
    graph.mark_output(outputs)
    return graph
