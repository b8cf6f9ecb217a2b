"""Aging evolution with the μNAS multi-objective tournament, written as ask/tell steps.

The first ``population_size`` candidates are random architectures. After that, each parent
selection draws a fresh weight λ_i ~ U(0, 1] per bounded objective, scores every member with

    fitness = -max_i( min(value_i / bound_i, 10) / λ_i )

(the validation error always takes part, with bound 1 when it has none),

takes ``sample_size`` members drawn with replacement, and mutates the fittest of them with a
random morphism. Each evaluated candidate joins the population and the oldest member dies once
the population is full. Failed candidates never join.

The object holds only the population and counters; `restore` rebuilds them from journal
records, so a resumed search continues as if it had never stopped.
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from search_algorithms.objectives import OBJECTIVES, OPTIONAL_OBJECTIVES, Bounds

logger = logging.getLogger(__name__)

#: Normalised objectives are capped here, so that one hugely oversized member does not
#: make every other objective irrelevant.
NORMALISED_OBJECTIVE_CAP = 10.0


@dataclass
class Proposal:
    """A candidate to evaluate: the architecture and how the algorithm produced it."""

    id: int
    architecture: Any
    parent_id: Optional[int]
    morphism: str

    def bookkeeping(self) -> dict:
        return {"name": "aging_evolution", "parent_id": self.parent_id, "morphism": self.morphism}


class AgingEvolution:
    """The aging-evolution search algorithm (ask/tell)."""

    def __init__(self, search_space: Any, input_shape: tuple[int, ...], bounds: Bounds,
                 population_size: int, sample_size: int, seed: int):
        self.search_space = search_space
        self.input_shape = tuple(input_shape)
        self.bounds = dict(bounds)
        self.population_size = population_size
        self.sample_size = sample_size
        self.seed = seed
        self.population: deque[dict] = deque()
        self.proposed_count = 0
        self.next_id = 0

    def restore(self, records: list[dict]) -> None:
        """Rebuild the population and counters from journal records (in journal order)."""
        for record in records:
            self.tell(record)
        self.proposed_count = len(records)
        self.next_id = max((record["id"] for record in records), default=-1) + 1

    def ask(self) -> Proposal:
        """Propose the next candidate."""
        candidate_id = self.next_id
        self.next_id += 1
        self.proposed_count += 1
        # Each proposal draws from its own generator, seeded by the run seed and the candidate
        # id, so a resumed search goes on with new draws instead of repeating the first ones.
        rng = self._rng_for(candidate_id)

        if self.proposed_count <= self.population_size or not self.population:
            architecture = self.search_space.random_architecture(rng, self.input_shape)
            return Proposal(candidate_id, architecture, parent_id=None, morphism="random")

        parent = self._select_parent(rng)
        parent_architecture = self.search_space.architecture_from_dict(parent["architecture"])
        child, morphism = self.search_space.mutate(parent_architecture, rng,
                                                   self.input_shape)
        return Proposal(candidate_id, child, parent_id=parent["id"], morphism=morphism)

    def tell(self, record: dict) -> None:
        """Add an evaluated candidate's record; only completed candidates join."""
        if record.get("status") != "completed":
            return
        self.population.append(record)
        while len(self.population) > self.population_size:
            self.population.popleft()

    def _rng_for(self, candidate_id: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, candidate_id])

    def fitness_function(self, rng: Optional[np.random.Generator] = None):
        """Return a fitness function with freshly drawn objective weights."""
        rng = rng if rng is not None else self._rng_for(self.next_id)
        scales = {name: bound for name, bound in self.bounds.items() if bound is not None}
        # The error always takes part, so that a config without an error bound still searches
        # for accurate models. Errors are fractions, so 1 is their natural scale.
        scales.setdefault("val_error", 1.0)

        # 1 - U[0, 1) lies in (0, 1], so no weight is zero.
        names = [name for name in (*OBJECTIVES, *OPTIONAL_OBJECTIVES) if name in scales]
        weights = {name: 1.0 - rng.random() for name in names}

        def fitness(record: dict) -> float:
            objectives = record["objectives"]
            return -max(min(objectives[name] / scales[name], NORMALISED_OBJECTIVE_CAP)
                        / weights[name] for name in weights)

        return fitness

    def _select_parent(self, rng: np.random.Generator) -> dict:
        fitness = self.fitness_function(rng)
        indices = rng.integers(len(self.population), size=self.sample_size)
        sample = [self.population[index] for index in indices]
        return max(sample, key=fitness)
