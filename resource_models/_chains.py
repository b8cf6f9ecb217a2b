"""Contraction of op chains into segments that some optimal schedule runs without a break.

A chain is a maximal path of ops in which each op after the first reads only the output of
the op before it, and that output has no other reader and is not a graph output. Other ops
never read a chain's inner tensors, so while a chain is paused only its current tensor
(the chain's residency) affects the rest of the graph.

Each segment has, in bytes, entry bytes U (the inputs of its first op, which are live
before it runs and may die in it), exit bytes V (the chain's residency after it) and a hill
H (its largest working set minus the live bytes outside the chain). When the first op reads
a tensor that other ops also read (a shared entry tensor), whether that tensor dies depends
on the schedule, so the hill is kept as a lower and an upper bound. Two adjacent segments
M1, M2 of a chain are merged when one of these exchange rules holds:

- pull: V(M2) <= V(M1) and H(M2) <= H_low(M1). Moving M2 to right after M1 lowers what the
  ops in between see, and M2 then peaks no higher than M1 did.
- push: V(M1) >= U(M1), H_high(M1) <= H(M2), and no other reader of a shared entry tensor
  may reuse its buffer. Moving M1 to right before M2 lowers what the ops in between see
  (they may now see M1's entry tensors, at most U(M1) bytes, instead of V(M1)), and M1
  then peaks no higher than M2.

Both rules move whole segments, so earlier merges stay intact, and neither raises any
working set. So some optimal schedule runs every merged segment without a break.
"""
from __future__ import annotations

from dataclasses import dataclass

from resource_models._working_set import WorkingSetModel, bits


@dataclass(frozen=True)
class Segment:
    """Ops of one chain that run back to back, with their residencies and hill in bytes.

    Entry tensors are the inputs of the first op that are not graph outputs. Shared entry
    tensors also have readers outside the segment, so whether they die inside it depends on
    the schedule. The hill is therefore kept as two bounds. ``hill_low`` is at most the
    largest working set minus the live bytes outside the chain after the segment.
    ``hill_high`` is at least the largest working set minus the live bytes outside the chain
    and the entry tensors. Without shared entry tensors both are exact and equal.
    """

    ops: tuple[int, ...]
    entry_bytes: int
    shared_entry_bytes: int
    exit_bytes: int
    hill_low: int
    hill_high: int
    #: Lower bound of the first op's working set minus the live bytes outside the chain and
    #: the shared entry tensors.
    first_hill_low: int
    #: Whether an outside reader of a shared entry tensor may reuse its buffer.
    entry_readers_may_reuse: bool


def contract_chains(model: WorkingSetModel) -> list[list[Segment]]:
    """Return the graph's chains, each as its list of segments."""
    problem = model.problem
    num_ops = len(problem.op_names)
    follower = [-1] * num_ops
    is_follower = [False] * num_ops
    for op in range(num_ops):
        if _single_exclusive_input(model, op) is not None:
            producer = model.producer[problem.op_inputs[op][0]]
            follower[producer] = op
            is_follower[op] = True

    chains = []
    for head in range(num_ops):
        if is_follower[head]:
            continue
        chain = [head]
        while follower[chain[-1]] >= 0:
            chain.append(follower[chain[-1]])
        segments = [_op_segment(model, op) for op in chain]
        chains.append(_merge_segments(segments, model.reuse))
    return chains


def _merge_segments(segments: list[Segment], reuse: bool) -> list[Segment]:
    """Merge adjacent segments by the pull and push rules until neither applies."""
    merged = True
    while merged:
        merged = False
        for position in range(len(segments) - 1):
            first, second = segments[position], segments[position + 1]
            # A segment after the first one starts with a follower, so its hill is exact.
            pull = second.exit_bytes <= first.exit_bytes and second.hill_high <= first.hill_low
            push = first.exit_bytes >= first.entry_bytes and first.hill_high <= second.hill_low \
                and not (reuse and first.entry_readers_may_reuse)
            if pull or push:
                segments[position:position + 2] = [Segment(
                    ops=first.ops + second.ops,
                    entry_bytes=first.entry_bytes,
                    shared_entry_bytes=first.shared_entry_bytes,
                    exit_bytes=second.exit_bytes,
                    hill_low=max(first.hill_low, second.hill_low),
                    # Shared entry tensors may still be live while the second part runs.
                    hill_high=max(first.hill_high, first.shared_entry_bytes + second.hill_high),
                    first_hill_low=first.first_hill_low,
                    entry_readers_may_reuse=first.entry_readers_may_reuse,
                )]
                merged = True
                break
    return segments


def _single_exclusive_input(model: WorkingSetModel, op: int):
    """Return the input tensor if ``op`` reads exactly one op output that nothing else needs."""
    problem = model.problem
    if len(problem.op_inputs[op]) != 1:
        return None
    tensor = problem.op_inputs[op][0]
    producer = model.producer[tensor]
    if producer < 0 or len(problem.op_outputs[producer]) != 1 \
            or problem.tensor_is_output[tensor] or model.consumers[tensor] != 1 << op:
        return None
    return tensor


def _op_segment(model: WorkingSetModel, op: int) -> Segment:
    """Return the one-op segment of ``op``."""
    problem = model.problem
    bit = 1 << op
    entries = [tensor for tensor in problem.op_inputs[op] if not problem.tensor_is_output[tensor]]
    shared = [tensor for tensor in entries if model.consumers[tensor] != bit]
    entry_bytes = sum(problem.tensor_bytes[tensor] for tensor in entries)
    shared_bytes = sum(problem.tensor_bytes[tensor] for tensor in shared)

    # The output may take the buffer of a dying entry tensor under add_reuses_input. That
    # is certain when no entry tensor is shared, and only possible otherwise.
    output_bytes = model.output_bytes[op]
    largest_entry = max((problem.tensor_bytes[tensor] for tensor in entries), default=0)
    may_save = model.reuse and problem.op_may_reuse_input[op] \
        and 0 < output_bytes <= largest_entry
    saving_low = output_bytes if may_save and not shared else 0
    saving_high = output_bytes if may_save else 0

    readers_may_reuse = any(
        problem.op_may_reuse_input[reader]
        for tensor in shared for reader in bits(model.consumers[tensor] & ~bit)
    )
    return Segment(
        ops=(op,),
        entry_bytes=entry_bytes,
        shared_entry_bytes=shared_bytes,
        exit_bytes=model.needed_output_bytes[op],
        hill_low=entry_bytes - shared_bytes + output_bytes - saving_high,
        hill_high=entry_bytes + output_bytes - saving_low,
        first_hill_low=entry_bytes - shared_bytes + output_bytes - saving_high,
        entry_readers_may_reuse=readers_may_reuse,
    )
