"""A child process that runs TFLite Micro for `deployment.tflm.measure_arena`.

TFLM calls abort() instead of returning an error in some cases, which ends the whole
Python process:

- a SOFTMAX whose input scale is below 2**-26 (``QuantizeMultiplierGreaterThanOne``). The
  converter produces such scales when an activation is constant on the calibration data,
  for example behind a ReLU that is never positive.
- The first allocation after one that failed for lack of temporary arena memory
  ("All temp buffers must be freed before calling ResetTempAllocations").

The worker loads one model and replies to JSON requests, one per line on stdin:
``{"measure": true}`` returns the `ArenaUsage` fields and ``{"probe": N}`` returns whether an
arena of N bytes is accepted. The parent treats a worker that exits during a probe as a
rejected size and starts a new one.

Run as ``python -m deployment.tflm_worker MODEL.tflite``.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

logger = logging.getLogger(__name__)

_REPOSITORY_ROOT = Path(__file__).resolve().parents[1]

#: Characters of the worker's stderr quoted in errors.
_STDERR_TAIL_CHARS = 2000


class TflmAbortError(RuntimeError):
    """TFLite Micro ended its process while loading or allocating a model."""


class WorkerClient:
    """Starts the worker for one model and restarts it after it exits.

    The model is written to a temporary file, which `close` removes.
    """

    def __init__(self, tflite_bytes: bytes):
        self.directory = tempfile.TemporaryDirectory(prefix="unas_tflm_")
        self.model_path = Path(self.directory.name) / "model.tflite"
        self.model_path.write_bytes(bytes(tflite_bytes))
        self.process: Optional[subprocess.Popen] = None
        self.stderr = tempfile.TemporaryFile(mode="w+b")

    def _start(self) -> None:
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(_REPOSITORY_ROOT)] + [path for path in [environment.get("PYTHONPATH")] if path])
        self.process = subprocess.Popen(
            [sys.executable, "-m", "deployment.tflm_worker", str(self.model_path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True,
            env=environment)

    def request(self, message: dict) -> Optional[dict]:
        """Send one request; return the reply, or None if the worker exited meanwhile."""
        if self.process is None or self.process.poll() is not None:
            self._start()
        try:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        except BrokenPipeError:
            line = ""
        if line:
            return json.loads(line)

        self.process.wait()
        logger.debug("TFLM worker exited with code %s on request %s.",
                     self.process.returncode, message)
        return None

    def probe(self, arena_size: int) -> bool:
        """Return whether TFLM accepts an arena of ``arena_size`` bytes for the model."""
        reply = self.request({"probe": arena_size})
        return reply is not None and reply.get("ok", False)

    def exit_description(self) -> str:
        """Describe how the last worker ended, with the end of its stderr."""
        self.stderr.seek(0)
        tail = self.stderr.read().decode(errors="replace")[-_STDERR_TAIL_CHARS:].strip()
        code = None if self.process is None else self.process.returncode
        return f"exit code {code}; stderr ends with:\n{tail}" if tail else f"exit code {code}"

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait()
        self.stderr.close()
        self.directory.cleanup()


def measure_arena_isolated(tflite_bytes: bytes, bisect: bool = True):
    """Measure the arena like `tflm.measure_arena_in_process`, with TFLM in a child process.

    Raises `TflmAbortError` if TFLM aborts while allocating the model with a generous arena.
    """
    from deployment.tflm import ArenaUsage, RecordedAllocation

    client = WorkerClient(tflite_bytes)
    try:
        reply = client.request({"measure": True})
        if reply is None:
            raise TflmAbortError(
                "TFLite Micro aborted while allocating the model "
                f"({client.exit_description()}). A known cause is a SOFTMAX input scale "
                "below 2**-26, which calibration produces for a constant activation; "
                "train the model or calibrate it with more varied data.")
        if "error" in reply:
            raise RuntimeError(reply["error"])

        fields = dict(reply["usage"])
        fields["records"] = {name: RecordedAllocation(**record)
                             for name, record in fields["records"].items()}
        usage = ArenaUsage(**fields)
        if not bisect:
            return usage

        fits = usage.total_bytes
        while not client.probe(fits):
            fits *= 2
        fails = 0
        while fits - fails > 1:
            middle = (fits + fails) // 2
            if client.probe(middle):
                fits = middle
            else:
                fails = middle
        return dataclasses.replace(usage, minimal_arena_bytes=fits)
    finally:
        client.close()


def _serve(model_path: str) -> None:
    from deployment import tflm

    tflite_bytes = Path(model_path).read_bytes()
    for line in sys.stdin:
        request = json.loads(line)
        if "probe" in request:
            reply = {"ok": tflm.try_interpreter(tflite_bytes, int(request["probe"])) is not None}
        else:
            try:
                usage = tflm.measure_arena_in_process(tflite_bytes, bisect=False)
                reply = {"usage": dataclasses.asdict(usage)}
            except (RuntimeError, ValueError) as error:
                reply = {"error": str(error)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    _serve(sys.argv[1])
