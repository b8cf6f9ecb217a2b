"""Shapes, weights, MACs, serialisation and errors of the resource_models graph library."""
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from resource_models import Graph, Op, Tensor, ops

REPOSITORY = Path(__file__).resolve().parents[1]


def small_cnn() -> Graph:
    graph = Graph(name="small_cnn")
    image = graph.add_input((8, 8, 1), name="image")
    conv = graph.add(ops.Conv2D(filters=4, kernel_size=3, padding="same", activation="relu"),
                     image, name="conv")
    depthwise = graph.add(ops.DepthwiseConv2D(kernel_size=3, strides=2, padding="valid",
                                              depth_multiplier=2), conv, name="depthwise")
    pooled = graph.add(ops.Pool2D(kind="max", pool_size=3), depthwise, name="pool")
    flat = graph.add(ops.Reshape(target_shape=(-1,)), pooled, name="flatten")
    logits = graph.add(ops.Dense(units=10), flat, name="logits")
    graph.mark_output(graph.add(ops.Softmax(), logits, name="softmax"))
    return graph


def test_small_cnn_shapes():
    graph = small_cnn()
    shapes = {node.name: node.output.shape for node in graph.ops}

    assert shapes["conv"] == (8, 8, 4)
    # "valid", stride 2: floor((8 - 3) / 2) + 1 = 3; channels 4 * 2.
    assert shapes["depthwise"] == (3, 3, 8)
    # Pool strides default to the pool size: floor((3 - 3) / 3) + 1 = 1.
    assert shapes["pool"] == (1, 1, 8)
    assert shapes["flatten"] == (8,)
    assert shapes["logits"] == (10,)
    assert shapes["softmax"] == (10,)


def test_small_cnn_weights_size_and_macs():
    graph = small_cnn()
    conv_weights, conv_biases = 3 * 3 * 1 * 4, 4
    depthwise_weights, depthwise_biases = 3 * 3 * 4 * 2, 4 * 2
    dense_weights, dense_biases = 8 * 10, 10

    weights = conv_weights + depthwise_weights + dense_weights
    biases = conv_biases + depthwise_biases + dense_biases
    assert graph.weight_count() == weights + biases
    assert graph.bias_count() == biases
    assert graph.model_size_bytes() == weights * 1 + biases * 4

    conv_macs = 8 * 8 * 4 * 3 * 3 * 1
    depthwise_macs = 3 * 3 * 4 * 2 * 3 * 3
    dense_macs = 8 * 10
    assert graph.macs() == conv_macs + depthwise_macs + dense_macs


def test_ops_without_macs_or_weights():
    graph = Graph()
    image = graph.add_input((6, 6, 3))
    padded = graph.add(ops.Pad(paddings=((1, 1), (0, 0), (0, 5))), image)
    summed = graph.add(ops.Add(activation="relu"), padded, padded)
    averaged = graph.add(ops.GlobalPool2D(kind="avg"), summed)
    pooled = graph.add(ops.Pool2D(kind="avg", pool_size=2, strides=1, padding="same"), summed)
    graph.mark_output(averaged, pooled)

    assert padded.shape == (8, 6, 8)
    assert averaged.shape == (8,)
    assert pooled.shape == (8, 6, 8)
    assert graph.macs() == 0
    assert graph.weight_count() == 0
    assert graph.model_size_bytes() == 0


def test_conv_without_bias():
    graph = Graph()
    image = graph.add_input((5, 5, 2))
    graph.add(ops.Conv2D(filters=3, kernel_size=(1, 3), use_bias=False), image)

    assert graph.weight_count() == 1 * 3 * 2 * 3
    assert graph.bias_count() == 0


def test_rectangular_kernel_and_stride():
    graph = Graph()
    spectrogram = graph.add_input((49, 10, 1))
    conv = graph.add(ops.Conv2D(filters=8, kernel_size=(10, 4), strides=(2, 2),
                                padding="same"), spectrogram)

    # "same": ceil(49 / 2) = 25 and ceil(10 / 2) = 5.
    assert conv.shape == (25, 5, 8)
    assert graph.macs() == 25 * 5 * 8 * 10 * 4 * 1


def test_dense_on_last_axis():
    graph = Graph()
    sequence = graph.add_input((4, 6))
    dense = graph.add(ops.Dense(units=3), sequence)

    assert dense.shape == (4, 3)
    assert graph.weight_count() == 6 * 3 + 3
    assert graph.macs() == 4 * 6 * 3


def test_tensor_sizes():
    graph = Graph()
    image = graph.add_input((28, 28, 1))
    float_input = graph.add_input((10,), name="float_features", element_bytes=4)

    assert image.size_bytes == 28 * 28
    assert float_input.size_bytes == 10 * 4
    assert Tensor("scalar", ()).size_bytes == 1


