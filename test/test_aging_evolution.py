"""Aging evolution's ask/tell steps on the real CNN search space, without training."""
import numpy as np
import pytest

from cnn import CnnSearchSpace
from search_algorithms.aging_evolution import AgingEvolution

INPUT_SHAPE = (8, 8, 1)
BOUNDS = {"val_error": 0.1, "peak_memory_bytes": 1000, "model_size_bytes": 1000, "macs": 1000}


def make_search(population_size=4, sample_size=3, seed=0, bounds=BOUNDS):
    return AgingEvolution(CnnSearchSpace(), INPUT_SHAPE, bounds, population_size=population_size,
                          sample_size=sample_size, seed=seed)


def completed(proposal, val_error=0.05, resources=500, status="completed"):
    objectives = {"val_error": val_error, "test_error": val_error,
                  "peak_memory_bytes": resources, "model_size_bytes": resources,
                  "macs": resources}
    return {"id": proposal.id, "status": status, "architecture": proposal.architecture.to_dict(),
            "objectives": objectives if status == "completed" else None}


def test_first_population_is_random():
    search = make_search(population_size=4)
    proposals = [search.ask() for _ in range(4)]
    assert [p.morphism for p in proposals] == ["random"] * 4


def test_ids_are_unique_and_increasing():
    search = make_search()
    ids = [search.ask().id for _ in range(6)]
    assert ids == sorted(set(ids))


def test_after_population_children_are_mutations_of_members():
    search = make_search(population_size=4)
    initial = [search.ask() for _ in range(4)]
    for proposal in initial:
        search.tell(completed(proposal))
    child = search.ask()
    assert child.parent_id in {p.id for p in initial}
    assert child.morphism != "random"


def test_oldest_member_dies():
    search = make_search(population_size=3)
    proposals = [search.ask() for _ in range(4)]
    for proposal in proposals:
        search.tell(completed(proposal))
    assert [member["id"] for member in search.population] == [p.id for p in proposals[1:]]


def test_failed_candidates_do_not_join():
    search = make_search(population_size=3)
    proposal = search.ask()
    search.tell(completed(proposal, status="failed"))
    assert len(search.population) == 0


def test_tournament_prefers_feasible_member():
    # A member over every bound by 10x loses to one within bounds whatever the weights are:
    # its normalised objectives are 10 / λ >= 10, the other's at most 1 / λ with λ drawn anew.
    search = make_search(population_size=2, sample_size=2)
    good, bad = search.ask(), search.ask()
    search.tell(completed(good, val_error=0.05, resources=500))
    search.tell(completed(bad, val_error=1.0, resources=100_000))
    fitness = search.fitness_function()
    good_record, bad_record = search.population
    assert fitness(good_record) > fitness(bad_record)


def test_error_counts_without_error_bound():
    bounds = dict(BOUNDS, val_error=None, peak_memory_bytes=None, model_size_bytes=None,
                  macs=None)
    search = make_search(population_size=2, bounds=bounds)
    accurate, inaccurate = search.ask(), search.ask()
    search.tell(completed(accurate, val_error=0.05))
    search.tell(completed(inaccurate, val_error=0.5))
    fitness = search.fitness_function()
    assert fitness(search.population[0]) > fitness(search.population[1])


def test_restore_matches_incremental_state():
    search = make_search(population_size=3)
    records = []
    for _ in range(5):
        proposal = search.ask()
        record = completed(proposal)
        search.tell(record)
        records.append(record)

    restored = make_search(population_size=3)
    restored.restore(records)
    assert [m["id"] for m in restored.population] == [m["id"] for m in search.population]
    assert restored.next_id == search.next_id
    assert restored.ask().morphism != "random"


@pytest.mark.parametrize("seed", [0, 1])
def test_same_seed_same_proposals(seed):
    first = [make_search(seed=seed).ask().architecture.to_dict() for _ in range(1)]
    second = [make_search(seed=seed).ask().architecture.to_dict() for _ in range(1)]
    assert first == second


def test_restored_search_draws_new_architectures():
    # A resumed search must not repeat the random architectures proposed before the stop.
    search = make_search(population_size=6)
    first = [search.ask() for _ in range(3)]
    records = [completed(proposal) for proposal in first]

    resumed = make_search(population_size=6)
    resumed.restore(records)
    later = [resumed.ask() for _ in range(3)]

    before = {proposal.architecture.fingerprint() for proposal in first}
    after = {proposal.architecture.fingerprint() for proposal in later}
    assert not before & after
