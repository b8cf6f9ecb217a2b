"""Validity rules of the CNN search space.

`check_values` needs no input shape: each value in its domain, block 0 not a branch, and the
canonical form of each layer type. `check_shapes` walks the network with the same
`cnn.assembly.assemble` as the Keras and resource graph builders, so every shape rule that
would stop a build is checked on shapes alone.
"""
from __future__ import annotations

import logging
from typing import Any

from cnn import domains
from cnn.architecture import CnnArchitecture, ConvLayer
from cnn.assembly import ShapeOnlyBackend, ShapeTrace, assemble
from cnn.shapes import check_input_shape
from errors import InvalidArchitectureError
from schema_types import ValueType

logger = logging.getLogger(__name__)


def check_values(architecture: CnnArchitecture) -> None:
    """Raise `InvalidArchitectureError` if a value is outside its domain."""
    if not isinstance(architecture, CnnArchitecture):
        raise InvalidArchitectureError(
            f"Expected a CnnArchitecture, got {type(architecture).__name__}. Rebuild it with "
            "CnnSearchSpace.architecture_from_dict.")

    _check_count(len(architecture.conv_blocks), domains.CONV_BLOCK_COUNT, "conv_blocks")
    for block_index, block in enumerate(architecture.conv_blocks):
        where = f"conv_blocks[{block_index}]"
        _check_value(block.is_branch, domains.IS_BRANCH, f"{where}.is_branch")
        if block_index == 0 and block.is_branch:
            raise InvalidArchitectureError(
                "conv_blocks[0].is_branch is true, but the first block has no earlier block "
                "to run in parallel with. Set it to false.")
        _check_count(len(block.layers), domains.LAYER_COUNT, f"{where}.layers")
        for layer_index, layer in enumerate(block.layers):
            _check_layer(layer, f"{where}.layers[{layer_index}]")

    pooling = architecture.pooling
    if pooling is not None:
        _check_value(pooling.kind, domains.POOLING_KIND, "pooling.kind")
        # Categorical membership uses ==, so 2.0 or True would pass it.
        if not (pooling.size == "global" or _is_int(pooling.size)) \
                or not domains.POOLING_SIZE.contains(pooling.size):
            _raise_domain(pooling.size, domains.POOLING_SIZE, "pooling.size")

    _check_count(len(architecture.dense_layers), domains.DENSE_LAYER_COUNT, "dense_layers")
    for index, dense in enumerate(architecture.dense_layers):
        _check_value(dense.units, domains.UNITS, f"dense_layers[{index}].units")


def check_shapes(architecture: CnnArchitecture, input_shape: tuple[int, ...]) -> ShapeTrace:
    """Raise `InvalidArchitectureError` if a shape rule breaks; return the shapes otherwise.

    Raises ValueError if ``input_shape`` is not ``(height, width, channels)``.
    """
    shape = check_input_shape(input_shape)
    # The classifier's width does not change any shape rule.
    _, trace = assemble(architecture, ShapeOnlyBackend(), None, shape, num_classes=1)
    return trace


def _check_layer(layer: ConvLayer, where: str) -> None:
    _check_value(layer.type, domains.LAYER_TYPE, f"{where}.type")
    for name, value_type in (("stride2", domains.STRIDE2), ("pre_pool", domains.PRE_POOL),
                             ("batch_norm", domains.BATCH_NORM), ("relu", domains.RELU)):
        _check_value(getattr(layer, name), value_type, f"{where}.{name}")

    if layer.type == "1x1Conv2D":
        if layer.kernel_size != 1 or not _is_int(layer.kernel_size):
            raise InvalidArchitectureError(
                f"{where}.kernel_size is {layer.kernel_size!r}, but a 1x1Conv2D layer has "
                "kernel_size 1. Set it to 1 or change the layer type.")
    else:
        _check_value(layer.kernel_size, domains.KERNEL_SIZE, f"{where}.kernel_size")

    if layer.type == "DWConv2D":
        if layer.filters is not None:
            raise InvalidArchitectureError(
                f"{where}.filters is {layer.filters!r}, but a DWConv2D layer keeps its input's "
                "channel count. Set filters to null (None).")
    else:
        _check_value(layer.filters, domains.FILTERS, f"{where}.filters")


def _check_value(value: Any, value_type: ValueType, where: str) -> None:
    if not value_type.contains(value):
        _raise_domain(value, value_type, where)


def _check_count(count: int, value_type: ValueType, where: str) -> None:
    if not value_type.contains(count):
        low, high = value_type.bounds
        raise InvalidArchitectureError(
            f"{where} has {count} entries, expected {low} to {high}.")


def _raise_domain(value: Any, value_type: ValueType, where: str) -> None:
    if hasattr(value_type, "bounds"):
        low, high = value_type.bounds
        step = getattr(value_type, "increment", 1)
        expected = f"an int from {low} to {high}" + (f" in steps of {step}" if step > 1 else "")
    elif hasattr(value_type, "values"):
        expected = f"one of {list(value_type.values)}"
    else:
        expected = "true or false"
    raise InvalidArchitectureError(f"{where} is {value!r}, expected {expected}.")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
