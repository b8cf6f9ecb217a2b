"""The MLP search space: 1-5 hidden dense layers of 10-512 units."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from errors import InvalidArchitectureError
from mlp.architecture import ACTIVATIONS, DROPOUT_RATES, MlpArchitecture, MlpLayer
from mlp.morphisms import applicable_morphisms
from search_space import SearchSpace


class MlpSearchSpace(SearchSpace):
    """Multi-layer perceptrons over the flattened input.

    Args:
        min_layers, max_layers: the number of hidden layers. Defaults to 1 and 5.
        units_range: the smallest and largest hidden layer width. Defaults to (10, 512).
        activations: the activations a hidden layer may use, from ``relu``, ``relu6``,
            ``tanh`` and ``sigmoid``. Defaults to all four.
    """

    name = "mlp"

    def __init__(self, min_layers: int = 1, max_layers: int = 5,
                 units_range: Sequence[int] = (10, 512),
                 activations: Sequence[str] = ACTIVATIONS):
        if not 1 <= min_layers <= max_layers:
            raise ValueError(f"MlpSearchSpace needs 1 <= min_layers <= max_layers, but got "
                             f"min_layers={min_layers}, max_layers={max_layers}.")
        low, high = units_range
        if not 1 <= low <= high:
            raise ValueError(f"MlpSearchSpace: units_range must be (low, high) with "
                             f"1 <= low <= high, but got {tuple(units_range)}.")
        unknown = [name for name in activations if name not in ACTIVATIONS]
        if unknown or not activations:
            raise ValueError(f"MlpSearchSpace: activations must be a non-empty subset of "
                             f"{ACTIVATIONS}, but got {tuple(activations)}.")
        self.min_layers = min_layers
        self.max_layers = max_layers
        self.units_range = (int(low), int(high))
        self.activations = tuple(activations)

    def random_layer(self, rng: np.random.Generator) -> MlpLayer:
        low, high = self.units_range
        return MlpLayer(units=int(rng.integers(low, high + 1)),
                        activation=self.activations[int(rng.integers(len(self.activations)))],
                        dropout=DROPOUT_RATES[int(rng.integers(len(DROPOUT_RATES)))])

    def random_architecture(self, rng, input_shape) -> MlpArchitecture:
        count = int(rng.integers(self.min_layers, self.max_layers + 1))
        return MlpArchitecture(layers=tuple(self.random_layer(rng) for _ in range(count)))

    def mutate(self, architecture, rng, input_shape):
        self.validate(architecture, input_shape)
        morphisms = applicable_morphisms(architecture, self)
        names = sorted(morphisms)
        name = names[int(rng.integers(len(names)))]
        child = morphisms[name](architecture, rng, self)
        self.validate(child, input_shape)
        return child, name

    def architecture_from_dict(self, data: dict) -> MlpArchitecture:
        return MlpArchitecture.from_dict(data)

    def validate(self, architecture, input_shape) -> None:
        if not isinstance(architecture, MlpArchitecture):
            raise InvalidArchitectureError(
                f"Expected an MlpArchitecture, but got {type(architecture).__name__}.")
        count = len(architecture.layers)
        if not self.min_layers <= count <= self.max_layers:
            raise InvalidArchitectureError(
                f"{count} hidden layers; this space allows {self.min_layers} to "
                f"{self.max_layers}.")
        low, high = self.units_range
        for index, layer in enumerate(architecture.layers):
            if not (isinstance(layer.units, int) and low <= layer.units <= high):
                raise InvalidArchitectureError(
                    f"Layer {index} has {layer.units!r} units; expected an integer in "
                    f"[{low}, {high}].")
            if layer.activation not in self.activations:
                raise InvalidArchitectureError(
                    f"Layer {index} has activation {layer.activation!r}; expected one of "
                    f"{self.activations}.")
            if layer.dropout not in DROPOUT_RATES:
                raise InvalidArchitectureError(
                    f"Layer {index} has dropout {layer.dropout!r}; expected one of "
                    f"{DROPOUT_RATES}.")
