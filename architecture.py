"""Base class of the architectures that a search space contains."""
from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

    from resource_models import Graph


class Architecture(ABC):
    """One point of a search space: a network's structure, without weights.

    Contract for subclasses:
    - ``to_dict()`` returns plain JSON-compatible data (dicts, lists, str, int, float, bool,
      None) and ``from_dict(to_dict())`` rebuilds an equal architecture. The journal stores
      this dict, so its keys are part of the journal format.
    - Architectures are values: morphisms return new objects and never modify their input.
    - ``build_model`` and ``build_resource_graph`` describe the same network, so that the
      resource graph's weight count equals the Keras model's parameter count once batch
      normalisation is folded into the preceding layer's bias.
    """

    @abstractmethod
    def to_dict(self) -> dict:
        """Return the architecture as plain JSON-compatible data."""

    @classmethod
    @abstractmethod
    def from_dict(cls, data: dict) -> "Architecture":
        """Rebuild an architecture from the output of `to_dict`."""

    @abstractmethod
    def build_model(self, input_shape: tuple[int, ...], num_classes: int) -> "keras.Model":
        """Build an untrained Keras model for inputs of ``input_shape`` (no batch dimension)."""

    @abstractmethod
    def build_resource_graph(self, input_shape: tuple[int, ...],
                             num_classes: int) -> "Graph":
        """Build the resource graph of the network as TFLite would run it (int8)."""

    def fingerprint(self) -> str:
        """Return a short hash of the canonical JSON form; equal architectures share it."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.to_dict() == self.to_dict()

    def __hash__(self) -> int:
        return hash(self.fingerprint())
