"""The MLP search space: valid morphisms, Keras and resource graph agree, dict round trip."""
import json

import keras
import numpy as np
import pytest

from errors import InvalidArchitectureError
from mlp import MlpArchitecture, MlpLayer, MlpSearchSpace

INPUT_SHAPE = (8, 8, 1)


def test_mutation_chains_stay_valid():
    space = MlpSearchSpace()
    seen = set()
    for seed in range(10):
        rng = np.random.default_rng(seed)
        architecture = space.random_architecture(rng, INPUT_SHAPE)
        for _ in range(120):
            before = architecture.to_dict()
            child, name = space.mutate(architecture, rng, INPUT_SHAPE)
            space.validate(child, INPUT_SHAPE)
            assert child.to_dict() != before, name
            assert architecture.to_dict() == before  # the parent is unchanged
            seen.add(name)
            architecture = child
    assert seen == {"add_layer", "remove_layer", "change_units", "change_activation",
                    "change_dropout"}


def test_weight_count_matches_keras():
    space = MlpSearchSpace()
    rng = np.random.default_rng(1)
    for _ in range(50):
        architecture = space.random_architecture(rng, INPUT_SHAPE)
        model = architecture.build_model(INPUT_SHAPE, 10)
        graph = architecture.build_resource_graph(INPUT_SHAPE, 10)
        assert graph.weight_count() == model.count_params()
        keras.backend.clear_session()


def test_hand_computed_resources():
    architecture = MlpArchitecture(layers=(MlpLayer(units=20),))
    graph = architecture.build_resource_graph(INPUT_SHAPE, 10)
    # 64 inputs -> 20 units -> 10 classes; int8 weights, int32 biases.
    assert graph.model_size_bytes() == (64 * 20 + 20 * 10) * 1 + (20 + 10) * 4
    assert graph.macs() == 64 * 20 + 20 * 10


def test_dict_round_trip():
    space = MlpSearchSpace()
    architecture = space.random_architecture(np.random.default_rng(2), INPUT_SHAPE)
    data = json.loads(json.dumps(architecture.to_dict()))
    assert space.architecture_from_dict(data) == architecture


def test_unknown_key_rejected():
    with pytest.raises(ValueError, match="exactly the keys"):
        MlpArchitecture.from_dict({"layers": [{"units": 10, "activation": "relu"}]})


def test_too_many_layers_invalid():
    space = MlpSearchSpace(max_layers=2)
    architecture = MlpArchitecture(layers=(MlpLayer(units=10),) * 3)
    with pytest.raises(InvalidArchitectureError, match="3 hidden layers"):
        space.validate(architecture, INPUT_SHAPE)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="activations must be"):
        MlpSearchSpace(activations=("gelu",))
