"""The CNN search space: random architectures, morphisms, validity, Keras and resource graphs."""
import json
from collections import Counter
from pathlib import Path

import keras
import numpy as np
import pytest

from cnn import MORPHISM_NAMES, CnnArchitecture, CnnSearchSpace
from cnn.shapes import MergeStep, plan_merge
from errors import InvalidArchitectureError

INPUT_SHAPES = [(8, 8, 1), (28, 28, 1), (32, 32, 3)]
MNIST_TINY = Path("/work/shared/datasets/tiny/mnist_1000_200.npz")

# Mutation chains: STARTS random starts per input shape, each mutated CHAIN_LENGTH times,
# so 3 * 4 * 90 = 1,080 mutations.
STARTS = 4
CHAIN_LENGTH = 90


def conv_layer(layer_type="Conv2D", kernel_size=3, filters=8, stride2=False, pre_pool=False,
               batch_norm=False, relu=True):
    return {"type": layer_type, "kernel_size": kernel_size, "filters": filters,
            "stride2": stride2, "pre_pool": pre_pool, "batch_norm": batch_norm, "relu": relu}


def architecture_dict(blocks, pooling=None, units=(16,)):
    """Return a `to_dict`-style architecture from a list of (is_branch, layers) blocks."""
    return {"conv_blocks": [{"is_branch": is_branch, "layers": layers}
                            for is_branch, layers in blocks],
            "pooling": pooling,
            "dense_layers": [{"units": count} for count in units]}


# A branch block whose output has other spatial size and channel count than the block it
# runs in parallel with. On a 28x28x1 input:
#   block 0: Conv2D 3x3, 8 filters, batch norm          -> 28x28x8
#   block 1: pre-pool 14x14, Conv2D 3x3 stride 2, 4 f.  -> 7x7x4   (input 28x28x8)
#   block 2: branch, DWConv2D 3x3 stride 2, batch norm  -> 14x14x8 (input 28x28x8)
# The merge pads block 1 to 7x7x8 and max pools block 2 with window 2, stride 2 to 7x7x8.
BRANCH_EXAMPLE = architecture_dict(
    [(False, [conv_layer(filters=8, batch_norm=True)]),
     (False, [conv_layer(filters=4, stride2=True, pre_pool=True)]),
     (True, [conv_layer("DWConv2D", filters=None, stride2=True, batch_norm=True)])],
    pooling={"kind": "avg", "size": "global"}, units=(16,))


def batch_norm_channels(model):
    return sum(layer.gamma.shape[0] for layer in model.layers
               if isinstance(layer, keras.layers.BatchNormalization))


# --- mutation chains ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def mutation_records():
    """Run the chains once; each record is (input_shape, parent dict before, parent dict
    after, child, morphism name)."""
    space = CnnSearchSpace()
    records = []
    for shape_index, input_shape in enumerate(INPUT_SHAPES):
        for start in range(STARTS):
            rng = np.random.default_rng(1000 * shape_index + start)
            parent = space.random_architecture(rng, input_shape)
            for _ in range(CHAIN_LENGTH):
                before = json.dumps(parent.to_dict(), sort_keys=True)
                child, name = space.mutate(parent, rng, input_shape)
                after = json.dumps(parent.to_dict(), sort_keys=True)
                records.append((input_shape, before, after, child, name))
                parent = child
    return records


def test_mutation_count_at_least_1000(mutation_records):
    assert len(mutation_records) >= 1000


def test_mutations_pass_validate(mutation_records):
    space = CnnSearchSpace()
    for input_shape, _, _, child, name in mutation_records:
        space.validate(child, input_shape)


def test_mutations_build_resource_graphs(mutation_records):
    # resource_models infers shapes on its own and rejects an Add of unequal shapes.
    for input_shape, _, _, child, name in mutation_records:
        graph = child.build_resource_graph(input_shape, num_classes=10)
        assert graph.outputs[0].shape == (10,), name


def test_mutations_differ_from_parent(mutation_records):
    for _, before, _, child, name in mutation_records:
        assert json.dumps(child.to_dict(), sort_keys=True) != before, name


def test_mutations_leave_parent_unchanged(mutation_records):
    for _, before, after, _, name in mutation_records:
        assert after == before, name


def test_mutations_exercise_every_morphism(mutation_records):
    counts = Counter(name for *_, name in mutation_records)
    assert set(counts) == set(MORPHISM_NAMES)


