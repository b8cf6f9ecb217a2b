"""Measurement of TFLite Micro's tensor arena and inference with the TFLM interpreter.

The TFLM Python interpreter allocates the arena when it is constructed and raises
RuntimeError if the arena is too small. It has no getter for the bytes used, but
``print_allocations()`` writes the RecordingMicroAllocator's totals to the C-level stderr,
so this module redirects file descriptor 2 into a temporary file and parses those lines.
"""
from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import logging
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional, TypeVar

import numpy as np

logger = logging.getLogger(__name__)

Result = TypeVar("Result")

#: First arena size tried when none is given; doubled until the model fits.
INITIAL_ARENA_BYTES = 1 << 20

#: Largest arena tried before giving up.
MAX_ARENA_BYTES = 1 << 30

_TOTAL_PATTERN = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
_RECORD_PATTERN = re.compile(
    r"'([^']+)' used (\d+) bytes with alignment overhead \(requested (\d+) bytes for (\d+) ")


@dataclass(frozen=True)
class RecordedAllocation:
    """One kind of persistent allocation as TFLM's RecordingMicroAllocator reports it.

    Attributes:
        used_bytes: bytes taken from the arena, alignment padding included.
        requested_bytes: bytes the runtime asked for.
        count: number of allocations of this kind.
    """

    used_bytes: int
    requested_bytes: int
    count: int


@dataclass(frozen=True)
class ArenaUsage:
    """TFLM's arena usage for one model.

    Attributes:
        total_bytes: the arena bytes TFLM reports as used (``head_bytes + tail_bytes``).
        head_bytes: the non-persistent section at the start of the arena: the activation
            tensors as TFLM's memory planner laid them out, plus kernel scratch buffers.
        tail_bytes: the persistent section at the end of the arena: TFLM's bookkeeping
            (tensor and node structs, per-operator data such as per-channel multipliers).
        records: itemised persistent allocations by TFLM's category name.
        minimal_arena_bytes: the smallest ``arena_size`` for which the interpreter was
            constructed, found by bisection; None when not measured.
    """

    total_bytes: int
    head_bytes: int
    tail_bytes: int
    records: dict[str, RecordedAllocation] = field(default_factory=dict)
    minimal_arena_bytes: Optional[int] = None

    @property
    def itemised_tail_bytes(self) -> int:
        """Bytes of the tail that the itemised records account for."""
        return sum(record.used_bytes for record in self.records.values())


@contextlib.contextmanager
def _captured_fd_stderr() -> Iterator[Callable[[], str]]:
    """Redirect file descriptor 2 into a temporary file; yield a function returning its text."""
    libc = ctypes.CDLL(None)
    sys.stderr.flush()
    saved = os.dup(2)
    captured = {"text": ""}
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lambda: captured["text"]
        finally:
            # C stdio may buffer stderr when it is not a terminal; flush it into the file
            # before the descriptor is switched back.
            libc.fflush(None)
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured["text"] = sink.read().decode(errors="replace")


def _run_capturing_stderr(function: Callable[[], Result]) -> tuple[Result, str]:
    """Call ``function`` with C-level stderr captured; return its result and the text."""
    with _captured_fd_stderr() as read_text:
        result = function()
    return result, read_text()


def try_interpreter(tflite_bytes: bytes, arena_size: int):
    """Construct a TFLM interpreter, or return None if ``arena_size`` is too small."""
    from tflite_micro import runtime

    def construct():
        try:
            return runtime.Interpreter.from_bytes(tflite_bytes, arena_size=arena_size)
        except RuntimeError:
            return None

    interpreter, messages = _run_capturing_stderr(construct)
    if interpreter is None:
        logger.debug("TFLM rejected arena_size=%d: %s", arena_size, messages.strip())
    return interpreter


def make_interpreter(tflite_bytes: bytes, arena_size: Optional[int] = None):
    """Construct a TFLM interpreter for ``tflite_bytes``.

    With ``arena_size=None`` the arena starts at `INITIAL_ARENA_BYTES` and is doubled until
    the model fits. Raises RuntimeError if the model does not fit in ``arena_size`` bytes
    (or in `MAX_ARENA_BYTES`), or if TFLM cannot load it (for example an unsupported operator).
    """
    tflite_bytes = bytes(tflite_bytes)
    sizes = [arena_size] if arena_size is not None else []
    if arena_size is None:
        size = INITIAL_ARENA_BYTES
        while size <= MAX_ARENA_BYTES:
            sizes.append(size)
            size *= 2

    for size in sizes:
        interpreter = try_interpreter(tflite_bytes, size)
        if interpreter is not None:
            return interpreter
    raise RuntimeError(
        f"TFLM could not construct an interpreter with an arena of {sizes[-1]} bytes; the arena "
        "is too small or the model uses an operator TFLM lacks (see the DEBUG log for TFLM's "
        "message).")


