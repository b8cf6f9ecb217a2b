"""Operator order of a TFLite model: rewrite it, and carry a resource graph's order over.

TFLite Micro runs the operators in the order the file lists them, and its memory planner
keeps a tensor from the operator that writes it to the last operator that reads it. The
file order therefore decides the peak memory usage of models with branches. The converter
does not choose that order for memory, so `reorder_to_optimal` rewrites it.

A resource graph names its ops after the architecture, and the converter names tensors
after the Keras layers. `match_operators` therefore pairs graph ops with operators by tensor
connectivity (kind, output size and input tensors), not by names.
"""
from __future__ import annotations

import heapq
import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Optional, Sequence

from deployment import flatbuffer
from resource_models import Graph, OpNode, Tensor
from resource_models.tflite_reader import TfliteGraph, TfliteOperator, read_tflite

logger = logging.getLogger(__name__)

#: TFLite operator types that only change the layout or type of a tensor; matching looks
#: through them, because the converter inserts or removes them freely.
TRANSPARENT_OPERATOR_TYPES = frozenset({"RESHAPE", "QUANTIZE", "DEQUANTIZE", "SQUEEZE",
                                        "EXPAND_DIMS"})

#: Resource-graph op kind of the TFLite operator types that `match_operators` pairs.
_OPERATOR_KINDS = {
    "CONV_2D": "Conv2D", "DEPTHWISE_CONV_2D": "DepthwiseConv2D", "MAX_POOL_2D": "Pool2D:max",
    "AVERAGE_POOL_2D": "Pool2D:avg", "MEAN": "GlobalPool2D:avg",
    "REDUCE_MAX": "GlobalPool2D:max", "FULLY_CONNECTED": "Dense", "ADD": "Add", "PAD": "Pad",
    "PADV2": "Pad", "SOFTMAX": "Softmax",
}

#: Depth of the downstream structure compared when several operators could match one op.
_SIGNATURE_DEPTH = 4


class OrderMatchError(ValueError):
    """A resource graph does not correspond to the operators of a TFLite model."""


@dataclass(frozen=True)
class ReorderResult:
    """A rewritten model and the peak memory usage of its order.

    Attributes:
        tflite_bytes: the model with its operators in ``order``.
        order: the new operator order, as indices into the original file's operators.
        file_order_peak_bytes: peak memory usage of the original order, computed on the
            graph read from the file.
        peak_bytes: peak memory usage of the new order, computed the same way.
    """

    tflite_bytes: bytes
    order: list[int]
    file_order_peak_bytes: int
    peak_bytes: int


def apply_operator_order(tflite_bytes: bytes, order: Sequence[int],
                         subgraph_index: int = 0) -> bytes:
    """Return the model with the operators of one subgraph listed in ``order``.

    ``order`` is a permutation of the operator indices in which every operator comes after
    the operators that write its inputs. Tensors, buffers and metadata stay as they are.
    """
    model = flatbuffer.read_model(tflite_bytes)
    subgraph = model.subgraphs[subgraph_index]
    operators = subgraph.operators or []
    order = [int(index) for index in order]
    if sorted(order) != list(range(len(operators))):
        raise ValueError(f"Invalid operator order {order}: expected a permutation of "
                         f"0..{len(operators) - 1}.")

    producer = {}
    for index, operator in enumerate(operators):
        for tensor in operator.outputs:
            producer[int(tensor)] = index
    done: set[int] = set()
    for index in order:
        early = sorted({producer[int(tensor)] for tensor in operators[index].inputs
                        if int(tensor) in producer} - done)
        if early:
            raise ValueError(f"Invalid operator order: operator {index} reads the outputs of "
                             f"operators {early}, which run after it; give a topological "
                             "order.")
        done.add(index)

    subgraph.operators = [operators[index] for index in order]
    return flatbuffer.write_model(model)


def optimal_operator_order(tflite_graph: TfliteGraph) -> list[int]:
    """Return an operator order with the minimum peak memory usage of the file's graph."""
    result = tflite_graph.graph.peak_memory()
    return [tflite_graph.operator_index(name) for name in result.order]


