"""Ray workers that train candidates, one long-lived actor per parallel evaluation.

Importing TensorFlow costs seconds and hundreds of megabytes per process, so each actor imports
it once, loads the dataset once and then trains candidate after candidate.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Any, Optional

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"

# Environment for every process Ray starts: no usage statistics, no TensorFlow banner noise.
_WORKER_ENVIRONMENT = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "PYTHONUNBUFFERED": "1",
}


def start_ray(num_cpus: int, address: Optional[str] = None) -> None:
    """Start a local Ray instance bound to 127.0.0.1, or join the cluster at ``address``.

    A local instance listens on the loopback interface only, so nothing outside this machine
    can reach it. Joining a cluster is the user's explicit choice (``--ray-address``).
    """
    os.environ.update(_WORKER_ENVIRONMENT)
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    if ray.is_initialized():
        return
    started = time.perf_counter()
    if address:
        ray.init(address=address, log_to_driver=False,
                 runtime_env={"env_vars": _WORKER_ENVIRONMENT})
        logger.info("Joined the Ray cluster at %s (%.1f s).", address,
                    time.perf_counter() - started)
    else:
        ray.init(num_cpus=num_cpus, num_gpus=0, include_dashboard=False,
                 _node_ip_address=LOOPBACK, log_to_driver=False,
                 runtime_env={"env_vars": _WORKER_ENVIRONMENT})
        logger.info("Started Ray on %s with %d CPUs (%.1f s).", LOOPBACK, num_cpus,
                    time.perf_counter() - started)


def stop_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


class CandidateWorker:
    """Trains candidates in one process; wrapped with `ray.remote` by `WorkerPool`."""

    def __init__(self, training_config: Any, search_space: Any, intra_op_threads: int,
                 log_level: int):
        logging.basicConfig(level=log_level,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        from model_trainer import configure_threads

        configure_threads(intra_op_threads)
        self.training_config = training_config
        self.search_space = search_space
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def evaluate(self, proposal: dict) -> dict:
        """Train one candidate and return its outcome as a plain dict.

        Returns ``{"status": "completed", "objectives": ..., ...}`` or ``{"status": "failed",
        "error": reason, ...}``; an exception in training is a failed candidate, not a crash.
        """
        from model_trainer import CandidateFailed, resource_objectives, train_candidate

        started_at = time.time()
        outcome = {"worker": self.name, "started_at": started_at}
        try:
            dataset = self.training_config.dataset
            splits = dataset.load()
            architecture = self.search_space.architecture_from_dict(proposal["architecture"])
            resources = resource_objectives(architecture, dataset.input_shape,
                                            dataset.num_classes)
            result = train_candidate(architecture, self.training_config, splits,
                                     dataset.input_shape, dataset.num_classes,
                                     seed=proposal["seed"])
        except CandidateFailed as error:
            outcome.update(status="failed", error=str(error))
        except MemoryError:
            outcome.update(status="failed", error="out of memory while training")
        except Exception as error:  # noqa: BLE001 - any training error fails this candidate only
            logger.exception("Candidate %s failed.", proposal["id"])
            outcome.update(status="failed", error=f"{type(error).__name__}: {error}")
        else:
            outcome.update(
                status="completed",
                objectives={"val_error": result.val_error, "test_error": result.test_error,
                            **resources},
                epochs=result.epochs_run, train_seconds=result.train_seconds)
        outcome["finished_at"] = time.time()
        return outcome


@dataclass
class _Task:
    proposal: dict
    worker_index: int
    attempts: int


class WorkerPool:
    """A fixed set of `CandidateWorker` actors with asynchronous submit/wait.

    A worker process that dies mid-candidate is replaced, and its candidate is retried up to
    ``max_retries`` times before it is reported as failed.
    """

    def __init__(self, training_config: Any, search_space: Any, size: int, cpus_per_worker: float,
                 intra_op_threads: int, max_retries: int = 2):
        import ray

        self._ray = ray
        self._remote_class = ray.remote(CandidateWorker)
        self._arguments = (ray.put(training_config), ray.put(search_space))
        self._cpus_per_worker = cpus_per_worker
        self._threads = intra_op_threads
        self.max_retries = max_retries
        self._workers = [self._new_worker() for _ in range(size)]
        self._idle = list(range(size))
        self._tasks: dict[Any, _Task] = {}

    def _new_worker(self):
        return self._remote_class.options(num_cpus=self._cpus_per_worker).remote(
            *self._arguments, self._threads, logging.getLogger().level)

    @property
    def has_idle_worker(self) -> bool:
        return bool(self._idle)

    @property
    def running(self) -> int:
        return len(self._tasks)

    def submit(self, proposal: dict, attempts: int = 0) -> None:
        index = self._idle.pop()
        reference = self._workers[index].evaluate.remote(proposal)
        self._tasks[reference] = _Task(proposal, index, attempts)

    def wait_any(self) -> Optional[tuple[dict, dict]]:
        """Block until a candidate finishes; return (proposal, outcome), or None after a retry."""
        ray = self._ray
        done, _ = ray.wait(list(self._tasks), num_returns=1)
        reference = done[0]
        task = self._tasks.pop(reference)
        try:
            outcome = ray.get(reference)
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as error:
            self._workers[task.worker_index] = self._new_worker()
            self._idle.append(task.worker_index)
            if task.attempts < self.max_retries:
                logger.warning("The worker training candidate %s died (%s); retrying "
                               "(attempt %d of %d).", task.proposal["id"], type(error).__name__,
                               task.attempts + 2, self.max_retries + 1)
                self.submit(task.proposal, attempts=task.attempts + 1)
                return None
            now = time.time()
            outcome = {"status": "failed", "started_at": now, "finished_at": now,
                       "worker": None,
                       "error": f"the worker process died {self.max_retries + 1} times "
                                f"({type(error).__name__})"}
            return task.proposal, outcome
        self._idle.append(task.worker_index)
        return task.proposal, outcome

    def cancel_all(self) -> None:
        """Stop every running candidate by killing the workers."""
        for worker in self._workers:
            self._ray.kill(worker)
        self._tasks.clear()
