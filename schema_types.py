"""Free variables that a search space is made of.

Each variable has a name and a domain, samples a value from a `numpy.random.Generator`, checks
membership, and round-trips through a JSON-compatible dict. A variable created with
``can_be_optional=True`` may also take the value ``None`` (the feature is absent), which is how
a fixed-length vector describes architectures of varying depth for the Bayesian optimiser.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional, Sequence

import numpy as np


@dataclass(frozen=True)
class ValueType:
    """Base class: a named variable that may be optional."""

    name: str
    can_be_optional: bool = False

    def sample(self, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def contains(self, value: Any) -> bool:
        if value is None:
            return self.can_be_optional
        return self._contains(value)

    def _contains(self, value: Any) -> bool:
        raise NotImplementedError

    def to_dict(self) -> dict:
        data = asdict(self)
        data["kind"] = type(self).__name__
        return data

    @staticmethod
    def from_dict(data: dict) -> "ValueType":
        fields = dict(data)
        kind = fields.pop("kind", None)
        classes = {cls.__name__: cls for cls in (Discrete, Categorical, Boolean, Continuous)}
        if kind not in classes:
            raise ValueError(f"Unknown value type {kind!r}; expected one of {sorted(classes)}.")
        for key in ("bounds", "values"):
            if key in fields and isinstance(fields[key], list):
                fields[key] = tuple(fields[key])
        return classes[kind](**fields)


@dataclass(frozen=True)
class Discrete(ValueType):
    """An integer in ``bounds`` (both inclusive), on the grid ``bounds[0] + k * increment``."""

    bounds: tuple[int, int] = (0, 1)
    increment: int = 1

    def __post_init__(self):
        low, high = self.bounds
        if low > high or self.increment < 1 or (high - low) % self.increment:
            raise ValueError(
                f"Discrete {self.name!r}: bounds {self.bounds} with increment {self.increment} "
                "must satisfy low <= high and (high - low) divisible by the increment."
            )

    @property
    def values(self) -> Sequence[int]:
        low, high = self.bounds
        return range(low, high + 1, self.increment)

    def sample(self, rng: np.random.Generator) -> int:
        return int(rng.choice(self.values))

    def _contains(self, value: Any) -> bool:
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool) \
            and int(value) in self.values


@dataclass(frozen=True)
class Categorical(ValueType):
    """One of a fixed tuple of values (strings or numbers)."""

    values: tuple = ()

    def __post_init__(self):
        if not self.values:
            raise ValueError(f"Categorical {self.name!r} needs at least one value.")

    def sample(self, rng: np.random.Generator) -> Any:
        return self.values[int(rng.integers(len(self.values)))]

    def _contains(self, value: Any) -> bool:
        return value in self.values


@dataclass(frozen=True)
class Boolean(ValueType):
    """True or False."""

    def sample(self, rng: np.random.Generator) -> bool:
        return bool(rng.integers(2))

    def _contains(self, value: Any) -> bool:
        return isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class Continuous(ValueType):
    """A float in ``bounds`` (both inclusive), sampled uniformly."""

    bounds: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self):
        if not self.bounds[0] <= self.bounds[1]:
            raise ValueError(f"Continuous {self.name!r}: bounds {self.bounds} must be increasing.")

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(*self.bounds))

    def _contains(self, value: Any) -> bool:
        return isinstance(value, (int, float, np.floating)) and not isinstance(value, bool) \
            and self.bounds[0] <= float(value) <= self.bounds[1]


def sample_optional(value_type: ValueType, rng: np.random.Generator,
                    none_probability: float = 0.5) -> Optional[Any]:
    """Sample ``None`` with ``none_probability`` if the variable is optional, else a value."""
    if value_type.can_be_optional and rng.random() < none_probability:
        return None
    return value_type.sample(rng)
