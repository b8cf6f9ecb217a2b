"""Faults during a real search: kill -9, failing candidates, dead workers, Ctrl-C.

The searches run `driver.py` in a subprocess with real Ray workers, real Keras training on
scikit-learn's 8x8 digits and a config whose callback injects faults. A JSON plan file names
the action of each training attempt in order, and a log file counts the attempts across
processes. So a test decides which candidate raises, diverges, kills its worker or waits for
the test to release it.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from execution.search_loop import POLL_SECONDS

REPOSITORY = Path(__file__).resolve().parents[1]

FAULT_CONFIG = """
import fcntl
import json
import os
import signal
import time
from pathlib import Path

import keras
from cnn import CnnSearchSpace
from config import AgingEvoConfig, BoundConfig, TrainingConfig
from dataset import Digits

PLAN = Path({plan!r})
ATTEMPTS = Path({attempts!r})
RELEASED = Path({released!r})


def planned_action(attempt):
    plan = json.loads(PLAN.read_text())
    return plan["actions"][attempt] if attempt < len(plan["actions"]) else plan["default"]


def optimizer():
    # Peeks at the attempt about to start. An infinite learning rate turns the weights into
    # inf and NaN at the first step, so the next batch's loss is NaN. A finite 1e12 is not
    # enough: it can kill every ReLU and leave a finite loss.
    attempt = len(ATTEMPTS.read_text().splitlines()) if ATTEMPTS.exists() else 0
    if planned_action(attempt) == "nan":
        return keras.optimizers.SGD(float("inf"))
    return keras.optimizers.Adam(0.01)


class FaultInjection(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        with open(ATTEMPTS, "a+") as log:
            fcntl.flock(log, fcntl.LOCK_EX)
            log.seek(0)
            self.attempt = len(log.read().splitlines())
            self.action = planned_action(self.attempt)
            log.write(f"{{self.attempt}} {{os.getpid()}} {{self.action}}\\n")
        if self.action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)

    def on_epoch_begin(self, epoch, logs=None):
        if self.action == "raise":
            raise RuntimeError(f"injected failure in epoch {{epoch + 1}}")
        # "hold" waits until the test creates RELEASED/<attempt>.
        while self.action == "hold" and not (RELEASED / str(self.attempt)).exists():
            time.sleep(0.1)


training_config = TrainingConfig(dataset=Digits(), optimizer=optimizer, batch_size=64,
                                 epochs=2, callbacks=lambda: [FaultInjection()])
search_config = AgingEvoConfig(search_space=CnnSearchSpace(), population_size=3,
                               sample_size=2, rounds=4)
bound_config = BoundConfig(error_bound=0.5, peak_mem_bound=20000, model_size_bound=50000,
                           mac_bound=5000000)
