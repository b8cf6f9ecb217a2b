"""Real searches through the command line: Ray workers, Keras training on digits, resume.

Each test starts `driver.py` as a user would, in a subprocess with its own output folder.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]

CONFIG = """
import keras
from cnn import CnnSearchSpace
from config import AgingEvoConfig, BoundConfig, TrainingConfig
from dataset import Digits

training_config = TrainingConfig(dataset=Digits(),
                                 optimizer=lambda: keras.optimizers.Adam(0.01),
                                 batch_size=64, epochs=5)
search_config = AgingEvoConfig(search_space=CnnSearchSpace(), population_size=3,
                               sample_size=2, rounds=6)
bound_config = BoundConfig(error_bound=0.5, peak_mem_bound=20000, model_size_bound=50000,
                           mac_bound=5000000)
"""


def write_config(tmp_path):
    path = tmp_path / "tiny_digits.py"
    path.write_text(textwrap.dedent(CONFIG))
    return path


def driver_command(config, output_dir, *options):
    return [sys.executable, str(REPOSITORY / "driver.py"), str(config), "--name", "run",
            "--output-dir", str(output_dir), *options]


def run_driver(config, output_dir, *options, timeout=300):
    return subprocess.run(driver_command(config, output_dir, *options), cwd=REPOSITORY,
                          capture_output=True, text=True, timeout=timeout)


def read_records(run_dir):
    lines = (run_dir / "journal.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_search_with_more_workers_than_cores(tmp_path):
    config = write_config(tmp_path)
    parallel = (os.cpu_count() or 1) + 1

    result = run_driver(config, tmp_path, "--rounds", "4", "--parallel", str(parallel))

    assert result.returncode == 0, result.stderr[-3000:]
    records = read_records(tmp_path / "run")
    assert len(records) == 4
    assert sorted(r["id"] for r in records) == sorted({r["id"] for r in records})
    assert all(r["status"] == "completed" for r in records), [r["error"] for r in records]
    # Real training on 10 balanced classes: guessing gives 0.9 validation error.
    assert min(r["objectives"]["val_error"] for r in records) < 0.8
    assert (tmp_path / "run" / "pareto.csv").is_file()
    assert "Pareto front of feasible candidates" in result.stdout
    assert result.stderr.count("round ") >= 4  # one log line per candidate


def test_killed_search_resumes_without_loss(tmp_path):
    config = write_config(tmp_path)
    run_dir = tmp_path / "run"

    # Start a search and kill it (and its Ray processes) with SIGKILL once 2 candidates are in.
    process = subprocess.Popen(driver_command(config, tmp_path, "--parallel", "1"),
                               cwd=REPOSITORY, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        journal = run_dir / "journal.jsonl"
        if journal.exists() and len(journal.read_text().splitlines()) >= 2:
            break
        if process.poll() is not None:
            break
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = read_records(run_dir)
    assert 2 <= len(before) < 6
    in_flight = json.loads((run_dir / "in_flight.json").read_text())

    result = run_driver(config, tmp_path, "--parallel", "1")

    assert result.returncode == 0, result.stderr[-3000:]
    after = read_records(run_dir)
    assert after[:len(before)] == before
    assert len(after) == 6
    assert len({r["id"] for r in after}) == 6
    assert [r["round"] for r in after] == list(range(1, 7))
    # A candidate that was training at the kill is trained again with the same architecture.
    after_by_id = {r["id"]: r for r in after}
    for proposal in in_flight:
        assert after_by_id[proposal["id"]]["architecture"] == proposal["architecture"]
