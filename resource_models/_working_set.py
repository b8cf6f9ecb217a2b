"""A graph's scheduling data and the working set of one op.

`resource_models.schedule` defines the memory model.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScheduleProblem:
    """A graph reduced to what scheduling needs: ops and tensors as indices.

    Ops are numbered in a topological order. ``op_inputs[v]`` lists the distinct tensors
    that op ``v`` reads and ``op_outputs[v]`` those it writes. Graph inputs are the tensors
    that no op writes.
    """

    op_names: tuple[str, ...]
    op_inputs: tuple[tuple[int, ...], ...]
    op_outputs: tuple[tuple[int, ...], ...]
    op_may_reuse_input: tuple[bool, ...]
    tensor_bytes: tuple[int, ...]
    tensor_is_output: tuple[bool, ...]


class WorkingSetModel:
    """Precomputed bit masks of a `ScheduleProblem` for one value of ``add_reuses_input``.

    A set of executed ops is an int with bit ``v`` set when op ``v`` has run. Only sets
    closed under predecessors (downsets of the DAG) occur.
    """

    def __init__(self, problem: ScheduleProblem, add_reuses_input: bool):
        self.problem = problem
        self.reuse = add_reuses_input
        num_ops = len(problem.op_names)
        num_tensors = len(problem.tensor_bytes)

        self.producer = producer = [-1] * num_tensors
        for op, outputs in enumerate(problem.op_outputs):
            for tensor in outputs:
                producer[tensor] = op
        self.consumers = [0] * num_tensors
        for op, inputs in enumerate(problem.op_inputs):
            for tensor in inputs:
                self.consumers[tensor] |= 1 << op

        self.predecessors = [0] * num_ops
        self.successors = [[] for _ in range(num_ops)]
        for op, inputs in enumerate(problem.op_inputs):
            for tensor in inputs:
                if producer[tensor] >= 0:
                    self.predecessors[op] |= 1 << producer[tensor]
        for op in range(num_ops):
            for predecessor in bits(self.predecessors[op]):
                self.successors[predecessor].append(op)

        self.needed = [problem.tensor_is_output[t] or self.consumers[t] != 0
                       for t in range(num_tensors)]
        self.output_bytes = [sum(problem.tensor_bytes[t] for t in outputs)
                             for outputs in problem.op_outputs]
        self.needed_output_bytes = [
            sum(problem.tensor_bytes[t] for t in outputs if self.needed[t])
            for outputs in problem.op_outputs
        ]
        self.initial_live_bytes = sum(problem.tensor_bytes[t] for t in range(num_tensors)
                                      if producer[t] < 0 and self.needed[t])
        self.initial_ready = sum(1 << op for op in range(num_ops) if not self.predecessors[op])

        self.ancestors = [0] * num_ops
        for op in range(num_ops):
            for predecessor in bits(self.predecessors[op]):
                self.ancestors[op] |= self.ancestors[predecessor] | (1 << predecessor)
        self.descendants = [0] * num_ops
        for op in reversed(range(num_ops)):
            for successor in self.successors[op]:
                self.descendants[op] |= self.descendants[successor] | (1 << successor)
        self.lower_bounds = self._static_lower_bounds()

    def step(self, executed: int, live_bytes: int, op: int) -> tuple[int, int]:
        """Return (working set while ``op`` runs, live bytes after it) from state ``executed``."""
        problem = self.problem
        bit = 1 << op
        freed = 0
        reusable = 0
        for tensor in problem.op_inputs[op]:
            # An input dies with this op when no other pending op reads it.
            if not problem.tensor_is_output[tensor] and self.consumers[tensor] & ~executed == bit:
                size = problem.tensor_bytes[tensor]
                freed += size
                reusable = max(reusable, size)

        output_bytes = self.output_bytes[op]
        working_set = live_bytes + output_bytes
        if self.reuse and problem.op_may_reuse_input[op] and 0 < output_bytes <= reusable:
            working_set -= output_bytes
        return working_set, live_bytes + self.needed_output_bytes[op] - freed

    def _static_lower_bounds(self) -> list[int]:
        """Return, per op, a working set size that every schedule reaches while it runs.

        A tensor is live in every schedule while op ``v`` runs if it is produced by an
        ancestor of ``v`` (or is a graph input) and is a graph output or read by ``v`` or a
        descendant of ``v``.
        """
        problem = self.problem
        ancestors, descendants = self.ancestors, self.descendants
        producer = self.producer
        bounds = []
        for op in range(len(problem.op_names)):
            bit = 1 << op
            later = descendants[op] | bit
            live = 0
            reusable = 0
            for tensor, size in enumerate(problem.tensor_bytes):
                made_before = producer[tensor] < 0 or ancestors[op] >> producer[tensor] & 1
                if not made_before:
                    continue
                if problem.tensor_is_output[tensor] or self.consumers[tensor] & later:
                    live += size
                # Reuse is possible in some schedule unless a descendant also reads the input.
                if self.consumers[tensor] & bit and not problem.tensor_is_output[tensor] \
                        and not self.consumers[tensor] & descendants[op]:
                    reusable = max(reusable, size)

            output_bytes = self.output_bytes[op]
            if self.reuse and problem.op_may_reuse_input[op] and 0 < output_bytes <= reusable:
                output_bytes = 0
            bounds.append(live + output_bytes)
        return bounds


def bits(mask: int):
    """Yield the indices of the set bits of ``mask``, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low
