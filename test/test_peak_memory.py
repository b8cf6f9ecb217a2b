"""Peak memory usage: hand-computed cases and exhaustive checks of the optimal schedule.

The reference functions below restate the memory model from its definition and share no
code with resource_models.schedule. While an op runs, its working set is every produced
tensor that a pending op (the running one included) still reads or that is a graph output.
The running op's output comes on top.
"""
import functools
import itertools
import random
import time

import pytest

from resource_models import Graph, ops


# --- reference model ------------------------------------------------------------------------


def reference_working_sets(graph: Graph, order, add_reuses_input: bool) -> list[int]:
    nodes = {node.name: node for node in graph.ops}
    outputs = {tensor.name for tensor in graph.outputs}
    readers = {}
    sizes = {tensor.name: tensor.size_bytes for tensor in graph.inputs}
    for node in graph.ops:
        sizes[node.name] = node.output.size_bytes
        for tensor in node.inputs:
            readers.setdefault(tensor.name, set()).add(node.name)

    produced = {tensor.name for tensor in graph.inputs}
    done = set()
    working_sets = []
    for name in order:
        node = nodes[name]
        live = [tensor for tensor in produced
                if tensor in outputs or readers.get(tensor, set()) - done]
        output_bytes = node.output.size_bytes
        if add_reuses_input and isinstance(node.op, ops.Add):
            for tensor in node.inputs:
                if tensor.name not in outputs and readers[tensor.name] - done == {name}:
                    output_bytes = 0
        working_sets.append(sum(sizes[tensor] for tensor in live) + output_bytes)
        done.add(name)
        produced.add(name)
    return working_sets


def predecessors_of(graph: Graph) -> dict[str, set[str]]:
    op_names = {node.name for node in graph.ops}
    return {node.name: {tensor.name for tensor in node.inputs if tensor.name in op_names}
            for node in graph.ops}


def topological_orders(graph: Graph):
    """Yield every valid order: all permutations, filtered."""
    predecessors = predecessors_of(graph)
    for order in itertools.permutations(predecessors):
        position = {name: index for index, name in enumerate(order)}
        if all(position[before] < position[name]
               for name in order for before in predecessors[name]):
            yield order


def reference_minimum_by_dynamic_program(graph: Graph, add_reuses_input: bool) -> int:
    """Return the minimum peak by plain memoised recursion over sets of executed ops."""
    predecessors = predecessors_of(graph)

    @functools.lru_cache(maxsize=None)
    def best(done: frozenset) -> int:
        if len(done) == len(predecessors):
            return 0
        ready = [name for name in predecessors if name not in done and predecessors[name] <= done]
        order = [name for name in predecessors if name in done]
        result = None
        for name in ready:
            working_set = reference_working_sets(graph, order + [name], add_reuses_input)[-1]
            value = max(working_set, best(done | {name}))
            result = value if result is None else min(result, value)
        return result

    return best(frozenset())


def assert_valid_order(graph: Graph, order) -> None:
    predecessors = predecessors_of(graph)
    assert sorted(order) == sorted(predecessors)
    seen = set()
    for name in order:
        assert predecessors[name] <= seen, f"{name} runs before {predecessors[name] - seen}"
        seen.add(name)


# --- random graphs -----------------------------------------------------------------------------