@pytest.mark.parametrize("layer_config", [
    {"kind": "conv", "filters": 6, "kernel_size": 3, "strides": 1, "padding": "same"},
    {"kind": "conv", "filters": 5, "kernel_size": 5, "strides": 2, "padding": "valid"},
    {"kind": "conv", "filters": 4, "kernel_size": (3, 1), "strides": (1, 2), "padding": "same"},
    {"kind": "depthwise", "kernel_size": 3, "strides": 2, "padding": "same", "multiplier": 3},
    {"kind": "depthwise", "kernel_size": 7, "strides": 1, "padding": "valid", "multiplier": 1},
    {"kind": "pool", "pool_size": 3, "strides": 2, "padding": "same"},
    {"kind": "pool", "pool_size": 2, "strides": None, "padding": "valid"},
])
def test_shapes_and_parameters_match_keras(layer_config):
    keras = pytest.importorskip("keras")
    input_shape = (11, 9, 3)
    config = dict(layer_config)
    kind = config.pop("kind")
    if kind == "conv":
        op = ops.Conv2D(**config)
        layer = keras.layers.Conv2D(**config)
    elif kind == "depthwise":
        multiplier = config.pop("multiplier")
        op = ops.DepthwiseConv2D(depth_multiplier=multiplier, **config)
        layer = keras.layers.DepthwiseConv2D(depth_multiplier=multiplier, **config)
    else:
        op = ops.Pool2D(kind="max", **config)
        layer = keras.layers.MaxPooling2D(**config)

    inputs = keras.Input(shape=input_shape)
    model = keras.Model(inputs, layer(inputs))
    graph = Graph()
    output = graph.add(op, graph.add_input(input_shape))

    assert output.shape == tuple(model.output_shape[1:])
    assert graph.weight_count() == model.count_params()


# --- serialisation ---------------------------------------------------------------------------


def branchy_graph() -> Graph:
    graph = Graph(name="branchy")
    image = graph.add_input((12, 12, 3), name="image")
    stem = graph.add(ops.Conv2D(8, 3, strides=2), image, name="stem")
    left = graph.add(ops.DepthwiseConv2D(3, activation="relu6"), stem, name="left")
    right = graph.add(ops.Conv2D(8, 1, use_bias=False), stem, name="right")
    joined = graph.add(ops.Add(), left, right, stem, name="join")
    padded = graph.add(ops.Pad(((0, 0), (0, 0), (0, 8))), joined, name="pad")
    pooled = graph.add(ops.GlobalPool2D("max"), padded, name="global_pool")
    graph.mark_output(graph.add(ops.Dense(4, activation="sigmoid"), pooled, name="head"))
    graph.mark_output(stem)
    return graph


def test_round_trip_through_json():
    graph = branchy_graph()
    data = json.loads(json.dumps(graph.to_dict()))
    rebuilt = Graph.from_dict(data)

    assert rebuilt.to_dict() == graph.to_dict()
    assert [node.op for node in rebuilt.ops] == [node.op for node in graph.ops]
    assert [tensor.name for tensor in rebuilt.outputs] == ["head", "stem"]
    assert rebuilt.macs() == graph.macs()
    assert rebuilt.peak_memory().peak_bytes == graph.peak_memory().peak_bytes


def test_linear_activation_means_none():
    assert ops.Dense(3, activation="linear") == ops.Dense(3, activation=None)


@dataclass(frozen=True)
class FixedCostOp(Op):
    """An op with a given output shape and cost, as an importer of .tflite files might add."""

    shape: tuple = (1,)
    weights: int = 0
    multiply_accumulates: int = 0
    max_inputs = None

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(self.shape))

    def output_shape(self, input_shapes):
        return tuple(self.shape)

    def weight_count(self, input_shapes):
        return self.weights

    def macs(self, input_shapes, output_shape):
        return self.multiply_accumulates


def test_custom_op_is_counted_and_round_trips():
    graph = Graph()
    first = graph.add_input((4, 4, 2))
    second = graph.add_input((3,))
    custom = graph.add(FixedCostOp(shape=(5, 2), weights=7, multiply_accumulates=40),
                       first, second, name="custom")
    graph.mark_output(custom)
    rebuilt = Graph.from_dict(json.loads(json.dumps(graph.to_dict())))

    assert custom.shape == (5, 2)
    assert graph.weight_count() == 7
    assert graph.macs() == 40
    assert rebuilt.ops[0].op == FixedCostOp(shape=(5, 2), weights=7, multiply_accumulates=40)


def test_import_does_not_load_tensorflow():
    code = "import sys, resource_models; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY, capture_output=True,
                            text=True, check=True)

    assert result.stdout.split() == ["False", "False"]


