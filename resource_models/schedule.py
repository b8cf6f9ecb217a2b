"""Peak memory usage of an op schedule, and the schedule that minimises it.

Memory model (TensorFlow Lite Micro by default): while an op runs, its working set is
every activation tensor that is already produced and still needed, plus the outputs of the
running op. Graph inputs count as produced before the first op. A tensor is still needed
while an op that consumes it has not run yet (the running op included) or when it is a
graph output. The peak memory usage of a schedule is the largest working set.

With ``add_reuses_input=True``, an op that allows it (`Op.may_reuse_input_buffer`, which
Add sets) writes its output into the buffer of an input that no other pending op consumes
and that is not a graph output, so its output adds no bytes. The original μNAS code
(``resource_models/models.py`` of eliberis/uNAS) assumes this for Add. The option is off by
default because TensorFlow Lite Micro's greedy memory planner gives each tensor its own
buffer from the op that writes it to the last op that reads it.

NOTE: this is the sum of live tensor sizes. TFLite Micro's arena planner may need more,
because it places buffers at fixed offsets (fragmentation) and runs the ops in the order of
the ``.tflite`` file rather than in the optimal order.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

from resource_models._search import PeakMemorySearch
from resource_models._working_set import ScheduleProblem, WorkingSetModel, bits

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScheduleResult:
    """The peak memory usage of one schedule.

    ``order`` lists op names in execution order and ``working_set_bytes[i]`` is the
    working set while ``order[i]`` runs. ``peak_bytes`` is their maximum (0 for a graph
    without ops).
    """

    peak_bytes: int
    order: list[str]
    working_set_bytes: list[int]


def schedule_memory(problem: ScheduleProblem, order: Sequence[str],
                    add_reuses_input: bool = False) -> ScheduleResult:
    """Return the working sets of running the ops in ``order`` (op names).

    Raises ValueError unless ``order`` names every op once, each after the ops it reads from.
    """
    index = {name: op for op, name in enumerate(problem.op_names)}
    model = WorkingSetModel(problem, add_reuses_input)
    order = list(order)

    unknown = [name for name in order if name not in index]
    if unknown:
        raise ValueError(f"Order names unknown ops {unknown}; the graph's ops are "
                         f"{list(problem.op_names)}.")
    missing = [name for name in problem.op_names if name not in order]
    if missing or len(order) != len(problem.op_names):
        raise ValueError(f"Order must name each of the {len(problem.op_names)} ops exactly "
                         f"once; missing {missing}, got {order}.")

    executed = 0
    live_bytes = model.initial_live_bytes
    working_sets = []
    for name in order:
        op = index[name]
        early = model.predecessors[op] & ~executed
        if early:
            before = [problem.op_names[other] for other in bits(early)]
            raise ValueError(f"Order runs op {name!r} before {before}, whose outputs it "
                             "reads; give a topological order.")
        working_set, live_bytes = model.step(executed, live_bytes, op)
        working_sets.append(working_set)
        executed |= 1 << op

    return ScheduleResult(peak_bytes=max(working_sets, default=0), order=order,
                          working_set_bytes=working_sets)


def minimum_peak_memory(problem: ScheduleProblem,
                        add_reuses_input: bool = False) -> ScheduleResult:
    """Return a schedule with the minimum peak memory usage over all topological orders.

    The result is exact, not a heuristic; `resource_models._search` describes the method.
    """
    if not problem.op_names:
        return ScheduleResult(peak_bytes=0, order=[], working_set_bytes=[])

    search = PeakMemorySearch(WorkingSetModel(problem, add_reuses_input))
    peak_bytes, order = search.run()
    result = schedule_memory(problem, [problem.op_names[op] for op in order], add_reuses_input)

    # Internal invariant: replaying the order gives the peak that the search computed.
    assert result.peak_bytes == peak_bytes, (result.peak_bytes, peak_bytes)
    logger.debug("Minimum peak %d bytes over %d ops (%d steps) after expanding %d downsets.",
                 peak_bytes, len(order), len(search.steps), search.expanded_count)
    return result
