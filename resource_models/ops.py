"""The ops that the search spaces build: convolutions, pooling, dense layers and glue ops.

Counting rules, as in an int8 TFLite model after conversion:

- Batch normalisation and ReLU are folded into the preceding convolution or dense layer, so a
  builder passes ``use_bias=True`` where the Keras layer was followed by batch normalisation.
- Weights: Conv2D ``kh*kw*cin*filters`` (+``filters`` biases); DepthwiseConv2D
  ``kh*kw*cin*mult`` (+``cin*mult`` biases); Dense ``in*units`` (+``units`` biases).
- MACs: Conv2D ``out_h*out_w*filters*kh*kw*cin``; DepthwiseConv2D
  ``out_h*out_w*cin*mult*kh*kw``; Dense ``in*units`` per input row. Pooling, Add, Pad,
  Reshape and Softmax count 0 MACs, because their cost is small next to the convolutions.
- Spatial sizes follow Keras and TFLite: "same" gives ``ceil(in/stride)`` and "valid"
  gives ``floor((in - k)/stride) + 1``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

from resource_models.op import (Op, Shape, check_activation, check_choice, check_pair,
                                check_positive_int, check_rank, spatial_output_size)
from resource_models.tensor import is_int

__all__ = ["Op", "Conv2D", "DepthwiseConv2D", "Pool2D", "GlobalPool2D", "Dense", "Add", "Pad",
           "Reshape", "Softmax"]

PADDINGS = ("same", "valid")
POOL_KINDS = ("max", "avg")
_IMAGE_LAYOUT = "(height, width, channels)"


def _set(op: Op, field: str, value) -> None:
    # Ops are frozen dataclasses; constructors normalise their fields once.
    object.__setattr__(op, field, value)


@dataclass(frozen=True)
class Conv2D(Op):
    """A 2-D convolution (TFLite CONV_2D) with an optional folded bias and activation."""

    filters: int
    kernel_size: tuple[int, int] = (3, 3)
    strides: tuple[int, int] = (1, 1)
    padding: str = "same"
    use_bias: bool = True
    activation: Optional[str] = None

    def __post_init__(self):
        _set(self, "filters", check_positive_int("Conv2D", "filters", self.filters))
        _set(self, "kernel_size", check_pair("Conv2D", "kernel_size", self.kernel_size))
        _set(self, "strides", check_pair("Conv2D", "strides", self.strides))
        check_choice("Conv2D", "padding", self.padding, PADDINGS)
        _set(self, "use_bias", bool(self.use_bias))
        _set(self, "activation", check_activation("Conv2D", self.activation))

    def output_shape(self, input_shapes: Sequence[Shape]) -> Shape:
        (shape,) = input_shapes
        check_rank("Conv2D", shape, 3, _IMAGE_LAYOUT)
        height = spatial_output_size("Conv2D", "height", shape[0], self.kernel_size[0],
                                     self.strides[0], self.padding)
        width = spatial_output_size("Conv2D", "width", shape[1], self.kernel_size[1],
                                    self.strides[1], self.padding)
        return height, width, self.filters

    def weight_count(self, input_shapes: Sequence[Shape]) -> int:
        channels = input_shapes[0][-1]
        return self.kernel_size[0] * self.kernel_size[1] * channels * self.filters

    def bias_count(self, input_shapes: Sequence[Shape]) -> int:
        return self.filters if self.use_bias else 0

    def macs(self, input_shapes: Sequence[Shape], output_shape: Shape) -> int:
        return math.prod(output_shape) * self.kernel_size[0] * self.kernel_size[1] \
            * input_shapes[0][-1]


@dataclass(frozen=True)
class DepthwiseConv2D(Op):
    """A depthwise 2-D convolution (TFLite DEPTHWISE_CONV_2D)."""

    kernel_size: tuple[int, int] = (3, 3)
    strides: tuple[int, int] = (1, 1)
    padding: str = "same"
    depth_multiplier: int = 1
    use_bias: bool = True
    activation: Optional[str] = None

    def __post_init__(self):
        _set(self, "kernel_size", check_pair("DepthwiseConv2D", "kernel_size", self.kernel_size))
        _set(self, "strides", check_pair("DepthwiseConv2D", "strides", self.strides))
        check_choice("DepthwiseConv2D", "padding", self.padding, PADDINGS)
        _set(self, "depth_multiplier",
             check_positive_int("DepthwiseConv2D", "depth_multiplier", self.depth_multiplier))
        _set(self, "use_bias", bool(self.use_bias))
        _set(self, "activation", check_activation("DepthwiseConv2D", self.activation))

    def output_shape(self, input_shapes: Sequence[Shape]) -> Shape:
        (shape,) = input_shapes
        check_rank("DepthwiseConv2D", shape, 3, _IMAGE_LAYOUT)
        height = spatial_output_size("DepthwiseConv2D", "height", shape[0],
                                     self.kernel_size[0], self.strides[0], self.padding)
        width = spatial_output_size("DepthwiseConv2D", "width", shape[1], self.kernel_size[1],
                                    self.strides[1], self.padding)
        return height, width, shape[2] * self.depth_multiplier

    def weight_count(self, input_shapes: Sequence[Shape]) -> int:
        channels = input_shapes[0][-1]
        return self.kernel_size[0] * self.kernel_size[1] * channels * self.depth_multiplier

    def bias_count(self, input_shapes: Sequence[Shape]) -> int:
        return input_shapes[0][-1] * self.depth_multiplier if self.use_bias else 0

    def macs(self, input_shapes: Sequence[Shape], output_shape: Shape) -> int:
        # Each output element reads one kernel window of a single input channel.
        return math.prod(output_shape) * self.kernel_size[0] * self.kernel_size[1]


@dataclass(frozen=True)
class Pool2D(Op):
    """Max or average pooling over windows (TFLite MAX_POOL_2D, AVERAGE_POOL_2D); 0 MACs.

    ``strides=None`` means the same as ``pool_size``, as in Keras.
    """

    kind: str = "max"
    pool_size: tuple[int, int] = (2, 2)
    strides: Optional[tuple[int, int]] = None
    padding: str = "valid"

    def __post_init__(self):
        check_choice("Pool2D", "kind", self.kind, POOL_KINDS)
        _set(self, "pool_size", check_pair("Pool2D", "pool_size", self.pool_size))
        if self.strides is not None:
            _set(self, "strides", check_pair("Pool2D", "strides", self.strides))
        check_choice("Pool2D", "padding", self.padding, PADDINGS)

    def output_shape(self, input_shapes: Sequence[Shape]) -> Shape:
        (shape,) = input_shapes
        check_rank("Pool2D", shape, 3, _IMAGE_LAYOUT)
        strides = self.strides if self.strides is not None else self.pool_size
        height = spatial_output_size("Pool2D", "height", shape[0], self.pool_size[0],
                                     strides[0], self.padding)
        width = spatial_output_size("Pool2D", "width", shape[1], self.pool_size[1],
                                    strides[1], self.padding)
        return height, width, shape[2]


@dataclass(frozen=True)
class GlobalPool2D(Op):
    """Max or average over height and width, ``(H, W, C) -> (C,)`` (TFLite MEAN or REDUCE_MAX).

    Counts 0 MACs.
    """

    kind: str = "avg"

    def __post_init__(self):
        check_choice("GlobalPool2D", "kind", self.kind, POOL_KINDS)

    def output_shape(self, input_shapes: Sequence[Shape]) -> Shape:
        (shape,) = input_shapes
        check_rank("GlobalPool2D", shape, 3, _IMAGE_LAYOUT)
        return (shape[2],)


@dataclass(frozen=True)
class Dense(Op):
    """A fully connected layer (TFLite FULLY_CONNECTED) applied to the last axis, as in Keras."""

    units: int
    use_bias: bool = True
    activation: Optional[str] = None

    def __post_init__(self):
        _set(self, "units", check_positive_int("Dense", "units", self.units))
        _set(self, "use_bias", bool(self.use_bias))
        _set(self, "activation", check_activation("Dense", self.activation))

    def output_shape(self, input_shapes: Sequence[Shape]) -> Shape:
        (shape,) = input_shapes
        if not shape:
            raise ValueError("Dense expects an input with at least one dimension, got ().")
        return shape[:-1] + (self.units,)

    def weight_count(self, input_shapes: Sequence[Shape]) -> int:
        return input_shapes[0][-1] * self.units

    def bias_count(self, input_shapes: Sequence[Shape]) -> int:
        return self.units if self.use_bias else 0

    def macs(self, input_shapes: Sequence[Shape], output_shape: Shape) -> int:
        return math.prod(input_shapes[0]) * self.units


@dataclass(frozen=True)
class Add(Op):
    """Element-wise sum of two or more inputs of equal shape (TFLite ADD); 0 MACs.

    Under ``add_reuses_input=True`` the output may take the buffer of an input that no
    other op still needs (see `resource_models.schedule`).
    """

    activation: Optional[str] = None

    min_inputs = 2
    max_inputs = None
    may_reuse_input_buffer = True

    def __post_init__(self):
        _set(self, "activation", check_activation("Add", self.activation))

    def output_shape(self, input_shapes: Sequence[Shape]) -> Shape:
        first = input_shapes[0]
        for shape in input_shapes[1:]:
            if shape != first:
                raise ValueError(
                    f"Add needs inputs of equal shape, got {list(input_shapes)}; make the "
                    "branches end in the same shape (for example with a 1x1 Conv2D or Pad)."
                )
        return first


@dataclass(frozen=True)
class Pad(Op):
    """Zero padding (TFLite PAD); ``paddings`` has one (before, after) pair per dimension."""

    paddings: tuple[tuple[int, int], ...] = ()

    def __post_init__(self):
        pairs = []
        for pair in self.paddings:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2 \
                    or not all(is_int(item) and item >= 0 for item in pair):
                raise ValueError(
                    "Pad: paddings must contain one (before, after) pair of non-negative ints "
                    f"per dimension, such as ((0, 0), (0, 0), (0, 4)), got {self.paddings!r}."
                )
            pairs.append((int(pair[0]), int(pair[1])))
        _set(self, "paddings", tuple(pairs))

    def output_shape(self, input_shapes: Sequence[Shape]) -> Shape:
        (shape,) = input_shapes
        if len(self.paddings) != len(shape):
            raise ValueError(
                f"Pad: paddings {self.paddings} have {len(self.paddings)} pair(s) but the input "
                f"shape {shape} has {len(shape)} dimension(s); give one pair per dimension."
            )
        return tuple(size + before + after
                     for size, (before, after) in zip(shape, self.paddings))


@dataclass(frozen=True)
class Reshape(Op):
    """A change of shape that keeps the elements (TFLite RESHAPE); ``(-1,)`` flattens.

    At most one entry of ``target_shape`` may be -1; it is inferred from the input size.
    """

    target_shape: tuple[int, ...] = (-1,)

    def __post_init__(self):
        dims = tuple(self.target_shape)
        if not all(is_int(dim) and (dim >= 1 or dim == -1) for dim in dims) \
                or dims.count(-1) > 1:
            raise ValueError(
                "Reshape: target_shape must contain positive ints and at most one -1, got "
                f"{self.target_shape!r}."
            )
        _set(self, "target_shape", tuple(int(dim) for dim in dims))

    def output_shape(self, input_shapes: Sequence[Shape]) -> Shape:
        (shape,) = input_shapes
        size = math.prod(shape)
        known = math.prod(dim for dim in self.target_shape if dim != -1)
        if -1 in self.target_shape:
            if size % known:
                raise ValueError(
                    f"Reshape: cannot infer -1 in {self.target_shape} for an input of shape "
                    f"{shape} ({size} elements is not a multiple of {known})."
                )
            return tuple(size // known if dim == -1 else dim for dim in self.target_shape)
        if known != size:
            raise ValueError(
                f"Reshape: target_shape {self.target_shape} has {known} elements but the input "
                f"shape {shape} has {size}; the counts must be equal."
            )
        return self.target_shape


@dataclass(frozen=True)
class Softmax(Op):
    """Softmax over the last axis (TFLite SOFTMAX); 0 MACs."""

    def output_shape(self, input_shapes: Sequence[Shape]) -> Shape:
        (shape,) = input_shapes
        if not shape:
            raise ValueError("Softmax expects an input with at least one dimension, got ().")
        return shape
