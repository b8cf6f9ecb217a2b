"""Kill a real search with SIGKILL many times at random moments, resume it, check the journal.

    .venv/bin/python benchmarks/soak_kill.py --kills 20 --output-dir artifacts/soak_kill

Runs driver.py on scikit-learn's 8x8 digits (a tiny CNN config, 2 epochs per candidate, 2 in
parallel). Each start is killed, with its whole session (the driver, Ray's services and
workers), after a random delay; then the run is resumed. The search's --rounds is set so
high that it is still running at every kill. After the last kill, the run is resumed with
--rounds equal to the number of candidates proposed so far, so the final run only completes
those. Then these invariants are checked:

- every journal seen after a kill is a prefix of the final journal (nothing lost or changed);
- candidate ids are unique and are exactly 0 .. N-1 for N records, and rounds are 1 .. N;
- each candidate in in_flight.json at a kill was recorded with the same architecture.

A summary goes to ``summary.json`` in the output folder, one line per kill to the log. The
script exits with 1 if an invariant fails.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

REPOSITORY = Path(__file__).resolve().parents[1]

logger = logging.getLogger("benchmarks.soak_kill")

CONFIG = """
import keras
from cnn import CnnSearchSpace
from config import AgingEvoConfig, BoundConfig, TrainingConfig
from dataset import Digits

training_config = TrainingConfig(dataset=Digits(),
                                 optimizer=lambda: keras.optimizers.Adam(0.01),
                                 batch_size=64, epochs=2)
search_config = AgingEvoConfig(search_space=CnnSearchSpace(), population_size=6,
                               sample_size=3, rounds=1000, max_parallel_evaluations=2)
bound_config = BoundConfig(error_bound=0.5, peak_mem_bound=20000, model_size_bound=50000,
                           mac_bound=5000000)
"""


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


def kill_session(process: subprocess.Popen) -> int:
    """SIGKILL the driver and every process in its session; return how many were killed."""
    pids = session_processes(process.pid)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()
    return len(pids)


def read_records(journal: Path) -> tuple[list[dict], bool]:
    """Return the journal's complete records and whether it ends in a half-written line."""
    if not journal.exists():
        return [], False
    text = journal.read_text()
    lines = text.split("\n")
    records = [json.loads(line) for line in lines[:-1] if line.strip()]
    return records, bool(lines[-1].strip())


def read_in_flight(run_dir: Path) -> list[dict]:
    path = run_dir / "in_flight.json"
    return json.loads(path.read_text()) if path.exists() else []


def kill_phase(driver_log: str) -> str:
    """Return how far a killed driver had come, from the lines it logged."""
    if "Searching " not in driver_log:
        return "start-up"
    if " round " not in driver_log:
        return "search, before its first record"
    return "search, after a record"