def random_graph(rng: random.Random, num_ops: int) -> Graph:
    """Return a graph of ``num_ops`` ops that read random earlier tensors (so it branches)."""
    graph = Graph(name="random")
    tensors = [graph.add_input(rng.choice([(4, 4, 1), (4, 4, 2), (8, 8, 1)]))]
    if rng.random() < 0.3:
        tensors.append(graph.add_input(tensors[0].shape, name="second_input"))
    while len(graph.ops) < num_ops:
        images = [tensor for tensor in tensors if len(tensor.shape) == 3]
        choice = rng.random()
        if choice < 0.35 and images:
            op = ops.Conv2D(rng.choice([1, 2, 4, 8]), kernel_size=rng.choice([1, 3]),
                            strides=rng.choice([1, 1, 2]))
            inputs = [rng.choice(images)]
        elif choice < 0.45 and images:
            op = ops.DepthwiseConv2D(3, strides=rng.choice([1, 2]),
                                     depth_multiplier=rng.choice([1, 2]))
            inputs = [rng.choice(images)]
        elif choice < 0.55 and images:
            source = rng.choice(images)
            if min(source.shape[:2]) < 2:
                continue
            op, inputs = ops.Pool2D(rng.choice(["max", "avg"]), 2), [source]
        elif choice < 0.8:
            by_shape = {}
            for tensor in tensors:
                by_shape.setdefault(tensor.shape, []).append(tensor)
            groups = [group for group in by_shape.values() if len(group) >= 2]
            if not groups:
                continue
            group = rng.choice(groups)
            op, inputs = ops.Add(), rng.sample(group, rng.randint(2, min(3, len(group))))
        elif choice < 0.87 and images:
            op = ops.Pad(((0, 0), (0, 0), (0, rng.choice([1, 2]))))
            inputs = [rng.choice(images)]
        elif choice < 0.93:
            op, inputs = ops.Reshape((-1,)), [rng.choice(tensors)]
        else:
            op, inputs = ops.Dense(rng.choice([3, 10, 40])), [rng.choice(tensors)]
        tensors.append(graph.add(op, *inputs))

    read = {tensor.name for node in graph.ops for tensor in node.inputs}
    graph.mark_output(*[node.output for node in graph.ops if node.name not in read])
    if rng.random() < 0.3:
        graph.mark_output(rng.choice(tensors))
    return graph


def random_fork_graph(rng: random.Random) -> Graph:
    """Return one or two blocks of 2-4 parallel branches joined by Add."""
    graph = Graph(name="fork")
    current = graph.add_input(rng.choice([(8, 8, 2), (6, 6, 4), (8, 8, 1)]))
    for _ in range(rng.randint(1, 2)):
        branches = []
        for _ in range(rng.randint(2, 4)):
            tensor = current
            for _ in range(rng.randint(0, 3)):
                choice = rng.random()
                if choice < 0.6:
                    op = ops.Conv2D(rng.choice([1, 2, 4, 8, 16]), rng.choice([1, 3]))
                elif choice < 0.8:
                    op = ops.DepthwiseConv2D(3, depth_multiplier=rng.choice([1, 2, 4]))
                else:
                    op = ops.Pad(((0, 0), (0, 0), (0, rng.choice([1, 4]))))
                tensor = graph.add(op, tensor)
            if tensor.shape != current.shape or rng.random() < 0.5:
                tensor = graph.add(ops.Conv2D(current.shape[-1], 1), tensor)
            branches.append(tensor)
        current = graph.add(ops.Add(), *branches)
        if rng.random() < 0.3:
            current = graph.add(ops.Pool2D("max", 2), current)
    graph.mark_output(current)
    return graph


# --- hand-computed cases -----------------------------------------------------------------------


def test_chain_peak():
    graph = Graph()
    image = graph.add_input((8, 8, 1))
    conv = graph.add(ops.Conv2D(4, 3), image, name="conv")
    pool = graph.add(ops.Pool2D("max", 2), conv, name="pool")
    flat = graph.add(ops.Reshape((-1,)), pool, name="flat")
    dense = graph.add(ops.Dense(10), flat, name="dense")
    graph.mark_output(graph.add(ops.Softmax(), dense, name="softmax"))
    result = graph.peak_memory()

    conv_bytes, pool_bytes, dense_bytes = 8 * 8 * 4, 4 * 4 * 4, 10
    assert result.order == ["conv", "pool", "flat", "dense", "softmax"]
    assert result.working_set_bytes == [
        8 * 8 * 1 + conv_bytes,        # the input is read by conv
        conv_bytes + pool_bytes,
        pool_bytes + pool_bytes,       # Reshape writes a separate buffer
        pool_bytes + dense_bytes,
        dense_bytes + dense_bytes,
    ]
    assert result.peak_bytes == 8 * 8 * 1 + conv_bytes


