"""Activation memory plans: TFLite Micro's greedy planner, a better plan, and its metadata.

TFLite Micro places every activation tensor of the model at a fixed offset in the arena's
non-persistent section. A tensor occupies its bytes, rounded up to 16, from the operator
that writes it (operator 0 for graph inputs) to the last operator that reads it (the last
operator for graph outputs), in file order. Two tensors whose lifetimes overlap must not
overlap in memory. The section's size is the largest offset plus size.

TFLM's GreedyMemoryPlanner places the tensors largest first, each at the lowest offset
that fits between the tensors already placed, and breaks ties of equal size by placing the
higher tensor index first. `greedy_plan` reproduces it. The sum of the tensors alive at
one time is a lower bound that a greedy plan may exceed when lifetimes interleave.
`best_plan` tries other placement orders and keeps the smallest plan. `add_offline_plan`
stores a plan in the model's "OfflineMemoryAllocation" metadata, which TFLM then uses in
place of its own planner.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from deployment import flatbuffer

logger = logging.getLogger(__name__)

#: Alignment, in bytes, of every tensor in TFLM's arena (``kBufferAlignment``).
BUFFER_ALIGNMENT = 16

#: Metadata name under which TFLM looks for an offline memory plan.
OFFLINE_PLAN_METADATA = "OfflineMemoryAllocation"

#: Random placement orders that `best_plan` tries after its fixed heuristics.
DEFAULT_RANDOM_TRIALS = 200


@dataclass(frozen=True)
class Buffer:
    """One activation tensor with its aligned size and lifetime.

    Attributes:
        tensor: the tensor's index in the subgraph.
        size: bytes, rounded up to `BUFFER_ALIGNMENT`.
        first: index (in file order) of the operator that writes it; 0 for graph inputs.
        last: index of the last operator that reads it.
    """

    tensor: int
    size: int
    first: int
    last: int

    def overlaps(self, other: "Buffer") -> bool:
        """Return whether the two lifetimes share an operator."""
        return self.first <= other.last and other.first <= self.last


@dataclass(frozen=True)
class MemoryPlan:
    """An offset for each buffer and the arena section size the plan needs."""

    offsets: dict[int, int]
    arena_bytes: int


def aligned(size: int) -> int:
    """Round ``size`` up to a multiple of `BUFFER_ALIGNMENT`."""
    return -(-size // BUFFER_ALIGNMENT) * BUFFER_ALIGNMENT


def activation_buffers(tflite_bytes: bytes, subgraph_index: int = 0) -> list[Buffer]:
    """Return the activation tensors of one subgraph with their lifetimes in file order."""
    model = flatbuffer.read_model(tflite_bytes)
    subgraph = model.subgraphs[subgraph_index]
    operators = subgraph.operators or []
    first: dict[int, int] = {}
    last: dict[int, int] = {}

    for tensor in subgraph.inputs:
        first[int(tensor)] = last[int(tensor)] = 0
    for index, operator in enumerate(operators):
        for tensor in operator.inputs:
            tensor = int(tensor)
            if tensor >= 0 and not flatbuffer.is_constant(model, subgraph.tensors[tensor]):
                last[tensor] = index
        for tensor in operator.outputs:
            first.setdefault(int(tensor), index)
            last.setdefault(int(tensor), index)
    for tensor in subgraph.outputs:
        last[int(tensor)] = max(len(operators) - 1, 0)

    buffers = []
    for tensor in sorted(first):
        shape = subgraph.tensors[tensor].shape
        elements = math.prod(int(size) for size in shape) if shape is not None else 1
        bytes_per_element = _element_bytes(subgraph.tensors[tensor])
        buffers.append(Buffer(tensor, aligned(elements * bytes_per_element), first[tensor],
                              last.get(tensor, first[tensor])))
    return buffers


def _element_bytes(tensor) -> int:
    sizes = {"INT8": 1, "UINT8": 1, "BOOL": 1, "INT16": 2, "UINT16": 2, "FLOAT16": 2,
             "INT32": 4, "UINT32": 4, "FLOAT32": 4, "INT64": 8, "FLOAT64": 8}
    name = flatbuffer.tensor_type_name(tensor)
    if name not in sizes:
        raise ValueError(f"Tensor {flatbuffer.tensor_name(tensor)!r} has the type {name}, "
                         "which the memory planner cannot size.")
    return sizes[name]


def lower_bound(buffers: Sequence[Buffer]) -> int:
    """Return the largest sum of buffer sizes alive at one operator; no plan is smaller."""
    if not buffers:
        return 0
    steps = max(buffer.last for buffer in buffers) + 1
    live = np.zeros(steps + 1, dtype=np.int64)
    for buffer in buffers:
        live[buffer.first] += buffer.size
        live[buffer.last + 1] -= buffer.size
    return int(np.cumsum(live).max())


def place_in_order(buffers: Sequence[Buffer]) -> MemoryPlan:
    """Place each buffer, in the given order, at the lowest offset free during its lifetime."""
    placed: list[tuple[int, Buffer]] = []
    offsets: dict[int, int] = {}
    for buffer in buffers:
        offset = 0
        for other_offset, other in sorted((entry for entry in placed
                                           if entry[1].overlaps(buffer)),
                                          key=lambda entry: entry[0]):
            if other_offset - offset >= buffer.size:
                break
            offset = max(offset, other_offset + other.size)
        placed.append((offset, buffer))
        offsets[buffer.tensor] = offset
    arena = max((offset + buffer.size for offset, buffer in placed), default=0)
    return MemoryPlan(offsets, arena)


def greedy_plan(buffers: Sequence[Buffer]) -> MemoryPlan:
    """Return the plan of TFLM's GreedyMemoryPlanner: largest first, ties by higher index."""
    return place_in_order(sorted(buffers, key=lambda buffer: (-buffer.size, -buffer.tensor)))


