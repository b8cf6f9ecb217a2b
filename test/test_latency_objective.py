"""A fitted latency model as a search objective and bound, in place of raw MACs."""
import textwrap

import numpy as np
import pytest

from cnn import CnnSearchSpace
from config import load_config
from deployment.latency_model import LatencyModel
from errors import ConfigError
from model_trainer import resource_objectives
from search_algorithms.objectives import pareto_objectives

INPUT_SHAPE = (8, 8, 1)

CONFIG = """
import keras
from cnn import CnnSearchSpace
from config import AgingEvoConfig, BoundConfig, TrainingConfig
from dataset import Digits

training_config = TrainingConfig(dataset=Digits(), optimizer=lambda: keras.optimizers.Adam())
search_config = AgingEvoConfig(search_space=CnnSearchSpace(), rounds=2)
bound_config = BoundConfig(error_bound=0.1, mac_bound=None, {latency})
"""


def synthetic_latency(graph):
    # A device on which every op costs 50 µs plus 2 ns per MAC.
    return 50e-6 * len(graph.ops) + 2e-9 * graph.macs()


@pytest.fixture(scope="module")
def architectures():
    rng = np.random.default_rng(0)
    return [CnnSearchSpace().random_architecture(rng, INPUT_SHAPE) for _ in range(40)]


@pytest.fixture(scope="module")
def model_path(architectures, tmp_path_factory):
    graphs = [a.build_resource_graph(INPUT_SHAPE, 10) for a in architectures]
    model = LatencyModel.fit(graphs, [synthetic_latency(graph) for graph in graphs])
    path = tmp_path_factory.mktemp("latency") / "latency_model.json"
    model.save(path)
    return path


def write_config(tmp_path, latency):
    path = tmp_path / "latency_config.py"
    path.write_text(textwrap.dedent(CONFIG.format(latency=latency)))
    return path


def test_config_adds_latency_objective(tmp_path, model_path):
    run = load_config(write_config(tmp_path, f"latency_bound=0.002, latency_model={str(model_path)!r}"))
    bounds = run.bounds.as_objective_bounds()
    assert bounds["latency_seconds"] == 0.002
    assert "latency_seconds" in pareto_objectives(bounds)


def test_predicted_latency_follows_device(architectures, model_path):
    model = LatencyModel.load(model_path)
    architecture = architectures[0]
    objectives = resource_objectives(architecture, INPUT_SHAPE, 10, model)
    expected = synthetic_latency(architecture.build_resource_graph(INPUT_SHAPE, 10))
    assert objectives["latency_seconds"] == pytest.approx(expected, rel=0.05)


def test_latency_bound_needs_model(tmp_path):
    with pytest.raises(ConfigError, match="no latency_model"):
        load_config(write_config(tmp_path, "latency_bound=0.002"))


def test_missing_latency_model_file(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigError, match="could not be loaded"):
        load_config(write_config(tmp_path, f"latency_model={str(missing)!r}"))
