"""Public entry points for turning candidates into TFLite Micro models and measuring them.

The implementations live in the `deployment` package; this module gathers the calls that
scripts and the search use:

- `convert_to_tflite`: a Keras model to a fully int8-quantised TFLite flatbuffer.
- `evaluate_tflite_accuracy`: top-1 accuracy of the quantised model with LiteRT.
- `reorder_to_optimal`: operators rewritten into an order of minimum peak memory usage.
- `export_for_tflm` / `optimise_for_tflm`: conversion, reordering and an offline memory
  plan where TFLM's greedy planner would need more bytes.
- `measure_tflm_arena`: TFLM's tensor arena (activations and bookkeeping), measured with
  the TFLM interpreter in a child process.
- `compare_tflm_with_litert`: TFLM's outputs against LiteRT's on the same inputs.
- `write_firmware`: a C source and header holding the model and its arena size.
"""
from __future__ import annotations

from deployment.conversion import convert_to_tflite
from deployment.export import ExportResult, export_for_tflm, optimise_for_tflm
from deployment.firmware import FirmwareFiles, write_firmware
from deployment.litert import evaluate_tflite_accuracy
from deployment.reorder import ReorderResult, reorder_to_optimal
from deployment.tflm import ArenaUsage
from deployment.tflm import measure_arena as measure_tflm_arena
from deployment.verification import OutputComparison, compare_tflm_with_litert

__all__ = [
    "ArenaUsage", "ExportResult", "FirmwareFiles", "OutputComparison", "ReorderResult",
    "compare_tflm_with_litert", "convert_to_tflite", "evaluate_tflite_accuracy",
    "export_for_tflm", "measure_tflm_arena", "optimise_for_tflm", "reorder_to_optimal",
    "write_firmware",
]