def two_branch_graph() -> Graph:
    graph = Graph()
    image = graph.add_input((8, 8, 1))
    wide_a = graph.add(ops.Conv2D(16, 3), image, name="wide_a")
    narrow_a = graph.add(ops.Conv2D(1, 1), wide_a, name="narrow_a")
    wide_b = graph.add(ops.Conv2D(16, 3), image, name="wide_b")
    narrow_b = graph.add(ops.Conv2D(1, 1), wide_b, name="narrow_b")
    graph.mark_output(graph.add(ops.Add(), narrow_a, narrow_b, name="add"))
    return graph


def test_branch_order_matters():
    graph = two_branch_graph()
    small, wide = 8 * 8 * 1, 8 * 8 * 16

    interleaved = graph.schedule_memory(["wide_a", "wide_b", "narrow_a", "narrow_b", "add"])
    assert interleaved.peak_bytes == small + wide + wide

    best = graph.peak_memory()
    # One branch finishes first: while wide_b runs, the image, narrow_a and wide_b are live.
    assert best.peak_bytes == small + small + wide
    assert best.peak_bytes == graph.schedule_memory(best.order).peak_bytes


def residual_graph() -> Graph:
    graph = Graph()
    image = graph.add_input((4, 4, 2), name="image")
    conv = graph.add(ops.Conv2D(2, 3), image, name="conv")
    graph.mark_output(graph.add(ops.Add(), image, conv, name="add"))
    return graph


def test_add_buffer_reuse():
    tensor = 4 * 4 * 2

    assert residual_graph().peak_memory().peak_bytes == tensor + tensor + tensor
    # The Add output takes the buffer of an input that nothing else reads.
    assert residual_graph().peak_memory(add_reuses_input=True).peak_bytes == tensor + tensor


def test_add_reuse_blocked_by_outputs_and_readers():
    graph = Graph()
    image = graph.add_input((4, 4, 2), name="image")
    conv = graph.add(ops.Conv2D(2, 3), image, name="conv")
    added = graph.add(ops.Add(), image, conv, name="add")
    later = graph.add(ops.Conv2D(2, 1), conv, name="later")
    graph.mark_output(added, later, image)
    tensor = 4 * 4 * 2

    # The image is a graph output and conv is still read by "later": no input is free.
    result = graph.schedule_memory(["conv", "add", "later"], add_reuses_input=True)
    assert result.working_set_bytes[1] == tensor + tensor + tensor


def test_outputs_stay_live():
    graph = Graph()
    image = graph.add_input((4, 4, 1))
    first = graph.add(ops.Conv2D(8, 1), image, name="first")
    second = graph.add(ops.Conv2D(1, 1), first, name="second")
    third = graph.add(ops.Conv2D(2, 1), second, name="third")
    graph.mark_output(first, third)
    result = graph.peak_memory()

    # "first" (128 bytes) is an output, so it stays live after "second" has read it.
    assert result.working_set_bytes == [16 + 128, 128 + 16, 128 + 16 + 32]


def test_unread_output_counts_while_written():
    graph = Graph()
    image = graph.add_input((4, 4, 1))
    graph.add(ops.Conv2D(8, 1), image, name="dangling")
    read_later = graph.add(ops.Conv2D(1, 1), image, name="read_later")
    graph.mark_output(read_later)
    result = graph.schedule_memory(["dangling", "read_later"])

    assert result.working_set_bytes == [16 + 128, 16 + 16]


def test_graph_without_ops():
    graph = Graph()
    graph.mark_output(graph.add_input((3,)))
    result = graph.peak_memory()

    assert result.peak_bytes == 0
    assert result.order == []


def test_schedule_errors():
    graph = two_branch_graph()

    with pytest.raises(ValueError, match=r"unknown ops \['nope'\]"):
        graph.schedule_memory(["nope", "wide_a", "narrow_a", "wide_b", "narrow_b", "add"])
    with pytest.raises(ValueError, match=r"exactly once; missing \['add'\]"):
        graph.schedule_memory(["wide_a", "narrow_a", "wide_b", "narrow_b"])
    with pytest.raises(ValueError, match=r"runs op 'narrow_a' before \['wide_a'\]"):
        graph.schedule_memory(["narrow_a", "wide_a", "wide_b", "narrow_b", "add"])