def check_invariants(final: list[dict], rounds: int, journals: list[list[dict]],
                     in_flight_at_kills: list[list[dict]]) -> list[str]:
    """Return a description of every broken invariant (an empty list when all hold)."""
    problems = []
    ids = [record["id"] for record in final]
    if len(ids) != len(set(ids)):
        problems.append(f"duplicated ids: {sorted(ids)}")
    if sorted(ids) != list(range(rounds)):
        problems.append(f"ids are not 0..{rounds - 1}: {sorted(ids)}")
    if [record["round"] for record in final] != list(range(1, len(final) + 1)):
        problems.append("rounds are not contiguous")
    for kill, journal in enumerate(journals, start=1):
        if final[:len(journal)] != journal:
            problems.append(f"the journal after kill {kill} is not a prefix of the final one")
    by_id = {record["id"]: record for record in final}
    for kill, proposals in enumerate(in_flight_at_kills, start=1):
        for proposal in proposals:
            recorded = by_id.get(proposal["id"])
            if recorded is None:
                problems.append(f"candidate {proposal['id']}, in flight at kill {kill}, is lost")
            elif recorded["architecture"] != proposal["architecture"]:
                problems.append(f"candidate {proposal['id']}, in flight at kill {kill}, was "
                                "recorded with another architecture")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs before the final run.")
    parser.add_argument("--rounds", type=int, default=1000,
                        help="Candidates in the search while it is being killed.")
    parser.add_argument("--min-delay", type=float, default=1.0,
                        help="Minimum time in seconds between a start and its kill.")
    parser.add_argument("--max-delay", type=float, default=60.0,
                        help="Maximum time in seconds between a start and its kill.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the kill delays.")
    parser.add_argument("--output-dir", default="artifacts/soak_kill",
                        help="Folder for the config, the run, the driver logs and summary.json.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                        datefmt="%H:%M:%S")

    output = Path(args.output_dir).resolve()
    output.mkdir(parents=True, exist_ok=True)
    config = output / "soak_digits.py"
    config.write_text(textwrap.dedent(CONFIG))
    run_dir = output / "run"
    command = [sys.executable, str(REPOSITORY / "driver.py"), str(config), "--name", "run",
               "--output-dir", str(output)]
    if run_dir.exists():
        parser.error(f"{run_dir} exists already; choose an empty --output-dir")

    rng = np.random.default_rng(args.seed)
    started = time.monotonic()
    journals, in_flight_at_kills, kills = [], [], []
    for kill in range(1, args.kills + 1):
        delay = float(rng.uniform(args.min_delay, args.max_delay))
        before, _ = read_records(run_dir / "journal.jsonl")
        with open(output / f"driver{kill:02d}.log", "w") as log:
            process = subprocess.Popen([*command, "--rounds", str(args.rounds)],
                                       cwd=REPOSITORY, stdout=log, stderr=log,
                                       start_new_session=True)
            time.sleep(delay)
            finished_early = process.poll() is not None
            killed_processes = kill_session(process)

        records, torn = read_records(run_dir / "journal.jsonl")
        in_flight = read_in_flight(run_dir)
        phase = kill_phase((output / f"driver{kill:02d}.log").read_text())
        journals.append(records)
        in_flight_at_kills.append(in_flight)
        kills.append({"kill": kill, "delay_s": round(delay, 1), "phase": phase,
                      "records": len(records),
                      "new_records": len(records) - len(before), "in_flight": len(in_flight),
                      "torn_last_line": torn, "processes_killed": killed_processes,
                      "exited_before_kill": finished_early, "exit_code": process.returncode})
        logger.info("kill %2d after %5.1f s (%s): %2d records (+%d), %d in flight, %d "
                    "processes killed%s", kill, delay, phase, len(records),
                    len(records) - len(before), len(in_flight), killed_processes,
                    ", journal ends in a torn line" if torn else "")
        if len(records) >= args.rounds:
            logger.info("The search finished before kill %d; no more kills.", kill)
            break

    # Ids are handed out in order, so the candidates proposed so far are 0 .. max id.
    proposed_ids = [r["id"] for r in records] + [p["id"] for p in read_in_flight(run_dir)]
    final_rounds = max(proposed_ids, default=-1) + 1
    logger.info("Resuming to complete the %d candidates proposed so far.", final_rounds)
    final_started = time.monotonic()
    with open(output / "driver_final.log", "w") as log:
        final_run = subprocess.run([*command, "--rounds", str(max(final_rounds, 1))],
                                   cwd=REPOSITORY, stdout=log, stderr=log,
                                   start_new_session=True)
    final, torn = read_records(run_dir / "journal.jsonl")
    problems = check_invariants(final, final_rounds, journals, in_flight_at_kills)
    if final_run.returncode != 0:
        problems.append(f"the final run exited with {final_run.returncode}")
    if torn:
        problems.append("the final journal ends in a torn line")

    summary = {
        "command": " ".join(sys.argv),
        "kills": kills,
        "kills_by_phase": {phase: sum(1 for k in kills if k["phase"] == phase)
                           for phase in sorted({k["phase"] for k in kills})},
        "kills_before_first_record": sum(1 for k in kills if k["records"] == 0),
        "kills_with_candidates_in_flight": sum(1 for k in kills if k["in_flight"]),
        "torn_last_lines": sum(1 for k in kills if k["torn_last_line"]),
        "candidates_in_flight_at_kills": sum(k["in_flight"] for k in kills),
        "final_records": len(final),
        "failed_records": sum(record["status"] != "completed" for record in final),
        "final_run_seconds": round(time.monotonic() - final_started, 1),
        "total_seconds": round(time.monotonic() - started, 1),
        "cpu_count": os.cpu_count(),
        "problems": problems,
    }
    (output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    logger.info("%d kills, %d records, %.0f s in total; %s", len(kills), len(final),
                summary["total_seconds"],
                "all invariants hold" if not problems else f"PROBLEMS: {problems}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
