"""The asynchronous search loop: propose, evaluate on workers, record, repeat.

Up to ``parallel`` candidates are in flight; the next one is proposed as soon as one finishes.
Each finished candidate is appended to the journal before anything else happens, and the set
of candidates in flight is saved after every change, so an interrupted run loses at most the
training time of the candidates that were running.

While the loop runs, SIGINT and SIGTERM only count requests to stop; the loop checks the count
between steps (at least every `POLL_SECONDS`). So a signal never lands between writing a
record and updating the in-flight list.
"""
from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from errors import UnasError
from search_algorithms.objectives import pareto_front, best_feasible, is_feasible
from search_state.journal import RunDirectory, json_safe, utc_now

logger = logging.getLogger(__name__)

#: The search stops when at least this fraction of the last FAILURE_WINDOW candidates
#: evaluated by this process failed: then something is wrong with the setup rather than with
#: individual architectures.
FAILURE_WINDOW = 10
FAILURE_FRACTION = 0.8

#: Maximum wait, in seconds, for a candidate to finish before the loop checks for signals.
POLL_SECONDS = 0.5

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SearchFailedError(UnasError):
    """Most recent candidates failed; the message lists the reasons."""


@dataclass
class SearchOutcome:
    """Outcome of one run of the search loop."""

    records: list[dict]
    interrupted: bool = False
    elapsed_seconds: float = 0.0
    evaluated_now: int = 0
    failed_now: int = 0
    abandoned_ids: list[int] = field(default_factory=list)


class StopRequests:
    """Counts SIGINT and SIGTERM received while the loop runs.

    The first request stops proposing, the second cancels the running candidates, and a third
    raises `KeyboardInterrupt` at once for a user who does not want to wait for the cleanup.
    """

    def __init__(self):
        self.count = 0
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        self.count += 1
        if self.count >= 3:
            raise KeyboardInterrupt

    def install(self) -> None:
        for signum in _STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


def _format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


def describe_objectives(objectives: dict) -> str:
    """Format objectives for one log line, with units."""
    return (f"val_error {objectives['val_error']:.4f}, "
            f"peak memory {objectives['peak_memory_bytes']:,} B, "
            f"model size {objectives['model_size_bytes']:,} B, "
            f"MACs {objectives['macs']:,}"
            + (f", latency {objectives['latency_seconds'] * 1000:.2f} ms"
               if "latency_seconds" in objectives else ""))


def model_file(candidate_id: int) -> str:
    """Return where a kept model is stored, relative to the run folder."""
    return f"models/candidate_{candidate_id}.keras"