def test_mutate_same_seed_same_result():
    space = CnnSearchSpace()
    parent = space.random_architecture(np.random.default_rng(5), (28, 28, 1))
    first = space.mutate(parent, np.random.default_rng(6), (28, 28, 1))
    second = space.mutate(parent, np.random.default_rng(6), (28, 28, 1))
    assert first == second


def test_mutate_rejects_invalid_parent():
    space = CnnSearchSpace()
    too_large_kernel = CnnArchitecture.from_dict(
        architecture_dict([(False, [conv_layer(kernel_size=7)])]))
    with pytest.raises(InvalidArchitectureError, match="kernel_size 7 exceeds the 4x4 input"):
        space.mutate(too_large_kernel, np.random.default_rng(0), (4, 4, 1))


def test_random_architecture_on_1x1_input():
    space = CnnSearchSpace()
    rng = np.random.default_rng(0)
    for _ in range(20):
        architecture = space.random_architecture(rng, (1, 1, 3))
        space.validate(architecture, (1, 1, 3))
        assert {layer.type for *_, layer in architecture.layers()} == {"1x1Conv2D"}


# --- Keras models and resource graphs -----------------------------------------------------

@pytest.fixture(scope="module")
def built_models():
    """Build 54 architectures (random starts, each mutated a few times for branches).

    Each record contains the architecture, input shape, class count, the Keras parameter
    count, the batch-norm channels, the Keras output shape, the Keras layer output shapes
    by name, and the resource graph.
    """
    space = CnnSearchSpace()
    records = []
    for index in range(54):
        input_shape = INPUT_SHAPES[index % 3]
        num_classes = (10, 3)[index % 2]
        rng = np.random.default_rng(500 + index)
        architecture = space.random_architecture(rng, input_shape)
        for _ in range(index % 7):
            architecture, _ = space.mutate(architecture, rng, input_shape)

        model = architecture.build_model(input_shape, num_classes)
        layer_shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
        records.append({
            "architecture": architecture, "input_shape": input_shape,
            "num_classes": num_classes, "params": model.count_params(),
            "batch_norm_channels": batch_norm_channels(model),
            "output_shape": tuple(model.output_shape), "layer_shapes": layer_shapes,
            "graph": architecture.build_resource_graph(input_shape, num_classes),
        })
        del model
        keras.backend.clear_session()
    return records


def test_weight_count_matches_keras_without_batch_norm_extras(built_models):
    for record in built_models:
        expected = record["params"] - 3 * record["batch_norm_channels"]
        assert record["graph"].weight_count() == expected, record["architecture"].to_dict()


def test_keras_output_shape_is_classes(built_models):
    for record in built_models:
        assert record["output_shape"] == (None, record["num_classes"])


def test_keras_and_graph_shapes_agree_per_layer(built_models):
    # Keras layers and graph ops share names, so each shared name must have one shape.
    for record in built_models:
        graph = record["graph"]
        graph_shapes = {node.name: node.output.shape for node in graph.ops}
        shared = set(record["layer_shapes"]) & set(graph_shapes)
        for name in shared:
            assert record["layer_shapes"][name] == graph_shapes[name], name


def test_built_sample_covers_branch_merges(built_models):
    op_types = Counter(type(node.op).__name__ for record in built_models
                       for node in record["graph"].ops)
    assert op_types["Add"] > 0
    assert op_types["Pad"] > 0


def test_dropout_adds_layers_but_no_parameters():
    architecture = CnnSearchSpace(dropout=0.25).architecture_from_dict(BRANCH_EXAMPLE)
    plain = CnnSearchSpace().architecture_from_dict(BRANCH_EXAMPLE)
    model = architecture.build_model((28, 28, 1), 10)
    dropout_rates = [layer.rate for layer in model.layers
                     if isinstance(layer, keras.layers.Dropout)]
    params_with_dropout = model.count_params()
    keras.backend.clear_session()
    plain_params = plain.build_model((28, 28, 1), 10).count_params()
    keras.backend.clear_session()

    # One dropout before the hidden dense layer and one before the classifier.
    assert dropout_rates == [0.25, 0.25]
    assert params_with_dropout == plain_params


# --- the hand-checked branch example ------------------------------------------------------

@pytest.fixture(scope="module")
def branch_example():
    architecture = CnnSearchSpace().architecture_from_dict(BRANCH_EXAMPLE)
    model = architecture.build_model((28, 28, 1), 10)
    graph = architecture.build_resource_graph((28, 28, 1), 10)
    yield architecture, model, graph
    keras.backend.clear_session()


