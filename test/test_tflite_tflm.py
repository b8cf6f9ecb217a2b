"""Arena measurement, memory plans and inference with the real TFLite Micro interpreter."""
import numpy as np
import pytest

from deployment import memory_plan, testing, tflm
from deployment.arena_model import predict_tflm_arena
from deployment.conversion import convert_to_tflite
from deployment.export import optimise_for_tflm
from deployment.reorder import apply_operator_order
from deployment.tflm_worker import TflmAbortError, WorkerClient
from deployment.verification import compare_tflm_with_litert

# TFLM prints these lines from RecordingMicroAllocator::PrintAllocations.
ALLOCATIONS_TEXT = """\
[RecordingMicroAllocator] Arena allocation total 21472 bytes
[RecordingMicroAllocator] Arena allocation head 18816 bytes
[RecordingMicroAllocator] Arena allocation tail 2656 bytes
[RecordingMicroAllocator] 'TfLiteEvalTensor data' used 408 bytes with alignment overhead \
(requested 408 bytes for 17 allocations)
[RecordingMicroAllocator] 'Persistent buffer data' used 860 bytes with alignment overhead \
(requested 816 bytes for 18 allocations)
[RecordingMicroAllocator] 'NodeAndRegistration struct' used 512 bytes with alignment overhead \
(requested 512 bytes for 8 NodeAndRegistration structs)
"""


@pytest.fixture(scope="module")
def mnist():
    return testing.load_mnist_subset()


@pytest.fixture(scope="module")
def branchy(mnist):
    return convert_to_tflite(testing.branchy_model(), mnist["x_train"][:64])


@pytest.fixture(scope="module")
def fragmented(mnist):
    """The fragmenting model with its long-lived convolution run before the chain."""
    converted = convert_to_tflite(testing.fragmenting_model(), mnist["x_train"][:64])
    from resource_models.tflite_reader import read_tflite

    nodes = read_tflite(converted).graph.ops
    long_lived = next(index for index, node in enumerate(nodes)
                      if node.output.shape == (14, 14, 85) and node.op.type_name == "Conv2D")
    wide = next(index for index, node in enumerate(nodes) if node.output.shape == (14, 14, 115))
    order = [index for index in range(len(nodes)) if index != long_lived]
    order.insert(order.index(wide) + 1, long_lived)
    return apply_operator_order(converted, order)


def test_parse_allocations_totals():
    usage = tflm.parse_allocations(ALLOCATIONS_TEXT)

    assert usage.total_bytes == 21472
    assert usage.head_bytes == 18816
    assert usage.tail_bytes == 2656
    assert usage.records["Persistent buffer data"] == tflm.RecordedAllocation(860, 816, 18)
    assert usage.records["NodeAndRegistration struct"].count == 8
    assert usage.itemised_tail_bytes == 408 + 860 + 512


def test_parse_allocations_missing_totals():
    with pytest.raises(ValueError, match="head"):
        tflm.parse_allocations("[RecordingMicroAllocator] Arena allocation total 10 bytes")


def test_head_matches_greedy_simulation(branchy):
    usage = tflm.measure_arena(branchy)
    simulated = memory_plan.greedy_plan(memory_plan.activation_buffers(branchy))

    assert usage.head_bytes == simulated.arena_bytes
    assert usage.total_bytes == usage.head_bytes + usage.tail_bytes


def test_minimal_arena_is_tight(branchy):
    usage = tflm.measure_arena(branchy)
    minimal = usage.minimal_arena_bytes

    assert usage.head_bytes < minimal <= usage.total_bytes
    client = WorkerClient(branchy)
    try:
        accepted = client.probe(minimal)
        rejected = not client.probe(minimal - 1)
    finally:
        client.close()
    assert accepted
    assert rejected


def test_tflm_outputs_match_litert(branchy, mnist):
    comparison = compare_tflm_with_litert(branchy, mnist["x_test"][:20])

    assert comparison.examples == 20
    assert comparison.identical_fraction == 1.0
    assert comparison.max_abs_difference == 0


def test_abort_reported_as_error():
    import keras

    keras.utils.set_random_seed(0)
    # A zero kernel makes the logits constant, so calibration gives the SOFTMAX input a
    # degenerate scale on which TFLM calls abort().
    model = keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Flatten(),
        keras.layers.Dense(10, kernel_initializer="zeros", activation="softmax"),
    ])
    constant_logits = convert_to_tflite(
        model, np.random.default_rng(0).random((16, 8, 8, 1)).astype(np.float32))

    with pytest.raises(TflmAbortError, match="SOFTMAX input scale"):
        tflm.measure_arena(constant_logits)


def test_greedy_plan_fragments(fragmented):
    buffers = memory_plan.activation_buffers(fragmented)
    greedy = memory_plan.greedy_plan(buffers)
    usage = tflm.measure_arena(fragmented, bisect=False)

    assert greedy.arena_bytes > memory_plan.lower_bound(buffers)
    assert usage.head_bytes == greedy.arena_bytes


def test_offline_plan_reaches_lower_bound(fragmented, mnist):
    buffers = memory_plan.activation_buffers(fragmented)
    plan = memory_plan.best_plan(buffers)
    planned = memory_plan.add_offline_plan(fragmented, plan)

    without_plan = tflm.measure_arena(fragmented, bisect=False)
    with_plan = tflm.measure_arena(planned, bisect=False)
    assert plan.arena_bytes == memory_plan.lower_bound(buffers)
    assert with_plan.head_bytes == plan.arena_bytes
    assert with_plan.head_bytes < without_plan.head_bytes

    comparison = compare_tflm_with_litert(planned, mnist["x_test"][:10])
    assert comparison.identical_fraction == 1.0


def test_plan_has_no_overlaps(fragmented):
    buffers = memory_plan.activation_buffers(fragmented)
    plan = memory_plan.best_plan(buffers)

    for first in buffers:
        for second in buffers:
            if first.tensor < second.tensor and first.overlaps(second):
                start, end = plan.offsets[first.tensor], plan.offsets[first.tensor] + first.size
                other_start = plan.offsets[second.tensor]
                assert end <= other_start or other_start + second.size <= start


def test_arena_prediction_within_5_percent(branchy):
    graph = testing.branchy_graph()
    prediction = predict_tflm_arena(graph)
    usage = tflm.measure_arena(optimise_for_tflm(branchy, graph).tflite_bytes)

    assert prediction.activation_bytes == graph.peak_memory().peak_bytes
    assert abs(prediction.activation_bytes - usage.head_bytes) <= 16 * 4
    assert abs(prediction.total_bytes - usage.minimal_arena_bytes) <= 0.05 * usage.minimal_arena_bytes