def parse_allocations(text: str) -> ArenaUsage:
    """Parse the output of ``print_allocations()`` into an `ArenaUsage`."""
    totals = {kind: int(value) for kind, value in _TOTAL_PATTERN.findall(text)}
    missing = {"total", "head", "tail"} - set(totals)
    if missing:
        raise ValueError(
            f"TFLM's allocation report lacks the arena {sorted(missing)} lines; "
            f"got:\n{text.strip()}")

    records = {
        name: RecordedAllocation(int(used), int(requested), int(count))
        for name, used, requested, count in _RECORD_PATTERN.findall(text)
    }
    return ArenaUsage(total_bytes=totals["total"], head_bytes=totals["head"],
                      tail_bytes=totals["tail"], records=records)


def read_arena_usage(interpreter) -> ArenaUsage:
    """Return the arena usage that ``interpreter`` reports after allocation."""
    _, text = _run_capturing_stderr(interpreter.print_allocations)
    return parse_allocations(text)


def find_minimal_arena(tflite_bytes: bytes, fits: int, fails: int = 0) -> int:
    """Bisect for the smallest arena size that TFLM accepts for ``tflite_bytes``.

    Args:
        fits: an arena size known to be accepted.
        fails: an arena size known to be rejected (0 is always rejected).

    Returns:
        The smallest accepted size, to the byte.
    """
    tflite_bytes = bytes(tflite_bytes)
    while fits - fails > 1:
        middle = (fits + fails) // 2
        if try_interpreter(tflite_bytes, middle) is not None:
            fits = middle
        else:
            fails = middle
    return fits


def measure_arena_in_process(tflite_bytes: bytes, bisect: bool = True) -> ArenaUsage:
    """Measure TFLM's arena for ``tflite_bytes`` in this process; see `measure_arena`.

    NOTE: TFLM aborts the whole process on some models and on some arena sizes that are
    too small (see `measure_arena`), so call this only where losing the process is fine.
    """
    tflite_bytes = bytes(tflite_bytes)
    interpreter = make_interpreter(tflite_bytes)
    _invoke_on_zeros(interpreter)
    usage = read_arena_usage(interpreter)
    if not bisect:
        return usage

    # The recorded total is normally accepted; grow the bound if it is not.
    fits = usage.total_bytes
    while try_interpreter(tflite_bytes, fits) is None:
        fits *= 2
    minimal = find_minimal_arena(tflite_bytes, fits)
    return dataclasses.replace(usage, minimal_arena_bytes=minimal)


def measure_arena(tflite_bytes: bytes, bisect: bool = True) -> ArenaUsage:
    """Measure TFLM's arena for ``tflite_bytes`` after one inference on a zero input.

    TFLM runs in a child process (`deployment.tflm_worker`), because it aborts the process
    on some models and on some too-small arenas instead of raising.

    Args:
        tflite_bytes: a TFLite flatbuffer that TFLM can run.
        bisect: also find the smallest accepted ``arena_size``, to the byte (about 16
            interpreter constructions, milliseconds each for small models).

    Raises:
        deployment.tflm_worker.TflmAbortError: TFLM aborted while allocating the model.
        RuntimeError: TFLM rejected the model (an unsupported operator, for example).
    """
    from deployment.tflm_worker import measure_arena_isolated

    return measure_arena_isolated(tflite_bytes, bisect=bisect)


def _invoke_on_zeros(interpreter) -> None:
    details = interpreter.get_input_details(0)
    interpreter.set_input(np.zeros(details["shape"], details["dtype"]), 0)
    interpreter.invoke()


def run_tflm(tflite_bytes: bytes, x: np.ndarray, arena_size: Optional[int] = None) -> np.ndarray:
    """Run TFLM on each already-quantised example of ``x``; return the raw outputs.

    ``x`` has shape ``(N, *input_shape[1:])`` in the input tensor's integer type (see
    `deployment.litert.quantize_for_model`). Returns shape ``(N, *output_shape[1:])``.
    """
    interpreter = make_interpreter(tflite_bytes, arena_size)
    details = interpreter.get_input_details(0)
    expected_shape = tuple(int(size) for size in details["shape"][1:])
    x = np.asarray(x)
    if tuple(x.shape[1:]) != expected_shape or x.dtype != details["dtype"]:
        raise ValueError(
            f"Expected quantised examples of shape (N, {', '.join(map(str, expected_shape))}) "
            f"and type {np.dtype(details['dtype']).name}, got {x.shape} of type {x.dtype}; "
            "quantise them with deployment.litert.quantize_for_model.")

    outputs = []
    for example in x:
        interpreter.set_input(example[np.newaxis], 0)
        interpreter.invoke()
        outputs.append(np.array(interpreter.get_output(0))[0])
    return np.stack(outputs)