class SearchLoop:
    """Drives an ask/tell algorithm with a worker pool and a run directory."""

    def __init__(self, algorithm: Any, pool: Any, run_dir: RunDirectory, rounds: int, parallel: int,
                 bounds: dict, base_seed: int, keep_pareto_models: bool = False):
        self.algorithm = algorithm
        self.keep_pareto_models = keep_pareto_models
        self.pool = pool
        self.run_dir = run_dir
        self.rounds = rounds
        self.parallel = parallel
        self.bounds = bounds
        self.base_seed = base_seed
        self.in_flight: dict[int, dict] = {}
        self.proposed_at: dict[int, str] = {}

    def _candidate_seed(self, candidate_id: int) -> int:
        # Each candidate's training seed follows from the run seed and its id, so a candidate
        # proposed again after a resume trains exactly as it would have.
        return (self.base_seed * 1_000_003 + candidate_id) % (2**31 - 1)

    def _next_proposal(self, re_proposals: list[dict]) -> dict:
        if re_proposals:
            proposal = re_proposals.pop(0)
            # in_flight.json of an older run, or one edited by hand, may lack these fields.
            proposal.setdefault("seed", self._candidate_seed(proposal["id"]))
            proposal.setdefault("algorithm", {"name": "aging_evolution", "parent_id": None,
                                              "morphism": "unknown"})
            proposal.setdefault("proposed_at", utc_now())
            return proposal
        proposal = self.algorithm.ask()
        result = {"id": proposal.id, "architecture": proposal.architecture.to_dict(),
                  "seed": self._candidate_seed(proposal.id), "algorithm": proposal.bookkeeping(),
                  "proposed_at": utc_now()}
        if self.keep_pareto_models:
            # NOTE: workers write here directly, so on a Ray cluster the run folder must be
            # on a file system that every node shares.
            result["save_model_path"] = str(
                (self.run_dir.path / model_file(proposal.id)).resolve())
        return result

    def _discard_dominated_models(self, records: list[dict]) -> None:
        # A candidate outside the Pareto front stays outside as records are added, so its
        # model is never needed again.
        front = {record["id"] for record in pareto_front(records, self.bounds)}
        for record in records:
            if record["id"] not in front and record.get("model_file"):
                (self.run_dir.path / record["model_file"]).unlink(missing_ok=True)

    def _fill_workers(self, records: list[dict], re_proposals: list[dict]) -> None:
        while (self.pool.has_idle_worker and len(self.in_flight) < self.parallel
               and len(records) + len(self.in_flight) < self.rounds):
            proposal = self._next_proposal(re_proposals)
            self.in_flight[proposal["id"]] = proposal
            self.run_dir.save_in_flight(self.in_flight.values())
            self.pool.submit(proposal)

    def _record(self, proposal: dict, outcome: dict, round_number: int) -> dict:
        record = {
            "id": proposal["id"],
            "round": round_number,
            "status": outcome["status"],
            "architecture": proposal["architecture"],
            "objectives": outcome.get("objectives"),
            "feasible": None,
            "seed": proposal["seed"],
            "epochs": outcome.get("epochs"),
            "error": outcome.get("error"),
            "algorithm": proposal["algorithm"],
            "timings": {
                "proposed_at": proposal["proposed_at"],
                "started_at": outcome.get("started_at"),
                "finished_at": outcome.get("finished_at"),
                "train_seconds": outcome.get("train_seconds"),
            },
            "worker": outcome.get("worker"),
        }
        if proposal.get("save_model_path") and outcome["status"] == "completed":
            record["model_file"] = model_file(proposal["id"])
        record = json_safe(record)
        objectives = record["objectives"]
        if record["status"] == "completed" and (
                objectives is None or any(value is None for value in objectives.values())):
            record["status"] = "failed"
            record["error"] = f"an objective is NaN or infinite: {outcome.get('objectives')}"
        if record["status"] == "completed":
            record["feasible"] = is_feasible(objectives, self.bounds)
        return record

    def _log_record(self, record: dict, records: list[dict], started: float,
                    evaluated_now: int) -> None:
        algorithm = record["algorithm"]
        origin = ("random" if algorithm["parent_id"] is None
                  else f"{algorithm['morphism']} of {algorithm['parent_id']}")
        elapsed = time.perf_counter() - started
        remaining = self.rounds - len(records)
        eta = ""
        if evaluated_now and remaining:
            eta = f", about {_format_duration(elapsed / evaluated_now * remaining)} left"
        progress = f"round {record['round']}/{self.rounds} candidate {record['id']} ({origin})"

        if record["status"] != "completed":
            logger.warning("%s failed: %s%s", progress, record["error"], eta)
            return

        best = best_feasible(records, self.bounds)
        best_text = (f"best feasible: candidate {best['id']} val_error "
                     f"{best['objectives']['val_error']:.4f}" if best else "no feasible candidate yet")
        logger.info("%s: %s, %.1f s training, %s; %s%s", progress,
                    describe_objectives(record["objectives"]),
                    record["timings"]["train_seconds"] or 0.0,
                    "feasible" if record["feasible"] else "infeasible", best_text, eta)

    def _stop_if_most_fail(self, evaluated_now: list[dict]) -> None:
        # Only this process's candidates count, so that a resume after fixing the cause is
        # not stopped again by the failures that made the previous run stop.
        recent = evaluated_now[-FAILURE_WINDOW:]
        failed = [record for record in recent if record["status"] != "completed"]
        if len(recent) < FAILURE_WINDOW or len(failed) < FAILURE_FRACTION * len(recent):
            return
        reasons = sorted({record["error"] for record in failed})
        self.pool.cancel_all()
        raise SearchFailedError(
            f"{len(failed)} of the last {len(recent)} candidates failed, so the search stopped. "
            f"Reasons: {'; '.join(reasons[:3])}. Fix the cause (often the optimizer settings, "
            f"the dataset or the available memory) and rerun the same command to resume."
        )

    def _pending_re_proposals(self, records: list[dict]) -> list[dict]:
        recorded_ids = {record["id"] for record in records}
        re_proposals = [proposal for proposal in self.run_dir.load_in_flight()
                        if proposal["id"] not in recorded_ids]
        if re_proposals:
            logger.info("Proposing again %d candidates that were in flight when the run stopped: "
                        "%s.", len(re_proposals), [p["id"] for p in re_proposals])
            self.algorithm.next_id = max(self.algorithm.next_id,
                                         max(p["id"] for p in re_proposals) + 1)
            self.algorithm.proposed_count += len(re_proposals)
        return re_proposals

    def _finish(self, proposal: dict, result: dict, records: list[dict]) -> dict:
        # Journal first: once the record is on disk, the candidate is never trained again.
        record = self._record(proposal, result, round_number=len(records) + 1)
        self.run_dir.append(record)
        records.append(record)
        self.algorithm.tell(record)
        del self.in_flight[proposal["id"]]
        self.run_dir.save_in_flight(self.in_flight.values())
        return record

    def run(self) -> SearchOutcome:
        """Run until ``rounds`` candidates are recorded or the user interrupts.

        The first SIGINT (Ctrl-C) or SIGTERM stops proposing and waits for the running
        candidates. A second one cancels them: they stay in in_flight.json and are proposed
        again on resume. The signal handlers in place before the call are restored on return.

        Raises:
            SearchFailedError: most of the recent candidates failed.
        """
        records = self.run_dir.records()
        self.algorithm.restore(records)
        re_proposals = self._pending_re_proposals(records)
        if len(records) >= self.rounds:
            logger.info("The journal already contains %d of %d rounds; nothing to do.",
                        len(records), self.rounds)
            return SearchOutcome(records=records)

        started = time.perf_counter()
        outcome = SearchOutcome(records=records)
        evaluated_now: list[dict] = []
        stop = StopRequests()
        stop.install()
        try:
            while True:
                if stop.count >= 2:
                    outcome.abandoned_ids = sorted(self.in_flight)
                    logger.warning("Cancelling the running candidates %s; they will be proposed "
                                   "again when the run is resumed.", outcome.abandoned_ids)
                    self.pool.cancel_all()
                    break
                if stop.count == 1 and not outcome.interrupted:
                    outcome.interrupted = True
                    logger.warning("Interrupted: no new candidates will be proposed. Waiting for "
                                   "the running candidates %s to finish; press Ctrl-C again to "
                                   "cancel them instead (they will be proposed again on "
                                   "resume).", sorted(self.in_flight))

                if not outcome.interrupted:
                    self._fill_workers(records, re_proposals)
                if not self.in_flight:
                    break

                finished = self.pool.wait_any(timeout=POLL_SECONDS)
                if finished is None:
                    continue
                record = self._finish(*finished, records)
                evaluated_now.append(record)
                outcome.evaluated_now += 1
                outcome.failed_now += record["status"] != "completed"
                self._log_record(record, records, started, outcome.evaluated_now)
                if self.keep_pareto_models:
                    self._discard_dominated_models(records)
                self._stop_if_most_fail(evaluated_now)
        finally:
            stop.restore()

        outcome.elapsed_seconds = time.perf_counter() - started
        return outcome