"""

#: Maximum wait for one driver run, in seconds. On 2 busy cores a run of a few candidates
#: took 30 to 120 s, mostly Ray's and TensorFlow's start-up.
DRIVER_TIMEOUT = 300


class FaultySearch:
    """A run folder, its fault plan and the driver processes started on it."""

    def __init__(self, root: Path):
        self.root = root
        self.plan_path = root / "plan.json"
        self.attempts_path = root / "attempts.log"
        self.released_dir = root / "released"
        self.config_path = root / "faulty_digits.py"
        self.run_dir = root / "out" / "run"
        self.released_dir.mkdir()
        self.config_path.write_text(textwrap.dedent(FAULT_CONFIG.format(
            plan=str(self.plan_path), attempts=str(self.attempts_path),
            released=str(self.released_dir))))
        self.plan(default="ok")
        self.starts = 0

    def plan(self, actions=(), default="ok") -> None:
        """Set the actions of the next training attempts (counted from the first ever)."""
        self.plan_path.write_text(json.dumps({"actions": list(actions), "default": default}))

    def release(self, attempt: int) -> None:
        """Let a training attempt with the action "hold" go on."""
        (self.released_dir / str(attempt)).touch()

    def attempts(self) -> list[tuple[int, int, str]]:
        """Return (attempt, worker pid, action) for every training attempt so far."""
        if not self.attempts_path.exists():
            return []
        rows = [line.split(" ", 2) for line in self.attempts_path.read_text().splitlines()]
        return [(int(attempt), int(pid), action) for attempt, pid, action in rows]

    def start(self, *options: str) -> subprocess.Popen:
        """Start the driver in its own session, as a terminal would start a job."""
        self.starts += 1
        self.stdout_path = self.root / f"driver{self.starts}.out"
        self.stderr_path = self.root / f"driver{self.starts}.err"
        command = [sys.executable, str(REPOSITORY / "driver.py"), str(self.config_path),
                   "--name", "run", "--output-dir", str(self.root / "out"), *options]
        return subprocess.Popen(command, cwd=REPOSITORY, stdout=open(self.stdout_path, "w"),
                                stderr=open(self.stderr_path, "w"), start_new_session=True)

    def run(self, *options: str) -> subprocess.CompletedProcess:
        process = self.start(*options)
        try:
            process.wait(timeout=DRIVER_TIMEOUT)
        finally:
            kill_session(process)
        return subprocess.CompletedProcess(process.args, process.returncode,
                                           self.stdout_path.read_text(),
                                           self.stderr_path.read_text())

    def records(self) -> list[dict]:
        journal = self.run_dir / "journal.jsonl"
        if not journal.exists():
            return []
        # The last line may be in the middle of being written: read complete lines only.
        lines = journal.read_text().split("\n")[:-1]
        return [json.loads(line) for line in lines if line.strip()]

    def in_flight(self) -> list[dict]:
        path = self.run_dir / "in_flight.json"
        return json.loads(path.read_text()) if path.exists() else []

    def log(self) -> str:
        return self.stderr_path.read_text()


def wait_until(condition, process: subprocess.Popen, what: str, timeout=DRIVER_TIMEOUT):
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the driver exited with {process.returncode} before {what}")
        if time.monotonic() > deadline:
            kill_session(process)
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def session_processes(session_id: int) -> list[int]:
    """Return the ids of live processes in the session ``session_id`` (Linux /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name, which is in brackets: state, ppid, pgrp, session.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == session_id and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def kill_session(process: subprocess.Popen) -> None:
    """SIGKILL the driver and every process it started, Ray's workers included.

    Ray's workers run in process groups of their own but stay in the driver's session.
    """
    for pid in session_processes(process.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()


def assert_journal_consistent(records: list[dict], rounds: int) -> None:
    ids = [record["id"] for record in records]
    assert len(ids) == len(set(ids)), f"duplicated ids: {ids}"
    assert [record["round"] for record in records] == list(range(1, len(records) + 1))
    assert len(records) == rounds
    # Ids are handed out in order and a lost candidate's id goes to its re-proposal.
    assert sorted(ids) == list(range(rounds))


# --- no Ray: journal repair and the mapping of out-of-memory errors ------------------------

def test_resume_after_torn_write_appends_cleanly(tmp_path):
    from search_state.journal import RunDirectory

    run = RunDirectory(tmp_path / "run")
    run.create("run", {"search_space": {}, "dataset": {}}, config_file=None)
    run.append({"id": 0, "status": "completed"})
    with open(run.journal_path, "a") as file:
        file.write('{"id": 1, "status": "compl')

    run.discard_torn_tail()
    run.append({"id": 1, "status": "failed"})

    assert [record["id"] for record in run.records()] == [0, 1]
    assert run.journal_path.read_text().endswith('"status": "failed"}\n')


@pytest.mark.parametrize("error_name", ["MemoryError", "ResourceExhaustedError"])
def test_out_of_memory_fails_candidate(error_name, tmp_path):
    import keras
    import tensorflow as tf

    from cnn import CnnSearchSpace
    from config import TrainingConfig
    from dataset import Digits
    from execution.ray_pool import CandidateWorker

    errors = {"MemoryError": lambda: MemoryError(),
              "ResourceExhaustedError": lambda: tf.errors.ResourceExhaustedError(
                  None, None, "OOM when allocating tensor with shape[64,8,8,32]")}

    class RunOutOfMemory(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            raise errors[error_name]()

    training = TrainingConfig(dataset=Digits(), optimizer=lambda: keras.optimizers.Adam(0.01),
                              batch_size=64, epochs=1, callbacks=lambda: [RunOutOfMemory()])
    space = CnnSearchSpace()
    architecture = space.random_architecture(np.random.default_rng(0), (8, 8, 1))
    worker = CandidateWorker(training, space, intra_op_threads=1, log_level=30)

    outcome = worker.evaluate({"id": 7, "architecture": architecture.to_dict(), "seed": 7})

    assert outcome["status"] == "failed"
    assert outcome["error"].startswith("out of memory while training")
    assert error_name in outcome["error"]
    assert "objectives" not in outcome


# --- real searches ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def failing_search(tmp_path_factory):
    """Run one search whose candidates raise, diverge and kill their workers, in order.

    With one worker the attempts run in this order. Candidate 0 raises in its first epoch,
    and candidate 1 trains with an infinite learning rate. Candidate 2 kills its worker once
    and succeeds on the retry, and candidate 3 kills its worker on all 3 attempts.
    Candidates 4 to 9 raise, so 9 of the last 10 failed and the search stops.
    """
    search = FaultySearch(tmp_path_factory.mktemp("failing"))
    search.plan(["raise", "nan", "kill", "ok", "kill", "kill", "kill"], default="raise")
    result = search.run("--parallel", "1", "--rounds", "12")
    return search, result, {record["id"]: record for record in search.records()}


def test_failing_run_stops_with_error(failing_search):
    search, result, records = failing_search
    assert result.returncode == 2, result.stderr[-3000:]
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1
    assert "9 of the last 10 candidates failed, so the search stopped" in error_lines[0]
    assert "RuntimeError: injected failure in epoch 1" in error_lines[0]
    assert len(records) == 10


def test_raising_candidate_recorded_failed(failing_search):
    _, _, records = failing_search
    assert records[0]["status"] == "failed"
    assert records[0]["error"] == "RuntimeError: injected failure in epoch 1"
    assert records[0]["objectives"] is None


def test_nan_loss_recorded_failed(failing_search):
    _, _, records = failing_search
    assert records[1]["status"] == "failed"
    assert records[1]["error"].startswith("training loss became NaN or infinite")


def test_worker_killed_once_retried(failing_search):
    search, result, records = failing_search
    assert records[2]["status"] == "completed", records[2]["error"]
    killed, retried = search.attempts()[2], search.attempts()[3]
    assert killed[2] == "kill"
    # The retry ran in a new worker process.
    assert retried[1] != killed[1]
    assert "The worker training candidate 2 died" in result.stderr


def test_worker_always_killed_fails(failing_search):
    search, _, records = failing_search
    assert records[3]["status"] == "failed"
    assert records[3]["error"].startswith("the worker process died 3 times")
    assert [action for _, _, action in search.attempts()[4:7]] == ["kill"] * 3


def test_kills_and_ctrl_c_lose_nothing(tmp_path):
    """Interrupt one search in four ways in turn, then check that its journal lost nothing.

    kill -9 during start-up, kill -9 mid-run, then a Ctrl-C that stops the proposals and
    waits, followed by a SIGTERM that cancels the candidate still running (any mix of the two
    signals counts the same). A final resume completes the run.
    """
    search = FaultySearch(tmp_path)
    options = ("--parallel", "2", "--rounds", "6")
    journals, in_flight_at_stops = [], []

    # 1. kill -9 during start-up, once the run folder exists and before any record.
    process = search.start(*options)
    wait_until(lambda: (search.run_dir / "run.json").exists(), process, "the run folder")
    kill_session(process)
    assert search.records() == []
    journals.append(search.records())
    in_flight_at_stops.append(search.in_flight())

    # 2. kill -9 mid-run, after the first record and with candidates in training.
    process = search.start(*options)
    wait_until(lambda: len(search.records()) >= 1 and search.in_flight(), process,
               "the first record")
    kill_session(process)
    journals.append(search.records())
    in_flight_at_stops.append(search.in_flight())
    assert in_flight_at_stops[-1], "no candidate was in flight at the kill"

    # 3. Ctrl-C, then SIGTERM, while two candidates are held in training. Ctrl-C goes to the
    # whole process group, as a terminal sends it.
    search.plan(default="hold")
    recorded = search.records()
    attempts_before = len(search.attempts())
    process = search.start(*options)
    wait_until(lambda: len(search.attempts()) >= attempts_before + 2, process,
               "two candidates in training")
    held = [attempt for attempt, _, _ in search.attempts()[attempts_before:]]
    running = search.in_flight()
    os.killpg(process.pid, signal.SIGINT)
    wait_until(lambda: "press Ctrl-C again to cancel them" in search.log(), process,
               "the first Ctrl-C to be logged", timeout=30)

    # The first Ctrl-C waits: a released candidate is recorded, and nothing new is proposed.
    search.release(held[0])
    wait_until(lambda: len(search.records()) == len(recorded) + 1, process,
               "the released candidate's record")
    time.sleep(2 * POLL_SECONDS)  # two turns of the search loop, in which it could propose
    assert len(search.in_flight()) == 1
    assert {p["id"] for p in search.in_flight()} < {p["id"] for p in running}

    # The second signal cancels the other candidate. Ray replaces the SIGTERM handler at start,
    # so this also checks that the driver installs its own again.
    os.kill(process.pid, signal.SIGTERM)
    process.wait(timeout=60)
    kill_session(process)

    assert process.returncode == 130, search.log()[-3000:]
    assert "Proposing again" in search.log()
    assert f"Cancelling the running candidates {[p['id'] for p in search.in_flight()]}" \
        in search.log()
    stdout = search.stdout_path.read_text()
    assert "Pareto front of feasible candidates" in stdout
    assert "will be proposed again. Run the same command again to resume." in stdout
    assert search.records()[:len(recorded)] == recorded
    journals.append(search.records())
    in_flight_at_stops.append(search.in_flight())

    # 4. Resume: the lost and cancelled candidates are trained again and the run completes.
    search.plan(default="ok")
    result = search.run(*options)

    assert result.returncode == 0, result.stderr[-3000:]
    final = search.records()
    assert_journal_consistent(final, rounds=6)
    for journal in journals:
        assert final[:len(journal)] == journal
    final_by_id = {record["id"]: record for record in final}
    for proposals in in_flight_at_stops:
        for proposal in proposals:
            assert final_by_id[proposal["id"]]["architecture"] == proposal["architecture"]
    assert search.in_flight() == []
