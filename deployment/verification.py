"""Comparison of TFLite Micro's outputs with LiteRT's on the same quantised inputs."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

import numpy as np

from deployment.litert import quantize_for_model, run_litert
from deployment.tflm import run_tflm

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutputComparison:
    """How far TFLM's raw integer outputs are from LiteRT's.

    Attributes:
        examples: inputs compared.
        identical_fraction: fraction of examples whose whole output vector is identical.
        max_abs_difference: largest difference of one output value, in quantisation steps.
        argmax_agreement: fraction of examples with the same predicted class.
    """

    examples: int
    identical_fraction: float
    max_abs_difference: int
    argmax_agreement: float


def compare_tflm_with_litert(tflite_bytes: bytes, x: np.ndarray,
                             reference_kernels: bool = True,
                             arena_size: Optional[int] = None) -> OutputComparison:
    """Run float examples ``x`` through TFLM and LiteRT and compare the raw outputs.

    With ``reference_kernels`` LiteRT uses its reference kernels, which compute the same
    integer arithmetic as TFLM's; the optimised kernels may round some values differently.
    Run `deployment.tflm.measure_arena` first on models of unknown origin: TFLM aborts the
    process on some models (see `deployment.tflm_worker`).
    """
    quantized = quantize_for_model(tflite_bytes, x)
    expected = run_litert(tflite_bytes, quantized, reference_kernels=reference_kernels,
                          quantized_input=True)
    actual = run_tflm(tflite_bytes, quantized, arena_size=arena_size)

    expected = expected.reshape(len(expected), -1).astype(np.int64)
    actual = actual.reshape(len(actual), -1).astype(np.int64)
    difference = np.abs(actual - expected)
    return OutputComparison(
        examples=len(expected),
        identical_fraction=float(np.mean(np.all(difference == 0, axis=1))),
        max_abs_difference=int(difference.max(initial=0)),
        argmax_agreement=float(np.mean(actual.argmax(axis=1) == expected.argmax(axis=1))),
    )