def best_plan(buffers: Sequence[Buffer], random_trials: int = DEFAULT_RANDOM_TRIALS,
              seed: int = 0) -> MemoryPlan:
    """Return the smallest plan found among several placement orders.

    Tries TFLM's greedy order, orders by size with other tie-breaks, by lifetime start, by
    lifetime length and by size times length, then ``random_trials`` random orders from a
    generator seeded with ``seed``. Stops early at the `lower_bound`.
    """
    buffers = list(buffers)
    bound = lower_bound(buffers)
    keys: list[Callable[[Buffer], tuple]] = [
        lambda b: (-b.size, -b.tensor),
        lambda b: (-b.size, b.tensor),
        lambda b: (-b.size, b.first),
        lambda b: (b.first, -b.size),
        lambda b: (-(b.last - b.first), -b.size),
        lambda b: (-b.size * (b.last - b.first + 1), b.tensor),
    ]
    best: Optional[MemoryPlan] = None
    for key in keys:
        plan = place_in_order(sorted(buffers, key=key))
        if best is None or plan.arena_bytes < best.arena_bytes:
            best = plan
        if best.arena_bytes <= bound:
            return best

    rng = np.random.default_rng(seed)
    for _ in range(random_trials):
        order = [buffers[index] for index in rng.permutation(len(buffers))]
        plan = place_in_order(order)
        if plan.arena_bytes < best.arena_bytes:
            best = plan
            if best.arena_bytes <= bound:
                break
    return best


def add_offline_plan(tflite_bytes: bytes, plan: MemoryPlan, subgraph_index: int = 0) -> bytes:
    """Return the model with ``plan`` stored as TFLM's "OfflineMemoryAllocation" metadata.

    The metadata buffer contains int32 values: a format version (0), the subgraph index, the
    number of tensors of the subgraph, then one arena offset per tensor, -1 for tensors
    that TFLM plans itself (constants). An existing plan is replaced.
    """
    from ai_edge_litert import schema_py_generated as schema

    model = flatbuffer.read_model(tflite_bytes)
    num_tensors = len(model.subgraphs[subgraph_index].tensors or [])
    offsets = np.full(num_tensors, -1, dtype=np.int32)
    for tensor, offset in plan.offsets.items():
        offsets[tensor] = offset
    values = np.concatenate([np.array([0, subgraph_index, num_tensors], dtype=np.int32),
                             offsets]).astype("<i4")

    buffer = schema.BufferT()
    buffer.data = np.frombuffer(values.tobytes(), dtype=np.uint8).copy()
    model.buffers.append(buffer)
    metadata = schema.MetadataT()
    metadata.name = OFFLINE_PLAN_METADATA
    metadata.buffer = len(model.buffers) - 1
    model.metadata = [entry for entry in (model.metadata or [])
                      if _metadata_name(entry) != OFFLINE_PLAN_METADATA] + [metadata]
    return flatbuffer.write_model(model)


def _metadata_name(entry) -> str:
    name = entry.name
    return name.decode() if isinstance(name, bytes) else str(name)