# --- errors ------------------------------------------------------------------------------------


def test_kernel_larger_than_valid_input():
    graph = Graph(name="tiny")
    image = graph.add_input((2, 5, 1))

    with pytest.raises(ValueError, match=r"kernel height 3 is larger than the input height 2"):
        graph.add(ops.Conv2D(4, 3, padding="valid"), image, name="too_big")


def test_error_names_the_op():
    graph = Graph(name="tiny")
    image = graph.add_input((2, 2, 1))

    with pytest.raises(ValueError, match=r"Op 'too_big' in graph 'tiny'"):
        graph.add(ops.Pool2D("max", 3), image, name="too_big")


def test_add_of_unequal_shapes():
    graph = Graph()
    first = graph.add_input((4, 4, 2))
    second = graph.add_input((4, 4, 3))

    with pytest.raises(ValueError, match=r"Add needs inputs of equal shape"):
        graph.add(ops.Add(), first, second)


def test_add_needs_two_inputs():
    graph = Graph()
    image = graph.add_input((4, 4, 2))

    with pytest.raises(ValueError, match=r"Add takes at least 2 input\(s\), got 1"):
        graph.add(ops.Add(), image)


def test_reshape_with_wrong_size():
    graph = Graph()
    image = graph.add_input((4, 4, 2))

    with pytest.raises(ValueError, match=r"has 30 elements but the input shape \(4, 4, 2\) has 32"):
        graph.add(ops.Reshape((5, 6)), image)
    with pytest.raises(ValueError, match=r"cannot infer -1"):
        graph.add(ops.Reshape((-1, 5)), image)


def test_pad_with_wrong_rank():
    graph = Graph()
    image = graph.add_input((4, 4, 2))

    with pytest.raises(ValueError, match=r"give one pair per dimension"):
        graph.add(ops.Pad(((1, 1), (1, 1))), image)


def test_conv_on_flat_input():
    graph = Graph()
    features = graph.add_input((16,))

    with pytest.raises(ValueError, match=r"expects an input of shape \(height, width, channels\)"):
        graph.add(ops.Conv2D(4, 3), features)


@pytest.mark.parametrize("make_op, message", [
    (lambda: ops.Conv2D(filters=0), r"filters must be a positive int, got 0"),
    (lambda: ops.Conv2D(filters=4, padding="full"), r"padding must be one of \['same', 'valid'\]"),
    (lambda: ops.Conv2D(filters=4, kernel_size=(3, 3, 3)), r"kernel_size must be a positive int"),
    (lambda: ops.Dense(units=2.5), r"units must be a positive int, got 2.5"),
    (lambda: ops.Dense(units=3, activation="swish"), r"activation must be one of"),
    (lambda: ops.Pool2D(kind="min"), r"kind must be one of \['max', 'avg'\]"),
    (lambda: ops.Pad(paddings=((0, -1),)), r"non-negative ints"),
    (lambda: ops.Reshape(target_shape=(-1, -1)), r"at most one -1"),
])
def test_invalid_op_arguments(make_op, message):
    with pytest.raises(ValueError, match=message):
        make_op()


def test_invalid_input_shape():
    graph = Graph()

    with pytest.raises(ValueError, match=r"positive ints \(no batch dimension and no None\)"):
        graph.add_input((None, 28, 28, 1))


def test_duplicate_name():
    graph = Graph(name="dup")
    image = graph.add_input((4, 4, 1), name="image")

    with pytest.raises(ValueError, match=r"Name 'image' is already used in graph 'dup'"):
        graph.add(ops.Conv2D(2, 1), image, name="image")


def test_tensor_of_another_graph():
    other = Graph(name="other")
    foreign = other.add_input((4, 4, 1))
    graph = Graph(name="mine")
    graph.add_input((4, 4, 1))

    with pytest.raises(ValueError, match=r"is not a tensor of graph 'mine'"):
        graph.add(ops.Conv2D(2, 1), foreign)


def test_from_dict_with_unknown_op_type():
    data = small_cnn().to_dict()
    data["ops"][0]["type"] = "Conv3D"

    with pytest.raises(ValueError, match=r"Unknown op type 'Conv3D'"):
        Graph.from_dict(data)


def test_from_dict_with_bad_config():
    data = small_cnn().to_dict()
    data["ops"][0]["config"]["filterz"] = 3

    with pytest.raises(ValueError, match=r"Invalid config for op 'conv' of type 'Conv2D'"):
        Graph.from_dict(data)


def test_from_dict_with_wrong_version():
    data = small_cnn().to_dict()
    data["format_version"] = 99

    with pytest.raises(ValueError, match=r"format_version 1 .* got format_version 99"):
        Graph.from_dict(data)
