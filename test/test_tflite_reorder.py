"""Operator reordering of converted models, checked with LiteRT and the TFLM interpreter."""
import numpy as np
import pytest

from deployment import flatbuffer, testing, tflm
from deployment.conversion import convert_to_tflite
from deployment.litert import run_litert
from deployment.reorder import (OrderMatchError, apply_operator_order, match_operators,
                                reorder_to_optimal)
from resource_models import Graph, ops
from resource_models.tflite_reader import read_tflite

# Activation bytes of `testing.branchy_model` (sums of int8 tensor sizes): the stem output
# is 28*28*8 = 6272, each wide branch convolution 28*28*16 = 12544, the first long-branch
# pool 14*14*16 = 3136 and the short-branch pool 7*7*16 = 784.
STEM, WIDE, LONG_POOL, SHORT_POOL = 6272, 12544, 3136, 784
FILE_ORDER_PEAK = STEM + WIDE + LONG_POOL
OPTIMAL_PEAK = STEM + SHORT_POOL + WIDE


@pytest.fixture(scope="module")
def mnist():
    return testing.load_mnist_subset()


@pytest.fixture(scope="module")
def branchy(mnist):
    return convert_to_tflite(testing.branchy_model(), mnist["x_train"][:64])


@pytest.fixture(scope="module")
def reordered(branchy):
    return reorder_to_optimal(branchy)


def operator_types(tflite_bytes):
    model = flatbuffer.read_model(tflite_bytes)
    return [flatbuffer.operator_type_name(model, operator)
            for operator in model.subgraphs[0].operators]


def test_reorder_lowers_peak(reordered):
    assert reordered.file_order_peak_bytes == FILE_ORDER_PEAK
    assert reordered.peak_bytes == OPTIMAL_PEAK


def test_reorder_applies_order(branchy, reordered):
    original = operator_types(branchy)
    expected = [original[index] for index in reordered.order]

    assert reordered.order != sorted(reordered.order)
    assert operator_types(reordered.tflite_bytes) == expected


def test_reorder_keeps_outputs(branchy, reordered, mnist):
    x = mnist["x_test"][:20]
    before = run_litert(branchy, x, reference_kernels=True)
    after = run_litert(reordered.tflite_bytes, x, reference_kernels=True)

    np.testing.assert_array_equal(after, before)


def test_reorder_lowers_tflm_arena(branchy, reordered):
    before = tflm.measure_arena(branchy)
    after = tflm.measure_arena(reordered.tflite_bytes)

    assert before.head_bytes == FILE_ORDER_PEAK
    assert after.head_bytes == OPTIMAL_PEAK
    assert after.minimal_arena_bytes < before.minimal_arena_bytes


def constant_data_offsets(tflite_bytes):
    """Return the file offset of each non-empty buffer's data."""
    from ai_edge_litert import schema_py_generated as schema

    base = np.frombuffer(tflite_bytes, np.uint8).ctypes.data
    root = schema.Model.GetRootAs(tflite_bytes, 0)
    return [root.Buffers(index).DataAsNumpy().ctypes.data - base
            for index in range(root.BuffersLength()) if root.Buffers(index).DataLength()]


def test_reordered_buffers_aligned(reordered):
    offsets = constant_data_offsets(reordered.tflite_bytes)

    assert offsets
    assert [offset % 16 for offset in offsets] == [0] * len(offsets)


def test_graph_order_carried_over(branchy):
    graph = testing.branchy_graph()
    result = reorder_to_optimal(branchy, graph)

    assert result.peak_bytes == graph.peak_memory().peak_bytes == OPTIMAL_PEAK


def test_match_by_connectivity(branchy):
    tflite_graph = read_tflite(branchy)
    matches = match_operators(tflite_graph, testing.branchy_graph())
    types = tflite_graph.operator_types

    assert len(matches) == len(types)
    assert types[matches["short_pool"]] == "MAX_POOL_2D"
    assert types[matches["pool"]] == "MEAN"
    # The short pool is the only pool reading the output of a convolution that reads the stem.
    short_conv = tflite_graph.graph.ops[matches["short_conv"]]
    short_pool = tflite_graph.graph.ops[matches["short_pool"]]
    assert short_pool.inputs[0].name == short_conv.output.name
    assert short_pool.output.shape == (7, 7, 16)


def test_match_rejects_other_network(branchy):
    graph = Graph(name="other")
    x = graph.add_input((28, 28, 1))
    graph.mark_output(graph.add(ops.Conv2D(3, 5), x))

    with pytest.raises(OrderMatchError, match="No operator"):
        match_operators(read_tflite(branchy), graph)


def test_non_topological_order_rejected(branchy):
    count = len(operator_types(branchy))
    order = list(range(count))
    order[0], order[1] = order[1], order[0]

    with pytest.raises(ValueError, match="topological"):
        apply_operator_order(branchy, order)


def test_non_permutation_rejected(branchy):
    with pytest.raises(ValueError, match="permutation"):
        apply_operator_order(branchy, [0, 0, 1])


def test_match_merged_duplicate_ops(mnist):
    import keras
    from keras import layers

    # The converter merges the two equal pools of the input into one MAX_POOL_2D.
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    first = layers.Conv2D(4, 3, padding="same")(layers.MaxPooling2D(2)(inputs))
    second = layers.Conv2D(4, 1)(layers.MaxPooling2D(2)(inputs))
    outputs = layers.Dense(10, activation="softmax")(
        layers.GlobalAveragePooling2D()(layers.Add()([first, second])))
    converted = convert_to_tflite(keras.Model(inputs, outputs), mnist["x_train"][:32])

    graph = Graph(name="duplicate_pools")
    x = graph.add_input((28, 28, 1))
    first = graph.add(ops.Conv2D(4, 3), graph.add(ops.Pool2D("max", 2), x, name="pool_a"))
    second = graph.add(ops.Conv2D(4, 1), graph.add(ops.Pool2D("max", 2), x, name="pool_b"))
    scores = graph.add(ops.Dense(10), graph.add(ops.GlobalPool2D("avg"),
                                                graph.add(ops.Add(), first, second)))
    graph.mark_output(graph.add(ops.Softmax(), scores))

    tflite_graph = read_tflite(converted)
    matches = match_operators(tflite_graph, graph)
    assert tflite_graph.operator_types.count("MAX_POOL_2D") == 1
    assert matches["pool_a"] == matches["pool_b"]
    assert len(set(matches.values())) == len(tflite_graph.operator_types)
