"""Base class of search spaces: random architectures, morphisms and validation."""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from architecture import Architecture


class SearchSpace(ABC):
    """A set of architectures with a random generator and morphisms (small mutations).

    Search spaces are plain, picklable objects whose constructor arguments are their whole
    state: Ray ships them to workers, and `describe()` is stored with a run so that resuming
    with a different search space can be detected.

    Every method that creates an architecture takes the dataset's ``input_shape`` (without the
    batch dimension), because validity depends on it: a kernel may not be larger than its
    input and every intermediate shape must stay positive.
    """

    #: Short identifier stored in the journal, such as ``"cnn"``.
    name: str = ""

    @abstractmethod
    def random_architecture(self, rng: np.random.Generator,
                            input_shape: tuple[int, ...]) -> Architecture:
        """Return a random valid architecture."""

    @abstractmethod
    def mutate(self, architecture: Architecture, rng: np.random.Generator,
               input_shape: tuple[int, ...]) -> tuple[Architecture, str]:
        """Apply one random morphism that changes the architecture.

        Returns the new valid architecture and the morphism's name. The input is not modified.
        """

    @abstractmethod
    def architecture_from_dict(self, data: dict) -> Architecture:
        """Rebuild an architecture of this space from `Architecture.to_dict` output."""

    @abstractmethod
    def validate(self, architecture: Architecture, input_shape: tuple[int, ...]) -> None:
        """Raise `errors.InvalidArchitectureError` if the architecture breaks a rule."""

    def describe(self) -> dict:
        """Return the space's name and constructor arguments as JSON-compatible data."""
        return {"name": self.name, "arguments": dict(vars(self))}
