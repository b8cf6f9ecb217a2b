"""Activation tensors of a resource graph."""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

#: Bytes per activation element in an int8-quantised TFLite model.
INT8_BYTES = 1


@dataclass(frozen=True)
class Tensor:
    """An activation tensor: the graph input or the output of one op.

    ``shape`` never includes the batch dimension. ``element_bytes`` is 1 for the int8
    activations that the search spaces produce. An importer of ``.tflite`` files may set it
    for other types, such as 4 for a float32 graph input.
    """

    name: str
    shape: tuple[int, ...]
    element_bytes: int = INT8_BYTES

    @property
    def num_elements(self) -> int:
        """Number of elements (1 for a scalar of shape ``()``)."""
        return math.prod(self.shape)

    @property
    def size_bytes(self) -> int:
        """Bytes that the tensor occupies in the arena."""
        return self.num_elements * self.element_bytes


def normalize_shape(shape, what: str) -> tuple[int, ...]:
    """Return ``shape`` as a tuple of positive ints, or raise ValueError naming ``what``."""
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(
            f"{what} must be a sequence of positive ints such as (28, 28, 1), got {shape!r}."
        ) from None

    for dim in dims:
        if not is_int(dim) or dim < 1:
            raise ValueError(
                f"{what} must contain only positive ints (no batch dimension and no None), "
                f"got {shape!r}."
            )
    return tuple(int(dim) for dim in dims)


def is_int(value) -> bool:
    """Return whether ``value`` is an integer (numpy integers included) and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