def test_branch_example_keras_add_inputs_equal(branch_example):
    _, model, _ = branch_example
    add_inputs = [tuple(tensor.shape) for tensor in model.get_layer("group1_add").input]
    assert add_inputs == [(None, 7, 7, 8), (None, 7, 7, 8)]


def test_branch_example_graph_add_inputs_equal(branch_example):
    _, _, graph = branch_example
    (add,) = [node for node in graph.ops if node.name == "group1_add"]
    assert add.input_shapes == ((7, 7, 8), (7, 7, 8))


def test_branch_example_merge_steps(branch_example):
    _, model, _ = branch_example
    pad = model.get_layer("group1_input0_pad")
    pool = model.get_layer("group1_input1_pool")
    assert pad.padding == 4
    assert tuple(pool.pool_size) == (2, 2)
    assert tuple(pool.strides) == (2, 2)


def test_branch_example_weight_count_by_hand(branch_example):
    _, model, graph = branch_example
    # Graph: conv 3*3*1*8+8, conv 3*3*8*4+4, depthwise 3*3*8+8, dense 8*16+16, 16*10+10.
    # Keras has 4 batch-norm values per channel instead of the graph's one bias: +3*16.
    assert graph.weight_count() == 80 + 292 + 80 + 144 + 170
    assert model.count_params() == 766 + 3 * 16


def test_branch_example_macs_by_hand(branch_example):
    _, _, graph = branch_example
    # 28*28*8*9*1 + 7*7*4*9*8 + 14*14*8*9 (depthwise) + 8*16 + 16*10.
    assert graph.macs() == 56448 + 14112 + 14112 + 128 + 160


def test_branch_example_passes_build_check(branch_example):
    architecture, _, _ = branch_example
    CnnSearchSpace().validate(architecture, (28, 28, 1), check_build=True)


