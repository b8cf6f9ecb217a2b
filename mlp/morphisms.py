"""Morphisms of MLP architectures: each returns a new architecture and never its input."""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from mlp.architecture import DROPOUT_RATES, MlpArchitecture, MlpLayer

#: Changes of width that `change_units` draws from: small steps refine, large ones explore.
UNIT_STEPS = (-32, -16, -8, -4, -1, 1, 4, 8, 16, 32)


def _with_layer(architecture: MlpArchitecture, index: int, layer: MlpLayer) -> MlpArchitecture:
    layers = list(architecture.layers)
    layers[index] = layer
    return MlpArchitecture(layers=tuple(layers))


def add_layer(architecture, rng, space):
    position = int(rng.integers(len(architecture.layers) + 1))
    layers = list(architecture.layers)
    layers.insert(position, space.random_layer(rng))
    return MlpArchitecture(layers=tuple(layers))


def remove_layer(architecture, rng, space):
    position = int(rng.integers(len(architecture.layers)))
    layers = list(architecture.layers)
    del layers[position]
    return MlpArchitecture(layers=tuple(layers))


def change_units(architecture, rng, space):
    index = int(rng.integers(len(architecture.layers)))
    layer = architecture.layers[index]
    low, high = space.units_range
    choices = [layer.units + step for step in UNIT_STEPS
               if low <= layer.units + step <= high]
    return _with_layer(architecture, index,
                       replace(layer, units=int(choices[int(rng.integers(len(choices)))])))


def change_activation(architecture, rng, space):
    index = int(rng.integers(len(architecture.layers)))
    layer = architecture.layers[index]
    choices = [name for name in space.activations if name != layer.activation]
    return _with_layer(architecture, index,
                       replace(layer, activation=choices[int(rng.integers(len(choices)))]))


def change_dropout(architecture, rng, space):
    index = int(rng.integers(len(architecture.layers)))
    layer = architecture.layers[index]
    choices = [rate for rate in DROPOUT_RATES if rate != layer.dropout]
    return _with_layer(architecture, index,
                       replace(layer, dropout=choices[int(rng.integers(len(choices)))]))


def applicable_morphisms(architecture: MlpArchitecture,
                         space) -> dict[str, Callable]:
    """Return the morphisms that can change ``architecture`` within ``space``, by name."""
    count = len(architecture.layers)
    morphisms = {"change_dropout": change_dropout}
    if space.units_range[0] < space.units_range[1]:
        morphisms["change_units"] = change_units
    if len(space.activations) > 1:
        morphisms["change_activation"] = change_activation
    if count < space.max_layers:
        morphisms["add_layer"] = add_layer
    if count > space.min_layers:
        morphisms["remove_layer"] = remove_layer
    return morphisms
