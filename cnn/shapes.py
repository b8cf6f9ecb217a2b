"""Shape rules of the CNN layers, which raise `InvalidArchitectureError` on a broken rule.

Shapes are ``(height, width, channels)`` without the batch dimension. Convolutions use
padding "same", so a stride 2 gives ``ceil(size / 2)``; pooling uses padding "valid", so a
window ``p`` with stride ``s`` gives ``floor((size - p) / s) + 1``.

Branch merge rule: when blocks run in parallel, their outputs are made equal before the Add.
The target is the smallest height, the smallest width and the largest channel count among
the outputs. An output that is taller or wider than the target is max pooled with, per
spatial dimension, stride ``s = size // target`` and window ``size - s * (target - 1)``,
which gives exactly ``target`` rows or columns and covers every input row or column. An
output with fewer channels is then zero padded at the end of the channel dimension. The
Keras model and the resource graph both take their merge steps from `plan_merge`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional, Sequence

from cnn.architecture import ConvLayer, Pooling
from cnn.domains import PRE_POOL_SIZE
from errors import InvalidArchitectureError

logger = logging.getLogger(__name__)

Shape = tuple[int, int, int]


@dataclass(frozen=True)
class MergeStep:
    """Pooling and channel padding that make one output of a parallel group fit the Add."""

    #: Max pooling window ``(height, width)``, or None when the output is already small enough.
    pool_size: Optional[tuple[int, int]]
    pool_strides: Optional[tuple[int, int]]
    #: Zero channels appended at the end of the channel dimension.
    channel_padding: int


def check_input_shape(input_shape) -> Shape:
    """Return ``input_shape`` as a tuple of three positive ints, or raise ValueError."""
    values = tuple(input_shape) if isinstance(input_shape, (list, tuple)) else None
    if values is None or len(values) != 3 or not all(
            isinstance(value, int) and not isinstance(value, bool) and value > 0
            for value in values):
        raise ValueError(f"Invalid input_shape {input_shape!r}: the CNN search space expects "
                         "(height, width, channels) of positive ints, without the batch "
                         "dimension, such as (28, 28, 1).")
    return values


def check_num_classes(num_classes) -> int:
    """Return ``num_classes`` if it is a positive int, or raise ValueError."""
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"Invalid num_classes {num_classes!r}: expected a positive int, "
                         "the number of classes of the dataset.")
    return num_classes


def pre_pool_shape(shape: Shape, where: str) -> Shape:
    """Return the shape after a 2x2 max pre-pool."""
    height, width, channels = shape
    if min(height, width) < PRE_POOL_SIZE:
        raise InvalidArchitectureError(
            f"{where}: pre_pool needs an input of at least 2x2, but the input is "
            f"{height}x{width}. Remove the pre-pool or an earlier downsampling step.")
    return height // PRE_POOL_SIZE, width // PRE_POOL_SIZE, channels


def convolution_shape(shape: Shape, layer: ConvLayer, where: str) -> Shape:
    """Return the shape after the convolution of ``layer`` (its pre-pool already applied)."""
    height, width, channels = shape
    if layer.kernel_size > min(height, width):
        raise InvalidArchitectureError(
            f"{where}: kernel_size {layer.kernel_size} exceeds the {height}x{width} input. "
            "Use a smaller kernel or less downsampling before this layer.")
    if layer.stride2 and min(height, width) < 2:
        raise InvalidArchitectureError(
            f"{where}: stride2 needs an input of at least 2x2, but the input is "
            f"{height}x{width}. Remove the stride or an earlier downsampling step.")
    strides = layer.strides
    return (-(-height // strides), -(-width // strides), layer.output_channels(channels))


def pooling_shape(shape: Shape, pooling: Pooling) -> Shape:
    """Return the shape after the final pooling, ``(1, 1, channels)`` for "global"."""
    height, width, channels = shape
    if pooling.size == "global":
        return 1, 1, channels
    if pooling.size > min(height, width):
        raise InvalidArchitectureError(
            f"pooling: size {pooling.size} exceeds the {height}x{width} feature map. "
            "Use a smaller or global pooling, or less downsampling in the convolution blocks.")
    return height // pooling.size, width // pooling.size, channels


def plan_merge(shapes: Sequence[Shape]) -> tuple[Shape, list[MergeStep]]:
    """Return the merged shape and one `MergeStep` per input, by the rule in the module doc."""
    target_height = min(shape[0] for shape in shapes)
    target_width = min(shape[1] for shape in shapes)
    target_channels = max(shape[2] for shape in shapes)

    steps = []
    for height, width, channels in shapes:
        pool_size = pool_strides = None
        if height > target_height or width > target_width:
            stride_height = height // target_height
            stride_width = width // target_width
            pool_size = (height - stride_height * (target_height - 1),
                         width - stride_width * (target_width - 1))
            pool_strides = (stride_height, stride_width)
        steps.append(MergeStep(pool_size, pool_strides, target_channels - channels))
    return (target_height, target_width, target_channels), steps
