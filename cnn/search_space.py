"""The μNAS CNN search space."""
from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from cnn.architecture import CnnArchitecture
from cnn.morphisms import mutate
from cnn.random_generator import random_architecture
from cnn.shapes import check_input_shape
from cnn.validation import check_shapes, check_values
from errors import InvalidArchitectureError
from search_space import SearchSpace

logger = logging.getLogger(__name__)


class CnnSearchSpace(SearchSpace):
    """Convolution blocks with optional branches, optional pooling and dense layers.

    Args:
        dropout: Dropout rate before each dense layer, including the classifier, in
            training only. Every architecture that this space returns carries it, so that
            ``architecture.build_model`` applies it. Defaults to 0.0 (no dropout layers).
    """

    name = "cnn"

    def __init__(self, dropout: float = 0.0):
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) \
                or not 0.0 <= dropout < 1.0:
            raise ValueError(f"Invalid dropout {dropout!r}: expected a rate in [0, 1), "
                             "such as 0.1, or 0.0 for no dropout.")
        self.dropout = float(dropout)

    def random_architecture(self, rng: np.random.Generator,
                            input_shape: tuple[int, ...]) -> CnnArchitecture:
        return random_architecture(rng, input_shape, dropout=self.dropout)

    def mutate(self, architecture: CnnArchitecture, rng: np.random.Generator,
               input_shape: tuple[int, ...]) -> tuple[CnnArchitecture, str]:
        """Apply one random morphism, as `cnn.morphisms.mutate` describes.

        Raises `InvalidArchitectureError` if ``architecture`` itself is invalid.
        """
        shape = check_input_shape(input_shape)
        self.validate(architecture, shape)
        architecture = self._with_dropout(architecture)
        return mutate(architecture, rng, shape, lambda result: self.validate(result, shape))

    def architecture_from_dict(self, data: dict) -> CnnArchitecture:
        """Rebuild an architecture and check its values (not its shapes, which need an input).

        Raises ValueError for unknown or missing keys, and `InvalidArchitectureError` (also a
        ValueError) for a value outside its domain.
        """
        architecture = CnnArchitecture.from_dict(data, dropout=self.dropout)
        check_values(architecture)
        return architecture

    def validate(self, architecture: CnnArchitecture, input_shape: tuple[int, ...], *,
                 check_build: bool = False) -> None:
        """Raise `InvalidArchitectureError` naming the first broken rule.

        The shape checks walk the same structure as the Keras builder, so they catch the
        shape errors that would stop a build. ``check_build=True`` also builds the Keras model
        and reports a ValueError or TypeError from it, at the cost of one model build.
        """
        check_values(architecture)
        check_shapes(architecture, input_shape)
        if check_build:
            self._check_build(architecture, input_shape)

    def _check_build(self, architecture: CnnArchitecture, input_shape: tuple[int, ...]) -> None:
        try:
            # The classifier's width does not affect whether the model builds.
            architecture.build_model(tuple(input_shape), num_classes=2)
        except InvalidArchitectureError:
            raise
        except (ValueError, TypeError) as error:
            raise InvalidArchitectureError(
                f"Architecture {architecture.fingerprint()} does not build as a Keras model "
                f"for input shape {tuple(input_shape)}: {error}") from error

    def _with_dropout(self, architecture: CnnArchitecture) -> CnnArchitecture:
        if architecture.dropout == self.dropout:
            return architecture
        return replace(architecture, dropout=self.dropout)