# --- exhaustive checks -------------------------------------------------------------------------


@pytest.mark.parametrize("add_reuses_input", [False, True])
def test_minimum_equals_brute_force(add_reuses_input):
    for seed in range(220):
        rng = random.Random(seed)
        graph = random_graph(rng, rng.randint(3, 8))
        brute_force = min(max(reference_working_sets(graph, order, add_reuses_input))
                          for order in topological_orders(graph))
        result = graph.peak_memory(add_reuses_input)

        assert result.peak_bytes == brute_force, f"seed {seed}"
        assert_valid_order(graph, result.order)
        assert result.working_set_bytes == \
            reference_working_sets(graph, result.order, add_reuses_input), f"seed {seed}"
        assert graph.schedule_memory(result.order, add_reuses_input).peak_bytes == \
            result.peak_bytes, f"seed {seed}"


@pytest.mark.parametrize("add_reuses_input", [False, True])
def test_minimum_on_forks_equals_dynamic_program(add_reuses_input):
    checked = 0
    for seed in range(150):
        graph = random_fork_graph(random.Random(1000 + seed))
        if len(graph.ops) > 14:
            continue
        result = graph.peak_memory(add_reuses_input)

        assert result.peak_bytes == \
            reference_minimum_by_dynamic_program(graph, add_reuses_input), f"seed {seed}"
        assert_valid_order(graph, result.order)
        checked += 1
    assert checked >= 100


def residual_network(num_blocks: int) -> Graph:
    """Return a chain-like CNN of about 6 ops per block, with a skip connection per block."""
    rng = random.Random(num_blocks)
    graph = Graph(name="residual")
    tensor = graph.add(ops.Conv2D(16, 3), graph.add_input((32, 32, 3)))
    for block in range(num_blocks):
        branch = tensor
        for _ in range(3):
            branch = graph.add(ops.Conv2D(rng.choice([8, 16, 32, 64]), 3), branch)
        branch = graph.add(ops.Conv2D(tensor.shape[-1], 1), branch)
        shortcut = tensor if block % 2 else graph.add(ops.DepthwiseConv2D(3), tensor)
        tensor = graph.add(ops.Add(), branch, shortcut)
        if block % 3 == 2:
            tensor = graph.add(ops.Pool2D("max", 2), tensor)
    tensor = graph.add(ops.Dense(10), graph.add(ops.GlobalPool2D("avg"), tensor))
    graph.mark_output(graph.add(ops.Softmax(), tensor))
    return graph


def fan_out_network(num_branches: int, branch_length: int) -> Graph:
    rng = random.Random(num_branches * 100 + branch_length)
    graph = Graph(name="fan_out")
    image = graph.add_input((16, 16, 8))
    branches = []
    for _ in range(num_branches):
        tensor = image
        for _ in range(branch_length - 1):
            tensor = graph.add(ops.Conv2D(rng.choice([4, 8, 16, 32, 64]), 3), tensor)
        branches.append(graph.add(ops.Conv2D(8, 1), tensor))
    graph.mark_output(graph.add(ops.Add(), *branches))
    return graph


@pytest.mark.parametrize("graph, cpu_seconds", [
    (residual_network(10), 0.5),
    (fan_out_network(10, 3), 0.5),
    (fan_out_network(10, 4), 0.5),
])
def test_search_time(graph, cpu_seconds):
    # CPU time, not wall time, so that other processes on the machine do not count. The
    # limits are about 10 times the times measured on an idle core.
    for add_reuses_input in (False, True):
        start = time.process_time()
        result = graph.peak_memory(add_reuses_input)
        elapsed = time.process_time() - start

        assert elapsed < cpu_seconds, f"{elapsed:.3f} s for {len(graph.ops)} ops"
        assert_valid_order(graph, result.order)
