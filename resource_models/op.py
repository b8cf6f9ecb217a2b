"""Base class of the ops in a resource graph, with the registry that `Graph.from_dict` uses."""
from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import ClassVar, Optional, Sequence

from resource_models.tensor import INT8_BYTES, is_int

Shape = tuple[int, ...]

#: Activations that may be folded into an op. The TFLite converter fuses ReLU and ReLU6
#: into the preceding op. NOTE: TFLite runs tanh and sigmoid as separate ops. The model
#: treats them as fused like ReLU, so their output buffers are not counted.
ACTIVATIONS = (None, "relu", "relu6", "tanh", "sigmoid")

_REGISTRY: dict[str, type["Op"]] = {}


class Op(ABC):
    """One operation of an int8 TFLite model: its output shape, weights and MACs.

    Subclasses are frozen dataclasses whose fields are their whole configuration, so that
    `get_config` and `from_config` round-trip through JSON. Each subclass is registered
    under ``type_name`` (its class name unless it sets one) when the class is created, so
    `Graph.from_dict` can rebuild only ops whose module has been imported.

    A subclass implements `output_shape` and overrides `weight_count`, `bias_count` and
    `macs` where they are not 0. All methods take the shapes of the op's inputs, in order
    and without the batch dimension.
    """

    #: Key that `to_dict` stores for this op type.
    type_name: ClassVar[str] = ""
    #: Minimum number of inputs.
    min_inputs: ClassVar[int] = 1
    #: Maximum number of inputs, or None for any number.
    max_inputs: ClassVar[Optional[int]] = 1
    #: Whether the output may be written into the buffer of one of its inputs when the peak
    #: memory usage is computed with ``add_reuses_input=True``.
    may_reuse_input_buffer: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "type_name" not in cls.__dict__:
            cls.type_name = cls.__name__

        registered = _REGISTRY.get(cls.type_name)
        if registered is not None and (registered.__module__, registered.__qualname__) != \
                (cls.__module__, cls.__qualname__):
            raise TypeError(
                f"Op type name {cls.type_name!r} of {cls.__module__}.{cls.__qualname__} is "
                f"already used by {registered.__module__}.{registered.__qualname__}; set a "
                "different `type_name` on the new class."
            )
        _REGISTRY[cls.type_name] = cls

    # --- what subclasses provide ---------------------------------------------------------

    @abstractmethod
    def output_shape(self, input_shapes: Sequence[Shape]) -> Shape:
        """Return the output shape, or raise ValueError if the input shapes do not fit."""

    def weight_count(self, input_shapes: Sequence[Shape]) -> int:
        """Return the number of weight elements, biases excluded (stored as int8)."""
        return 0

    def bias_count(self, input_shapes: Sequence[Shape]) -> int:
        """Return the number of bias elements (stored as int32)."""
        return 0

    def macs(self, input_shapes: Sequence[Shape], output_shape: Shape) -> int:
        """Return the multiply-accumulate operations of one inference."""
        return 0

    def output_element_bytes(self, input_element_bytes: Sequence[int]) -> int:
        """Return the bytes per element of the output tensor (1 for int8)."""
        return INT8_BYTES

    # --- shared behaviour ----------------------------------------------------------------

    def check_input_count(self, count: int) -> None:
        """Raise ValueError unless the op accepts ``count`` inputs."""
        if count < self.min_inputs or (self.max_inputs is not None and count > self.max_inputs):
            if self.max_inputs is None:
                expected = f"at least {self.min_inputs}"
            elif self.max_inputs == self.min_inputs:
                expected = f"exactly {self.min_inputs}"
            else:
                expected = f"{self.min_inputs} to {self.max_inputs}"
            raise ValueError(f"{self.type_name} takes {expected} input(s), got {count}.")

    def get_config(self) -> dict:
        """Return the op's fields as JSON-compatible data (tuples become lists)."""
        return {field.name: _to_json(getattr(self, field.name))
                for field in dataclasses.fields(self)}

    @classmethod
    def from_config(cls, config: dict) -> "Op":
        """Build the op from the output of `get_config`."""
        return cls(**config)


def op_class(type_name: str) -> type[Op]:
    """Return the registered op class called ``type_name``, or raise ValueError."""
    try:
        return _REGISTRY[type_name]
    except KeyError:
        raise ValueError(
            f"Unknown op type {type_name!r}; known types are {sorted(_REGISTRY)}. Import the "
            "module that defines it before calling Graph.from_dict."
        ) from None


def _to_json(value):
    if isinstance(value, (tuple, list)):
        return [_to_json(item) for item in value]
    return value


# --- validation helpers for op constructors ------------------------------------------------


def check_positive_int(op_name: str, field: str, value) -> int:
    """Return ``value`` as an int, or raise ValueError unless it is a positive integer."""
    if not is_int(value) or value < 1:
        raise ValueError(f"{op_name}: {field} must be a positive int, got {value!r}.")
    return int(value)


def check_pair(op_name: str, field: str, value) -> tuple[int, int]:
    """Return ``value`` (an int or a pair of ints) as a pair of positive ints."""
    if is_int(value):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(
            f"{op_name}: {field} must be a positive int or a pair (height, width) of positive "
            f"ints, got {value!r}."
        )
    return check_positive_int(op_name, field, value[0]), check_positive_int(op_name, field, value[1])


def check_choice(op_name: str, field: str, value, options: Sequence):
    """Return ``value`` unchanged, or raise ValueError unless it is one of ``options``."""
    if value not in options:
        raise ValueError(f"{op_name}: {field} must be one of {list(options)}, got {value!r}.")
    return value


def check_activation(op_name: str, value) -> Optional[str]:
    """Return the activation with Keras's ``"linear"`` mapped to None."""
    if value == "linear":
        return None
    return check_choice(op_name, "activation", value, ACTIVATIONS)


def check_rank(op_name: str, shape: Shape, rank: int, layout: str) -> None:
    """Raise ValueError unless ``shape`` has ``rank`` dimensions laid out as ``layout``."""
    if len(shape) != rank:
        raise ValueError(
            f"{op_name} expects an input of shape {layout} (no batch dimension), got {shape}."
        )


def spatial_output_size(op_name: str, axis: str, size: int, kernel: int, stride: int,
                        padding: str) -> int:
    """Return one spatial output dimension under the Keras/TFLite padding rules.

    "same" gives ``ceil(size / stride)``; "valid" gives ``floor((size - kernel) / stride) + 1``
    and needs ``kernel <= size``.
    """
    if padding == "same":
        return -(-size // stride)
    if kernel > size:
        raise ValueError(
            f"{op_name}: kernel {axis} {kernel} is larger than the input {axis} {size} with "
            "padding='valid'; use a smaller kernel or padding='same'."
        )
    return (size - kernel) // stride + 1
