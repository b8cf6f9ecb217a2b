"""Export of a Keras model for TFLite Micro: int8 conversion, operator order, memory plan."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import numpy as np

from deployment import memory_plan
from deployment.conversion import convert_to_tflite
from deployment.reorder import reorder_to_optimal

if TYPE_CHECKING:
    import keras

    from resource_models import Graph

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportResult:
    """An exported model and the memory figures of the steps that produced it.

    Attributes:
        tflite_bytes: the final flatbuffer.
        converted_bytes: the converter's output, before reordering and planning.
        operator_order: the new order, as indices into the converter's operators.
        file_order_peak_bytes: peak memory usage of the converter's order (sum of live
            tensors, unaligned), on the graph read from the file.
        peak_bytes: the same for the final order.
        greedy_plan_bytes: activation bytes that TFLM's own planner needs for the final
            order (16-byte aligned buffers).
        planned_bytes: activation bytes of the plan stored in the model, or
            ``greedy_plan_bytes`` when none is stored.
        lower_bound_bytes: the aligned sum of live tensors, which no plan undercuts.
        has_offline_plan: whether the model carries an "OfflineMemoryAllocation" plan.
    """

    tflite_bytes: bytes
    converted_bytes: bytes
    operator_order: list[int]
    file_order_peak_bytes: int
    peak_bytes: int
    greedy_plan_bytes: int
    planned_bytes: int
    lower_bound_bytes: int
    has_offline_plan: bool


def optimise_for_tflm(tflite_bytes: bytes, graph: Optional["Graph"] = None,
                      offline_plan: bool = True) -> ExportResult:
    """Reorder the operators for minimum peak memory usage and add a memory plan if it helps.

    Args:
        tflite_bytes: a converted model.
        graph: the resource graph of the same network, whose optimal order is carried over
            (see `deployment.reorder.reorder_to_optimal`); None computes the order on the
            graph read from the file.
        offline_plan: store a memory plan in the model when it needs fewer bytes than TFLM's
            greedy planner would use.
    """
    reordered = reorder_to_optimal(tflite_bytes, graph)
    buffers = memory_plan.activation_buffers(reordered.tflite_bytes)
    greedy = memory_plan.greedy_plan(buffers)
    bound = memory_plan.lower_bound(buffers)

    final_bytes = reordered.tflite_bytes
    planned = greedy.arena_bytes
    has_plan = False
    if offline_plan and greedy.arena_bytes > bound:
        best = memory_plan.best_plan(buffers)
        if best.arena_bytes < greedy.arena_bytes:
            final_bytes = memory_plan.add_offline_plan(reordered.tflite_bytes, best)
            planned = best.arena_bytes
            has_plan = True
            logger.info("Stored an offline memory plan of %d bytes; TFLM's planner needs %d.",
                        best.arena_bytes, greedy.arena_bytes)

    return ExportResult(final_bytes, bytes(tflite_bytes), reordered.order,
                        reordered.file_order_peak_bytes, reordered.peak_bytes,
                        greedy.arena_bytes, planned, bound, has_plan)


def export_for_tflm(model: "keras.Model", representative_data: np.ndarray,
                    graph: Optional["Graph"] = None, io_type: str = "int8",
                    offline_plan: bool = True) -> ExportResult:
    """Convert ``model`` to int8 TFLite and optimise it with `optimise_for_tflm`."""
    converted = convert_to_tflite(model, representative_data, io_type=io_type)
    return optimise_for_tflm(converted, graph, offline_plan)