def reorder_to_optimal(tflite_bytes: bytes, graph: Optional[Graph] = None) -> ReorderResult:
    """Rewrite the model so that its operators run in an order of minimum peak memory usage.

    The order is computed on the graph read from the file, whose tensors are exactly the
    model's. With a resource ``graph`` of the same network (such as
    `Architecture.build_resource_graph`), its optimal order is also carried over with
    `operator_order_from_graph` and used unless it needs more memory on the file's graph.
    It can: the converter turns a sum of three tensors into two ADDs, whose intermediate
    sum the resource graph does not have.
    """
    tflite_graph = read_tflite(tflite_bytes)
    names = tflite_graph.op_names

    def peak_of(order: Sequence[int]) -> int:
        return tflite_graph.graph.schedule_memory([names[index] for index in order]).peak_bytes

    order = optimal_operator_order(tflite_graph)
    new_peak = peak_of(order)
    graph_order = None
    if graph is not None:
        try:
            graph_order = operator_order_from_graph(tflite_graph, graph,
                                                    graph.peak_memory().order)
        except OrderMatchError as error:
            logger.warning("Using the model's own optimal order: %s", error)
    if graph_order is not None:
        graph_peak = peak_of(graph_order)
        if graph_peak <= new_peak:
            order, new_peak = graph_order, graph_peak
        else:
            logger.info("The resource graph's order needs %d bytes on the model's tensors, "
                        "%d more than the model's optimal order; using the latter.",
                        graph_peak, graph_peak - new_peak)

    file_peak = peak_of(range(len(names)))
    if order == list(range(len(names))):
        rewritten = bytes(tflite_bytes)
    else:
        rewritten = apply_operator_order(tflite_bytes, order)
    logger.info("Operator order: peak memory usage %d bytes in file order, %d bytes after "
                "reordering.", file_peak, new_peak)
    return ReorderResult(rewritten, order, file_peak, new_peak)


def operator_order_from_graph(tflite_graph: TfliteGraph, graph: Graph,
                              graph_order: Sequence[str]) -> list[int]:
    """Return the operator order that follows ``graph_order``, a resource graph's op order.

    Matched operators run in the order of their graph ops. Operators without a graph op
    (such as a RESHAPE the converter inserted) run just before their first matched
    consumer, so that their outputs live as briefly as possible.
    """
    matches = match_operators(tflite_graph, graph)
    position = {name: index for index, name in enumerate(graph_order)}
    missing = [name for name in matches if name not in position]
    if missing:
        raise ValueError(f"graph_order lacks the graph ops {missing}; pass an order of all "
                         "ops of the graph, such as graph.peak_memory().order.")

    nodes = tflite_graph.graph.ops
    successors = _successors(nodes)
    rank: dict[int, float] = {}
    for name, matched_index in matches.items():
        rank[matched_index] = min(rank.get(matched_index, math.inf), float(position[name]))
    # Unmatched operators take the rank of their earliest matched descendant.
    for index in reversed(range(len(nodes))):
        if index not in rank:
            ranks = [rank[successor] for successor in successors[index] if successor in rank]
            rank[index] = min(ranks, default=float(len(graph_order)))

    predecessors_left = [0] * len(nodes)
    for index in range(len(nodes)):
        for successor in successors[index]:
            predecessors_left[successor] += 1
    ready = [(rank[index], index) for index in range(len(nodes)) if not predecessors_left[index]]
    heapq.heapify(ready)
    order = []
    while ready:
        _, index = heapq.heappop(ready)
        order.append(index)
        for successor in successors[index]:
            predecessors_left[successor] -= 1
            if not predecessors_left[successor]:
                heapq.heappush(ready, (rank[successor], successor))
    return order


def match_operators(tflite_graph: TfliteGraph, graph: Graph) -> dict[str, int]:
    """Pair the ops of a resource ``graph`` with the operators of a TFLite model.

    Returns the operator index of each matched graph op. A graph op matches an operator of
    the same kind (Conv2D and CONV_2D, GlobalPool2D and MEAN, ...) whose output has as many
    elements and whose inputs are the matched outputs of the op's inputs. RESHAPE and other
    layout operators are looked through on both sides. When several operators fit (parallel
    branches from one tensor), the one whose downstream structure is the same is chosen.

    Raises `OrderMatchError` naming the first graph op that no operator fits.
    """
    file_side = _MatchingView(tflite_graph.graph.ops, tflite_graph.graph.inputs)
    graph_side = _MatchingView(graph.ops, graph.inputs)
    if len(file_side.inputs) != len(graph_side.inputs):
        raise OrderMatchError(
            f"The resource graph has {len(graph_side.inputs)} input(s) but the TFLite model has "
            f"{len(file_side.inputs)}; pass the graph of the network that was converted.")

    tensor_map = dict(zip(graph_side.inputs, file_side.inputs))
    matched_files: set[int] = set()
    matches: dict[str, int] = {}
    for index, node in enumerate(graph.ops):
        if graph_side.transparent[index]:
            continue
        inputs = {tensor_map.get(graph_side.canonical(tensor)) for tensor in node.inputs}
        fitting = [
            candidate for candidate, file_node in enumerate(file_side.nodes)
            if not file_side.transparent[candidate]
            and file_side.kinds[candidate] == graph_side.kinds[index]
            and file_node.output.num_elements == node.output.num_elements
            and file_side.summands(candidate, matched_files - {candidate}) == inputs
        ]
        # The converter merges equal ops that read the same tensor (two identical pools of
        # the input, for example), so an operator may stand for several graph ops.
        candidates = [candidate for candidate in fitting if candidate not in matched_files] \
            or fitting
        if not candidates:
            raise OrderMatchError(
                f"No operator of the TFLite model matches graph op {node.name!r} "
                f"({graph_side.kinds[index]}, output shape {node.output.shape}); the graph and "
                "the model describe different networks.")

        expected_signature = graph_side.signature(index, _SIGNATURE_DEPTH)
        chosen = next((candidate for candidate in candidates
                       if file_side.signature(candidate, _SIGNATURE_DEPTH) == expected_signature),
                      candidates[0])
        matches[node.name] = chosen
        matched_files.add(chosen)
        matched_files.update(file_side.inner_adds(chosen, matched_files))
        tensor_map[node.output.name] = file_side.nodes[chosen].output.name

    unmatched = [tflite_graph.operator_types[index] for index in range(len(file_side.nodes))
                 if index not in matched_files and not file_side.transparent[index]]
    if unmatched:
        logger.info("TFLite operators without a graph op: %s", ", ".join(unmatched))
    return matches


