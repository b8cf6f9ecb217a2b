"""Exact search for the op order with the minimum peak memory usage.

The search is a dynamic program over downsets (sets of executed ops), evaluated best first
as a minimax shortest path. A downset's label is the peak of the best known schedule prefix
that reaches it. Downsets are expanded in increasing order of ``max(label, lower bound of
the rest)``, so the first complete schedule popped is optimal, and downsets whose bound
exceeds the optimum are never expanded.

Three reductions keep the number of downsets small. Each rests on an exchange argument:
some optimal schedule has the property, so the search may require it.

- Steps: chains of ops are grouped into segments that run without interruption
  (`resource_models._chains`), and each search step runs one segment.
- Forced steps: a ready step that frees at least as many bytes as it keeps, and whose
  working set is at most a lower bound of the remaining peak, can run first. Moving it to
  the front of any schedule lowers or keeps every other working set.
- Swaps: a ready step can run first if, for every pending step that may precede it,
  running it before that step never raises the larger of the two working sets. Repeated
  swaps then bring it to the front of an optimal schedule. For independent branches this
  runs the segment with the largest hill above its exit residency first.

NOTE: the worst case stays exponential in the number of branches that are open at once.
Many long parallel branches from one tensor (say 9 branches of 3 to 6 ops) can take
seconds; ``resource_models/README.md`` lists measurements.
"""
from __future__ import annotations

import heapq
import itertools

from resource_models._chains import Segment, contract_chains
from resource_models._working_set import WorkingSetModel, bits


