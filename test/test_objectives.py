"""Feasibility and the Pareto front, on hand-made candidate records."""
from search_algorithms.objectives import best_feasible, dominates, is_feasible, pareto_front

ALL_BOUNDS = {"val_error": 0.5, "peak_memory_bytes": 1000, "model_size_bytes": 1000,
              "macs": 1000}


def record(candidate_id, val_error, peak, size, macs, status="completed"):
    return {"id": candidate_id, "round": candidate_id + 1, "status": status,
            "objectives": {"val_error": val_error, "test_error": val_error,
                           "peak_memory_bytes": peak, "model_size_bytes": size, "macs": macs}}


def front_ids(records, bounds):
    return [r["id"] for r in pareto_front(records, bounds)]


def test_feasible_at_bound_is_inclusive():
    assert is_feasible(record(0, 0.5, 1000, 1000, 1000)["objectives"], ALL_BOUNDS)


def test_feasible_rejects_one_violation():
    assert not is_feasible(record(0, 0.1, 1001, 10, 10)["objectives"], ALL_BOUNDS)


def test_feasible_ignores_missing_bounds():
    bounds = {"val_error": 0.5, "peak_memory_bytes": None, "model_size_bytes": None, "macs": None}
    assert is_feasible(record(0, 0.1, 10**9, 10**9, 10**9)["objectives"], bounds)


def test_dominates_needs_strict_improvement():
    assert dominates((1, 2), (1, 3))
    assert not dominates((1, 3), (1, 3))
    assert not dominates((0, 4), (1, 3))


def test_front_drops_dominated_points():
    records = [record(0, 0.10, 500, 500, 500),
               record(1, 0.20, 600, 600, 600),   # worse than 0 everywhere
               record(2, 0.05, 900, 900, 900)]   # better error, more resources
    assert front_ids(records, ALL_BOUNDS) == [2, 0]


def test_front_keeps_ties():
    records = [record(0, 0.10, 500, 500, 500), record(1, 0.10, 500, 500, 500)]
    assert front_ids(records, ALL_BOUNDS) == [0, 1]


def test_front_excludes_infeasible_and_failed():
    records = [record(0, 0.10, 500, 500, 500),
               record(1, 0.01, 2000, 10, 10),                 # over the memory bound
               {"id": 2, "round": 3, "status": "failed", "objectives": None}]
    assert front_ids(records, ALL_BOUNDS) == [0]


def test_front_uses_only_bounded_resources():
    # With only model size bounded, peak memory and MACs do not matter, so 1 dominates 0.
    bounds = {"val_error": None, "peak_memory_bytes": None, "model_size_bytes": 1000,
              "macs": None}
    records = [record(0, 0.10, 10, 500, 10), record(1, 0.10, 900, 400, 900)]
    assert front_ids(records, bounds) == [1]


def test_front_without_resource_bounds_uses_all_resources():
    bounds = {"val_error": None, "peak_memory_bytes": None, "model_size_bytes": None,
              "macs": None}
    records = [record(0, 0.10, 10, 500, 10), record(1, 0.10, 900, 400, 900)]
    assert front_ids(records, bounds) == [0, 1]


def test_best_feasible_picks_lowest_error():
    records = [record(0, 0.10, 500, 500, 500), record(1, 0.05, 5000, 500, 500),
               record(2, 0.08, 500, 500, 500)]
    assert best_feasible(records, ALL_BOUNDS)["id"] == 2


def test_best_feasible_none_when_nothing_fits():
    assert best_feasible([record(0, 0.9, 500, 500, 500)], ALL_BOUNDS) is None
