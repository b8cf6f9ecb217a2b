"""One walk over a CNN architecture that every representation of it shares.

The Keras model, the resource graph and validation differ only in what they build per
layer, so each one is a `Backend`. `assemble` decides the structure: which tensor feeds
which block, how parallel outputs are merged (see `cnn.shapes`) and which shapes result.
The walk computes every shape with the rules of `cnn.shapes`, so a backend never reports
shapes, and an architecture that breaks a rule raises `InvalidArchitectureError` in all
three representations alike.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

from cnn.architecture import CnnArchitecture, ConvBlock, ConvLayer, Pooling
from cnn.domains import PRE_POOL_SIZE
from cnn.shapes import (Shape, convolution_shape, plan_merge, pooling_shape,
                        pre_pool_shape)

logger = logging.getLogger(__name__)


class Backend(Protocol):
    """Builder of one representation's operations. `assemble` passes its tensors on unread."""

    def max_pool(self, x: Any, pool_size: tuple[int, int], strides: tuple[int, int],
                 name: str) -> Any: ...

    def convolution(self, x: Any, layer: ConvLayer, output_channels: int, name: str) -> Any:
        """Build the convolution of ``layer`` with its batch norm and ReLU (not its pre-pool)."""

    def pad_channels(self, x: Any, padding: int, name: str) -> Any: ...

    def add(self, xs: Sequence[Any], name: str) -> Any: ...

    def pooling(self, x: Any, pooling: Pooling, name: str) -> Any: ...

    def flatten(self, x: Any, name: str) -> Any: ...

    def dense(self, x: Any, units: int, name: str) -> Any:
        """Build a hidden dense layer with ReLU."""

    def classifier(self, x: Any, num_classes: int, name: str) -> Any:
        """Build the final dense layer with softmax."""


class ShapeOnlyBackend:
    """A backend that builds nothing, for walks that only need shapes and rule checks."""

    def max_pool(self, x, pool_size, strides, name):
        return None

    def convolution(self, x, layer, output_channels, name):
        return None

    def pad_channels(self, x, padding, name):
        return None

    def add(self, xs, name):
        return None

    def pooling(self, x, pooling, name):
        return None

    def flatten(self, x, name):
        return None

    def dense(self, x, units, name):
        return None

    def classifier(self, x, num_classes, name):
        return None


@dataclass
class ShapeTrace:
    """Shapes that a walk reached."""

    #: Input shape of each convolution block.
    block_inputs: list[Shape] = field(default_factory=list)
    #: Shape after the last block and its branch merge, before pooling.
    features: Shape = (0, 0, 0)
    #: Length of the flattened vector that feeds the first dense layer.
    flattened: int = 0


def assemble_conv_blocks(blocks: Sequence[ConvBlock], backend: Backend, x: Any,
                         input_shape: Shape) -> tuple[Any, ShapeTrace]:
    """Build the convolution blocks from ``x`` and return the merged output and the shapes.

    A non-branch block starts a group and takes the previous group's merged output. Branch
    blocks join the current group and take the group's input. A group of more than one
    block ends with `merge`.
    """
    trace = ShapeTrace()
    group_input, group_input_shape = x, input_shape
    group_start = 0
    outputs: list[tuple[Any, Shape]] = []

    for block_index, block in enumerate(blocks):
        if not block.is_branch and outputs:
            group_input, group_input_shape = merge(outputs, backend, f"group{group_start}")
            group_start = block_index
            outputs = []

        trace.block_inputs.append(group_input_shape)
        y, shape = group_input, group_input_shape
        for layer_index, layer in enumerate(block.layers):
            y, shape = _convolution_layer(y, shape, layer, backend,
                                          f"block{block_index}_layer{layer_index}",
                                          f"conv_blocks[{block_index}].layers[{layer_index}]")
        outputs.append((y, shape))

    if outputs:
        group_input, group_input_shape = merge(outputs, backend, f"group{group_start}")
    trace.features = group_input_shape
    return group_input, trace


def assemble(architecture: CnnArchitecture, backend: Backend, x: Any, input_shape: Shape,
             num_classes: int) -> tuple[Any, ShapeTrace]:
    """Build the whole network from the input ``x`` and return its output and the shapes."""
    x, trace = assemble_conv_blocks(architecture.conv_blocks, backend, x, input_shape)

    shape = trace.features
    if architecture.pooling is not None:
        shape = pooling_shape(shape, architecture.pooling)
        x = backend.pooling(x, architecture.pooling, "pooling")
    x = backend.flatten(x, "flatten")
    trace.flattened = shape[0] * shape[1] * shape[2]

    for index, dense in enumerate(architecture.dense_layers):
        x = backend.dense(x, dense.units, f"dense{index}")
    x = backend.classifier(x, num_classes, "classifier")
    return x, trace


def merge(outputs: Sequence[tuple[Any, Shape]], backend: Backend,
          name: str) -> tuple[Any, Shape]:
    """Sum parallel outputs after matching their shapes; a single output passes through.

    Operation names start with ``name``, such as ``group2_input1_pool`` and ``group2_add``.
    """
    if len(outputs) == 1:
        return outputs[0]

    merged_shape, steps = plan_merge([shape for _, shape in outputs])
    tensors = []
    for index, ((y, _), step) in enumerate(zip(outputs, steps)):
        if step.pool_size is not None:
            y = backend.max_pool(y, step.pool_size, step.pool_strides,
                                 f"{name}_input{index}_pool")
        if step.channel_padding:
            y = backend.pad_channels(y, step.channel_padding, f"{name}_input{index}_pad")
        tensors.append(y)
    return backend.add(tensors, f"{name}_add"), merged_shape


def _convolution_layer(x: Any, shape: Shape, layer: ConvLayer, backend: Backend, name: str,
                       where: str) -> tuple[Any, Shape]:
    if layer.pre_pool:
        shape = pre_pool_shape(shape, where)
        x = backend.max_pool(x, (PRE_POOL_SIZE, PRE_POOL_SIZE), (PRE_POOL_SIZE, PRE_POOL_SIZE),
                             f"{name}_prepool")
    shape = convolution_shape(shape, layer, where)
    return backend.convolution(x, layer, shape[2], f"{name}_conv"), shape