class _MatchingView:
    """Kinds, transparent ops and canonical tensors of one side of a matching."""

    def __init__(self, nodes: Sequence[OpNode], inputs: Sequence[Tensor]):
        self.nodes = list(nodes)
        self.inputs = [tensor.name for tensor in inputs]
        self.kinds = [_kind(node) for node in self.nodes]
        self.transparent = [kind == "transparent" for kind in self.kinds]

        # A transparent op's output stands for the tensor it reads.
        self.alias: dict[str, str] = {}
        for node, transparent in zip(self.nodes, self.transparent):
            if transparent and len(node.inputs) == 1:
                self.alias[node.output.name] = self.canonical(node.inputs[0])

        self.producers = {node.output.name: index for index, node in enumerate(self.nodes)
                          if not self.transparent[index]}
        self.consumers: dict[str, list[int]] = defaultdict(list)
        for index, node in enumerate(self.nodes):
            if not self.transparent[index]:
                for tensor in node.inputs:
                    self.consumers[self.canonical(tensor)].append(index)
        self._signatures: dict[tuple[int, int], tuple] = {}

    def summands(self, index: int, matched: set[int]) -> set[str]:
        """Return the canonical input tensors of an op, looking through chained ADDs.

        TFLite's ADD takes two inputs, so the converter turns a sum of three or more
        tensors into a chain of ADDs. An unmatched ADD whose only consumer is this ADD is
        part of the chain, and its inputs count as inputs of the whole sum.
        """
        tensors: set[str] = set()
        for tensor in self.nodes[index].inputs:
            inner = self.inner_add(tensor, index, matched)
            if inner is None:
                tensors.add(self.canonical(tensor))
            else:
                tensors |= self.summands(inner, matched)
        return tensors

    def inner_adds(self, index: int, matched: set[int]) -> set[int]:
        """Return the chained ADDs that `summands` looked through for this op."""
        found: set[int] = set()
        for tensor in self.nodes[index].inputs:
            inner = self.inner_add(tensor, index, matched)
            if inner is not None:
                found |= {inner} | self.inner_adds(inner, matched)
        return found

    def inner_add(self, tensor, consumer: int, matched: set[int]) -> Optional[int]:
        if self.kinds[consumer] != "Add":
            return None
        producer = self.producers.get(self.canonical(tensor))
        if producer is None or producer in matched or self.kinds[producer] != "Add":
            return None
        return producer if self.consumers[self.canonical(tensor)] == [consumer] else None

    def canonical(self, tensor) -> str:
        name = tensor if isinstance(tensor, str) else tensor.name
        return self.alias.get(name, name)

    def signature(self, index: int, depth: int) -> tuple:
        """Return the kinds and sizes downstream of an op, up to ``depth`` ops away."""
        key = (index, depth)
        if key not in self._signatures:
            node = self.nodes[index]
            below = ()
            if depth > 0:
                below = tuple(sorted(self.signature(consumer, depth - 1)
                                     for consumer in self.consumers[node.output.name]))
            self._signatures[key] = (self.kinds[index], node.output.num_elements, below)
        return self._signatures[key]


def _kind(node: OpNode) -> str:
    op = node.op
    if isinstance(op, TfliteOperator):
        if op.operator_type in TRANSPARENT_OPERATOR_TYPES:
            return "transparent"
        return _OPERATOR_KINDS.get(op.operator_type, op.operator_type)
    if op.type_name == "Reshape":
        return "transparent"
    if op.type_name in ("Pool2D", "GlobalPool2D"):
        return f"{op.type_name}:{op.kind}"
    return op.type_name


def _successors(nodes: Sequence[OpNode]) -> list[list[int]]:
    producer = {node.output.name: index for index, node in enumerate(nodes)}
    successors: list[list[int]] = [[] for _ in nodes]
    for index, node in enumerate(nodes):
        for tensor in dict.fromkeys(tensor.name for tensor in node.inputs):
            if tensor in producer:
                successors[producer[tensor]].append(index)
    return successors