class PeakMemorySearch:
    """One search over the ops of a `WorkingSetModel`; `run` returns the optimum."""

    def __init__(self, model: WorkingSetModel):
        self.model = model
        self.num_ops = len(model.problem.op_names)
        segments = []
        self.chain_steps: list[list[int]] = []
        for chain_segments in contract_chains(model):
            first = len(segments)
            self.chain_steps.append(list(range(first, first + len(chain_segments))))
            segments.extend(chain_segments)

        self.steps = [segment.ops for segment in segments]
        self.masks = [sum(1 << op for op in ops) for ops in self.steps]
        self.chain_of_op = [0] * self.num_ops
        for chain, steps in enumerate(self.chain_steps):
            for step in steps:
                for op in self.steps[step]:
                    self.chain_of_op[op] = chain
        # Only a step's first op reads tensors from outside the step, and only its last
        # op's output leaves it.
        self.predecessors = [model.predecessors[ops[0]] for ops in self.steps]
        self.successors = [
            sorted({self._step_of(op) for op in model.successors[ops[-1]]}) for ops in self.steps
        ]
        self.descendants = [model.descendants[ops[0]] & ~mask
                            for ops, mask in zip(self.steps, self.masks)]
        self.shared_inputs = [
            tuple(tensor for tensor in model.problem.op_inputs[ops[0]] if self._is_shared(tensor))
            for ops in self.steps
        ]

        self._init_bounds(segments)
        self._swap_cache: dict[tuple, bool] = {}
        self.expanded_count = 0

    def _step_of(self, op: int) -> int:
        for step, mask in enumerate(self.masks):
            if mask >> op & 1:
                return step
        raise ValueError(f"Op {op} belongs to no step.")

    def _is_shared(self, tensor: int) -> bool:
        """Return whether ``tensor`` may or may not die with a given reader."""
        consumers = self.model.consumers[tensor]
        return not self.model.problem.tensor_is_output[tensor] \
            and consumers & (consumers - 1) != 0

    def _init_bounds(self, segments: list[Segment]) -> None:
        """Precompute the tables of `_remaining_bound`."""
        model = self.model
        self.by_lower_bound = sorted(range(self.num_ops), key=lambda op: -model.lower_bounds[op])

        # A step's working set is at least its hill above the live bytes outside its chain.
        # Shared inputs are live while the first op runs and are not part of that hill.
        self.hill_low = [max(segment.hill_low, segment.first_hill_low + segment.shared_entry_bytes)
                         for segment in segments]
        self.by_hill = sorted(range(len(segments)), key=lambda step: -self.hill_low[step])

        # Smallest residency of a chain from a step to the chain's end, in bytes.
        self.suffix_min_exit = [0] * len(segments)
        for steps in self.chain_steps:
            smallest = segments[steps[-1]].exit_bytes
            for step in reversed(steps):
                smallest = min(smallest, segments[step].exit_bytes)
                self.suffix_min_exit[step] = smallest

        # counted_chains[s] has bit c when chain c keeps a tensor live until after step s.
        # That holds when its last output is a graph output or read by a descendant of s.
        # Chains whose last output s reads are left out, because s's hill contains it.
        self.counted_chains = []
        for ops in self.steps:
            mask = 0
            for chain, steps in enumerate(self.chain_steps):
                if chain == self.chain_of_op[ops[0]]:
                    continue
                for tensor in model.problem.op_outputs[self.steps[steps[-1]][-1]]:
                    readers = model.consumers[tensor]
                    if readers >> ops[0] & 1:
                        continue
                    if model.problem.tensor_is_output[tensor] \
                            or readers & model.descendants[ops[0]]:
                        mask |= 1 << chain
            self.counted_chains.append(mask)

        # Chains with an ancestor of a step have started before the step runs.
        self.ancestor_chains = []
        for ops in self.steps:
            mask = 0
            for op in bits(model.ancestors[ops[0]]):
                mask |= 1 << self.chain_of_op[op]
            self.ancestor_chains.append(mask)

    # --- search --------------------------------------------------------------------------

    def run(self) -> tuple[int, list[int]]:
        """Return the minimum peak in bytes and an op order (indices) that reaches it."""
        everything = (1 << self.num_ops) - 1
        tie_breaker = itertools.count()
        best_peak = {0: 0}
        parent: dict[int, tuple[int, int]] = {}
        expanded = set()
        initial_ready = sum(1 << step for step in range(len(self.steps))
                            if not self.predecessors[step])
        # Entries: (key, -ops run, tie breaker, peak so far, executed, live bytes, ready
        # steps). Among equal keys, deeper downsets come first so that ties end quickly.
        heap = [(self._remaining_bound(0), 0, next(tie_breaker), 0, 0,
                 self.model.initial_live_bytes, initial_ready)]

        while heap:
            _, depth, _, peak, executed, live_bytes, ready = heapq.heappop(heap)
            if executed in expanded or peak > best_peak[executed]:
                continue
            expanded.add(executed)
            if executed == everything:
                break

            for step, working_set, live_after in self._successors(executed, live_bytes, ready,
                                                                  peak):
                after = executed | self.masks[step]
                new_peak = max(peak, working_set)
                if after in expanded or new_peak >= best_peak.get(after, new_peak + 1):
                    continue
                best_peak[after] = new_peak
                parent[after] = (executed, step)

                new_ready = ready & ~(1 << step)
                for successor in self.successors[step]:
                    if not self.predecessors[successor] & ~after:
                        new_ready |= 1 << successor
                key = max(new_peak, self._remaining_bound(after))
                heapq.heappush(heap, (key, depth - len(self.steps[step]), next(tie_breaker),
                                      new_peak, after, live_after, new_ready))

        self.expanded_count = len(expanded)
        order = []
        executed = everything
        while executed:
            executed, step = parent[executed]
            order.extend(reversed(self.steps[step]))
        order.reverse()
        return best_peak[everything], order

    def _successors(self, executed: int, live_bytes: int, ready: int, peak: int) -> list:
        """Return (step, working set, live bytes after) for the steps worth trying next."""
        candidates = []
        for step in bits(ready):
            working_set, live_after = self._run_ops(self.steps[step], executed, live_bytes)
            candidates.append((step, working_set, live_after))
        if len(candidates) == 1:
            return candidates

        bound = max(peak, self._remaining_bound(executed),
                    min(candidate[1] for candidate in candidates))
        for candidate in candidates:
            if candidate[2] <= live_bytes and candidate[1] <= bound:
                return [candidate]

        for candidate in candidates:
            if self._may_run_first(executed, candidate[0]):
                return [candidate]
        return candidates

    def _run_ops(self, ops, executed: int, live_bytes: int) -> tuple[int, int]:
        """Return (largest working set, live bytes after) of running ``ops`` in order."""
        peak = 0
        for op in ops:
            working_set, live_bytes = self.model.step(executed, live_bytes, op)
            peak = max(peak, working_set)
            executed |= 1 << op
        return peak, live_bytes

    # --- lower bounds --------------------------------------------------------------------

    def _remaining_bound(self, executed: int) -> int:
        """Return a lower bound of the peak of any completion of ``executed``."""
        static = 0
        for op in self.by_lower_bound:
            if not executed >> op & 1:
                static = self.model.lower_bounds[op]
                break
        return max(static, self._chain_bound(executed))

    def _chain_bound(self, executed: int) -> int:
        """Return a lower bound from the chains that stay live while each step runs.

        While a pending step s runs, each chain counted for s keeps at least its smallest
        residency from now to its end live, in addition to the hill of s. A chain that has not
        started counts only if it holds an ancestor of s, because it must start before s.
        """
        holding = [0] * len(self.chain_steps)
        started = 0
        for chain, steps in enumerate(self.chain_steps):
            done = 0
            for step in steps:
                if not self.masks[step] & executed:
                    break
                done += 1
            if done == 0:
                holding[chain] = self.suffix_min_exit[steps[0]]
                continue
            started |= 1 << chain
            holding[chain] = self.suffix_min_exit[steps[-1]] if done == len(steps) \
                else min(self.suffix_min_exit[steps[done - 1]], self.suffix_min_exit[steps[done]])

        # Steps in decreasing order of hill: stop once no later step can raise the bound.
        total_holding = sum(holding)
        bound = 0
        for step in self.by_hill:
            hill = self.hill_low[step]
            if hill + total_holding <= bound:
                break
            if self.masks[step] & executed:
                continue
            counted = self.counted_chains[step] & (started | self.ancestor_chains[step])
            total = hill
            for chain, held in enumerate(holding):
                if counted >> chain & 1:
                    total += held
            bound = max(bound, total)
        return bound

    # --- swaps ---------------------------------------------------------------------------

    def _may_run_first(self, executed: int, first: int) -> bool:
        """Return whether step ``first`` can be swapped before every step that may precede it."""
        for other in range(len(self.steps)):
            if other == first or self.masks[other] & (executed | self.descendants[first]):
                continue
            if not self._swap_is_safe(executed, first, other):
                return False
        return True

    def _swap_is_safe(self, executed: int, first: int, other: int) -> bool:
        """Return whether running ``first`` before ``other`` never raises the peak of the two.

        A shared input dies inside the pair only if all its other pending readers ran
        before, so each possible case is checked. Working sets grow linearly with the live
        bytes outside the pair, so 0 stands in for them.
        """
        pair = self.masks[first] | self.masks[other]
        pair_descendants = self.descendants[first] | self.descendants[other]
        worlds = []
        signature = []
        for tensor in sorted(set(self.shared_inputs[first] + self.shared_inputs[other])):
            readers = self.model.consumers[tensor] & ~executed & ~pair
            choices = []
            if not readers & pair_descendants:
                choices.append(readers)  # all other readers ran: it dies in the pair
            if readers:
                choices.append(0)  # another reader is still pending
            worlds.append(choices)
            # The outcome depends only on which cases exist, not on which readers pend.
            signature.append((choices[0] == readers, choices[-1] == 0 and readers != 0))

        key = (first, other, tuple(signature))
        cached = self._swap_cache.get(key)
        if cached is not None:
            return cached

        safe = True
        for world in itertools.product(*worlds):
            state = executed
            for readers in world:
                state |= readers
            other_peak, live = self._run_ops(self.steps[other], state, 0)
            first_after, _ = self._run_ops(self.steps[first], state | self.masks[other], live)
            first_peak, live = self._run_ops(self.steps[first], state, 0)
            other_after, _ = self._run_ops(self.steps[other], state | self.masks[first], live)
            if max(first_peak, other_after) > max(other_peak, first_after):
                safe = False
                break
        self._swap_cache[key] = safe
        return safe