def test_branch_example_predicts_real_mnist(branch_example):
    _, model, _ = branch_example
    images = np.load(MNIST_TINY)["x_test"][:4].astype("float32")[..., None] / 255.0
    probabilities = model.predict(images, verbose=0)
    assert probabilities.shape == (4, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_plan_merge_uneven_sizes():
    # Height 7 -> 3: stride 7 // 3 = 2, window 7 - 2 * 2 = 3. Width 5 -> 3: stride 1,
    # window 5 - 1 * 2 = 3. Channels 3 -> 6: pad 3.
    merged, steps = plan_merge([(7, 5, 3), (3, 3, 6)])
    assert merged == (3, 3, 6)
    assert steps[0] == MergeStep(pool_size=(3, 3), pool_strides=(2, 1), channel_padding=3)
    assert steps[1] == MergeStep(pool_size=None, pool_strides=None, channel_padding=0)


def test_uneven_merge_builds_equal_add_inputs():
    # On 7x7x1, block 1 keeps 7x7x2 and its branch pre-pools to 3x3x5 before a 1x1 conv.
    data = architecture_dict(
        [(False, [conv_layer(filters=3)]),
         (False, [conv_layer(filters=2)]),
         (True, [conv_layer("1x1Conv2D", kernel_size=1, filters=5, pre_pool=True)])])
    architecture = CnnSearchSpace().architecture_from_dict(data)
    model = architecture.build_model((7, 7, 1), 2)
    add_inputs = [tuple(tensor.shape) for tensor in model.get_layer("group1_add").input]
    keras.backend.clear_session()
    graph = architecture.build_resource_graph((7, 7, 1), 2)
    (add,) = [node for node in graph.ops if node.name == "group1_add"]

    assert add_inputs == [(None, 3, 3, 5), (None, 3, 3, 5)]
    assert add.input_shapes == ((3, 3, 5), (3, 3, 5))


# --- serialisation ------------------------------------------------------------------------

def test_json_round_trip_equal():
    space = CnnSearchSpace()
    rng = np.random.default_rng(11)
    for index in range(30):
        architecture = space.random_architecture(rng, INPUT_SHAPES[index % 3])
        text = json.dumps(architecture.to_dict())
        rebuilt = space.architecture_from_dict(json.loads(text))
        assert rebuilt == architecture
        assert rebuilt.fingerprint() == architecture.fingerprint()


def test_to_dict_matches_documented_form():
    architecture = CnnArchitecture.from_dict(BRANCH_EXAMPLE)
    assert architecture.to_dict() == BRANCH_EXAMPLE


def test_architecture_from_dict_keeps_space_dropout():
    architecture = CnnSearchSpace(dropout=0.5).architecture_from_dict(BRANCH_EXAMPLE)
    assert architecture.dropout == 0.5


def _with(data, path, value):
    """Return a deep copy of ``data`` with the entry at ``path`` set, or removed for _REMOVE."""
    data = json.loads(json.dumps(data))
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is _REMOVE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


_REMOVE = object()
_LAYER = ("conv_blocks", 0, "layers", 0)

INVALID_DICTS = [
    # (case, data, expected exception, message pattern)
    ("unknown top-level key", _with(BRANCH_EXAMPLE, ("extra",), 1), ValueError,
     r"Invalid architecture: unknown keys \['extra'\]"),
    ("missing pooling", _with(BRANCH_EXAMPLE, ("pooling",), _REMOVE), ValueError,
     r"Invalid architecture: missing keys \['pooling'\]"),
    ("misspelt layer key", _with(_with(BRANCH_EXAMPLE, _LAYER + ("kernel",), 3),
                                 _LAYER + ("kernel_size",), _REMOVE), ValueError,
     r"Invalid conv_blocks\[0\]\.layers\[0\]: unknown keys \['kernel'\], "
     r"missing keys \['kernel_size'\]"),
    ("blocks not a list", _with(BRANCH_EXAMPLE, ("conv_blocks",), {"0": 1}), ValueError,
     r"Invalid conv_blocks: expected a list"),
    ("layer not a dict", _with(BRANCH_EXAMPLE, _LAYER, 3), ValueError,
     r"Invalid conv_blocks\[0\]\.layers\[0\]: expected a dict"),
    ("zero filters", _with(BRANCH_EXAMPLE, _LAYER + ("filters",), 0), InvalidArchitectureError,
     r"conv_blocks\[0\]\.layers\[0\]\.filters is 0, expected an int from 1 to 128"),
    ("even kernel", _with(BRANCH_EXAMPLE, _LAYER + ("kernel_size",), 4),
     InvalidArchitectureError, r"kernel_size is 4, expected an int from 3 to 7 in steps of 2"),
    ("unknown layer type", _with(BRANCH_EXAMPLE, _LAYER + ("type",), "Conv3D"),
     InvalidArchitectureError, r"type is 'Conv3D', expected one of"),
    ("first block is a branch", _with(BRANCH_EXAMPLE, ("conv_blocks", 0, "is_branch"), True),
     InvalidArchitectureError, r"conv_blocks\[0\]\.is_branch is true"),
    ("depthwise with filters", _with(BRANCH_EXAMPLE, ("conv_blocks", 2, "layers", 0, "filters"),
                                     8),
     InvalidArchitectureError, r"DWConv2D layer keeps its input's channel count"),
    ("1x1 with kernel 3", _with(BRANCH_EXAMPLE, _LAYER + ("type",), "1x1Conv2D"),
     InvalidArchitectureError, r"1x1Conv2D layer has kernel_size 1"),
    ("pooling size 3", _with(BRANCH_EXAMPLE, ("pooling", "size"), 3), InvalidArchitectureError,
     r"pooling\.size is 3, expected one of \[2, 4, 6, 'global'\]"),
    ("pooling size float", _with(BRANCH_EXAMPLE, ("pooling", "size"), 2.0),
     InvalidArchitectureError, r"pooling\.size is 2\.0"),
    ("units too many", _with(BRANCH_EXAMPLE, ("dense_layers", 0, "units"), 300),
     InvalidArchitectureError, r"dense_layers\[0\]\.units is 300, expected an int from 10 to 256"),
    ("no dense layers", _with(BRANCH_EXAMPLE, ("dense_layers",), []), InvalidArchitectureError,
     r"dense_layers has 0 entries, expected 1 to 3"),
    ("eleven blocks", architecture_dict([(False, [conv_layer()])] * 11),
     InvalidArchitectureError, r"conv_blocks has 11 entries, expected 1 to 10"),
    ("four layers", architecture_dict([(False, [conv_layer()] * 4)]),
     InvalidArchitectureError, r"conv_blocks\[0\]\.layers has 4 entries, expected 1 to 3"),
    ("bool relu as int", _with(BRANCH_EXAMPLE, _LAYER + ("relu",), 1), InvalidArchitectureError,
     r"relu is 1, expected true or false"),
]


@pytest.mark.parametrize("case, data, exception, message", INVALID_DICTS,
                         ids=[case[0] for case in INVALID_DICTS])
def test_invalid_dict_rejected(case, data, exception, message):
    with pytest.raises(exception, match=message):
        CnnSearchSpace().architecture_from_dict(data)


# --- shape rules --------------------------------------------------------------------------

INVALID_SHAPES = [
    # (case, data, input shape, message pattern)
    ("kernel larger than input", architecture_dict([(False, [conv_layer(kernel_size=5)])]),
     (4, 4, 1), r"conv_blocks\[0\]\.layers\[0\]: kernel_size 5 exceeds the 4x4 input"),
    ("kernel larger after stride",
     architecture_dict([(False, [conv_layer(stride2=True), conv_layer(kernel_size=7)])]),
     (8, 8, 1), r"conv_blocks\[0\]\.layers\[1\]: kernel_size 7 exceeds the 4x4 input"),
    ("pre-pool on 1x1", architecture_dict(
        [(False, [conv_layer("1x1Conv2D", kernel_size=1, pre_pool=True)])]),
     (1, 1, 2), r"pre_pool needs an input of at least 2x2, but the input is 1x1"),
    ("stride on 1x1", architecture_dict(
        [(False, [conv_layer("1x1Conv2D", kernel_size=1, stride2=True)])]),
     (1, 1, 2), r"stride2 needs an input of at least 2x2"),
    ("pooling larger than features",
     architecture_dict([(False, [conv_layer()])], pooling={"kind": "max", "size": 6}),
     (4, 4, 1), r"pooling: size 6 exceeds the 4x4 feature map"),
    ("kernel larger than narrow input", architecture_dict([(False, [conv_layer()])]),
     (49, 2, 1), r"kernel_size 3 exceeds the 49x2 input"),
]


@pytest.mark.parametrize("case, data, input_shape, message", INVALID_SHAPES,
                         ids=[case[0] for case in INVALID_SHAPES])
def test_shape_rule_rejected(case, data, input_shape, message):
    space = CnnSearchSpace()
    architecture = space.architecture_from_dict(data)
    with pytest.raises(InvalidArchitectureError, match=message):
        space.validate(architecture, input_shape)


@pytest.mark.parametrize("input_shape", [(28, 28), (28, 28, 0), [28.0, 28, 1], "28x28x1"])
def test_invalid_input_shape_rejected(input_shape):
    space = CnnSearchSpace()
    architecture = space.architecture_from_dict(BRANCH_EXAMPLE)
    with pytest.raises(ValueError, match="Invalid input_shape"):
        space.validate(architecture, input_shape)


def test_global_pooling_fits_any_feature_map():
    data = architecture_dict([(False, [conv_layer("1x1Conv2D", kernel_size=1)])],
                             pooling={"kind": "max", "size": "global"})
    space = CnnSearchSpace()
    space.validate(space.architecture_from_dict(data), (1, 1, 4))


# --- the search space object --------------------------------------------------------------

@pytest.mark.parametrize("dropout", [-0.1, 1.0, "0.1", True])
def test_invalid_dropout_rejected(dropout):
    with pytest.raises(ValueError, match="Invalid dropout"):
        CnnSearchSpace(dropout=dropout)


def test_describe_names_space_and_dropout():
    assert CnnSearchSpace(dropout=0.1).describe() == {"name": "cnn",
                                                      "arguments": {"dropout": 0.1}}


def test_three_way_merge_is_two_binary_adds():
    # The TFLite converter sums three branches as (a + b) + c; the graph must do the same.
    layer = {"type": "Conv2D", "kernel_size": 3, "filters": 4, "stride2": False,
             "pre_pool": False, "batch_norm": False, "relu": True}
    data = {"conv_blocks": [{"is_branch": False, "layers": [layer]},
                            {"is_branch": True, "layers": [layer]},
                            {"is_branch": True, "layers": [layer]}],
            "pooling": None, "dense_layers": [{"units": 10}]}
    architecture = CnnSearchSpace().architecture_from_dict(data)
    graph = architecture.build_resource_graph((8, 8, 1), 10)
    adds = [node for node in graph.ops if node.op.type_name == "Add"]
    assert len(adds) == 2
    assert all(len(node.inputs) == 2 for node in adds)
