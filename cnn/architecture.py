"""Architectures of the CNN search space as immutable dataclasses.

An architecture is a chain of convolution blocks, optional pooling, a flatten, hidden dense
layers and a softmax classifier. The dataclasses are frozen and hold tuples, so morphisms
build new architectures with `dataclasses.replace` and can never modify their input.

`CnnArchitecture.to_dict` is the journal format, for example::

    {"conv_blocks": [{"is_branch": false, "layers": [
        {"type": "Conv2D", "kernel_size": 3, "filters": 8, "stride2": false,
         "pre_pool": false, "batch_norm": true, "relu": true}]}],
     "pooling": {"kind": "avg", "size": "global"},
     "dense_layers": [{"units": 32}]}

``pooling`` is null when the network has no pooling. A ``DWConv2D`` layer has
``"filters": null`` because it keeps its input's channels, and a ``1x1Conv2D`` layer has
``"kernel_size": 1``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional, Union

from architecture import Architecture

if TYPE_CHECKING:
    import keras

    from resource_models import Graph

logger = logging.getLogger(__name__)

LAYER_KEYS = ("type", "kernel_size", "filters", "stride2", "pre_pool", "batch_norm", "relu")
BLOCK_KEYS = ("is_branch", "layers")
POOLING_KEYS = ("kind", "size")
DENSE_KEYS = ("units",)
ARCHITECTURE_KEYS = ("conv_blocks", "pooling", "dense_layers")


@dataclass(frozen=True)
class ConvLayer:
    """One convolution: [max pre-pool] → conv (stride 1 or 2) → [batch norm] → [ReLU]."""

    type: str
    kernel_size: int
    #: Output channels; None for ``DWConv2D``, which keeps its input's channels.
    filters: Optional[int]
    stride2: bool = False
    pre_pool: bool = False
    batch_norm: bool = False
    relu: bool = True

    @property
    def strides(self) -> int:
        return 2 if self.stride2 else 1

    def output_channels(self, input_channels: int) -> int:
        """Return the channel count of this layer's output for ``input_channels`` inputs."""
        if self.type == "DWConv2D":
            return input_channels
        return self.filters

    def to_dict(self) -> dict:
        return {"type": self.type, "kernel_size": self.kernel_size, "filters": self.filters,
                "stride2": self.stride2, "pre_pool": self.pre_pool,
                "batch_norm": self.batch_norm, "relu": self.relu}


@dataclass(frozen=True)
class ConvBlock:
    """1–3 convolution layers in sequence.

    A branch block takes the same input as the block before it and runs in parallel with
    it. The outputs of a block and of the branch blocks directly after it are summed.
    """

    is_branch: bool
    layers: tuple[ConvLayer, ...]

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))

    def to_dict(self) -> dict:
        return {"is_branch": self.is_branch, "layers": [layer.to_dict() for layer in self.layers]}


@dataclass(frozen=True)
class Pooling:
    """Pooling between the convolution blocks and the flatten."""

    #: "avg" or "max".
    kind: str
    #: Window and stride (2, 4 or 6), or "global" for one value per channel.
    size: Union[int, str]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "size": self.size}


@dataclass(frozen=True)
class DenseLayer:
    """A hidden fully connected layer with ReLU."""

    units: int

    def to_dict(self) -> dict:
        return {"units": self.units}


@dataclass(frozen=True, eq=False)
class CnnArchitecture(Architecture):
    """A candidate of the CNN search space.

    Equality and hashing come from `Architecture` and compare `to_dict` output, so
    ``dropout`` takes no part in them.
    """

    conv_blocks: tuple[ConvBlock, ...]
    pooling: Optional[Pooling]
    dense_layers: tuple[DenseLayer, ...]
    #: Dropout rate before each dense layer, training only. It belongs to the search space
    #: (`CnnSearchSpace` sets it on every architecture it returns) and is not part of
    #: `to_dict`.
    dropout: float = field(default=0.0, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "conv_blocks", tuple(self.conv_blocks))
        object.__setattr__(self, "dense_layers", tuple(self.dense_layers))

    def layers(self):
        """Yield ``(block_index, layer_index, layer)`` for every convolution layer."""
        for block_index, block in enumerate(self.conv_blocks):
            for layer_index, layer in enumerate(block.layers):
                yield block_index, layer_index, layer

    def to_dict(self) -> dict:
        return {
            "conv_blocks": [block.to_dict() for block in self.conv_blocks],
            "pooling": None if self.pooling is None else self.pooling.to_dict(),
            "dense_layers": [dense.to_dict() for dense in self.dense_layers],
        }

    @classmethod
    def from_dict(cls, data: dict, dropout: float = 0.0) -> "CnnArchitecture":
        """Rebuild an architecture from `to_dict` output.

        Checks the structure: every dict has exactly the expected keys, and lists are lists.
        Value domains and shapes are checked by `CnnSearchSpace.validate`. Raises ValueError
        naming the path of the first wrong entry, such as ``conv_blocks[1].layers[0]``.
        """
        _check_keys(data, ARCHITECTURE_KEYS, "architecture")
        blocks = [_block_from_dict(block, f"conv_blocks[{index}]")
                  for index, block in enumerate(_check_list(data["conv_blocks"], "conv_blocks"))]

        pooling = data["pooling"]
        if pooling is not None:
            _check_keys(pooling, POOLING_KEYS, "pooling")
            pooling = Pooling(kind=pooling["kind"], size=pooling["size"])

        dense_layers = []
        for index, dense in enumerate(_check_list(data["dense_layers"], "dense_layers")):
            _check_keys(dense, DENSE_KEYS, f"dense_layers[{index}]")
            dense_layers.append(DenseLayer(units=dense["units"]))

        return cls(conv_blocks=tuple(blocks), pooling=pooling,
                   dense_layers=tuple(dense_layers), dropout=dropout)

    def build_model(self, input_shape: tuple[int, ...], num_classes: int) -> "keras.Model":
        from cnn.keras_builder import build_keras_model
        return build_keras_model(self, input_shape, num_classes)

    def build_resource_graph(self, input_shape: tuple[int, ...],
                             num_classes: int) -> "Graph":
        from cnn.resource_graph import build_resource_graph
        return build_resource_graph(self, input_shape, num_classes)


def _block_from_dict(data: Any, where: str) -> ConvBlock:
    _check_keys(data, BLOCK_KEYS, where)
    layers = []
    for index, layer in enumerate(_check_list(data["layers"], f"{where}.layers")):
        _check_keys(layer, LAYER_KEYS, f"{where}.layers[{index}]")
        layers.append(ConvLayer(**{key: layer[key] for key in LAYER_KEYS}))
    return ConvBlock(is_branch=data["is_branch"], layers=tuple(layers))


def _check_keys(data: Any, expected: tuple[str, ...], where: str) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"Invalid {where}: expected a dict with keys {list(expected)}, "
                         f"got {type(data).__name__} {data!r}.")
    unknown = sorted(set(data) - set(expected), key=str)
    missing = [key for key in expected if key not in data]
    if unknown or missing:
        problems = []
        if unknown:
            problems.append(f"unknown keys {unknown}")
        if missing:
            problems.append(f"missing keys {missing}")
        raise ValueError(f"Invalid {where}: {', '.join(problems)}; expected exactly the keys "
                         f"{list(expected)}.")


def _check_list(data: Any, where: str) -> list:
    if not isinstance(data, (list, tuple)):
        raise ValueError(f"Invalid {where}: expected a list, got {type(data).__name__} {data!r}.")
    return list(data)
