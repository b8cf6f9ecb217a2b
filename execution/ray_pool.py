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

from errors import UnasError

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
    can reach it. It is started with ``address="local"`` so that a ``RAY_ADDRESS`` variable
    in the environment cannot silently redirect the run to a cluster. Joining a cluster is the
    user's explicit choice (``--ray-address``).

    Raises:
        UnasError: Ray could not start, or the cluster could not be reached.
    """
    os.environ.update(_WORKER_ENVIRONMENT)
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    if ray.is_initialized():
        return
    started = time.perf_counter()
    if address:
        try:
            ray.init(address=address, log_to_driver=False,
                     runtime_env={"env_vars": _WORKER_ENVIRONMENT})
        except (ConnectionError, RuntimeError, TimeoutError, ValueError) as error:
            raise UnasError(
                f"Cannot join the Ray cluster at --ray-address {address}: {error}. Check the "
                "address and that the cluster is running, or leave out --ray-address to "
                "train on this machine."
            ) from error
        logger.info("Joined the Ray cluster at %s (%.1f s).", address,
                    time.perf_counter() - started)
        return

    try:
        ray.init(address="local", num_cpus=num_cpus, num_gpus=0, include_dashboard=False,
                 _node_ip_address=LOOPBACK, log_to_driver=False,
                 runtime_env={"env_vars": _WORKER_ENVIRONMENT})
    except (ConnectionError, RuntimeError, TimeoutError) as error:
        raise UnasError(
            f"Cannot start a local Ray instance: {error}. Check the free space and permissions "
            "of the temporary folder (Ray writes to /tmp/ray), then rerun the same command."
        ) from error
    logger.info("Started Ray on %s with %d CPUs (%.1f s).", LOOPBACK, num_cpus,
                time.perf_counter() - started)


def stop_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


class CandidateWorker:
    """Trains candidates in one process; wrapped with `ray.remote` by `WorkerPool`."""

    def __init__(self, training_config: Any, search_space: Any, intra_op_threads: int,
                 log_level: int, latency_model: Any = None):
        logging.basicConfig(level=log_level,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        from model_trainer import configure_threads

        configure_threads(intra_op_threads)
        self.training_config = training_config
        self.search_space = search_space
        self.latency_model = latency_model
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def evaluate(self, proposal: dict) -> dict:
        """Train one candidate and return its outcome as a plain dict.

        Returns ``{"status": "completed", "objectives": ..., ...}`` or ``{"status": "failed",
        "error": reason, ...}``. An exception in training fails this candidate only, and
        running out of memory is reported as such (see `model_trainer.failure_reason`).
        """
        from model_trainer import failure_reason, resource_objectives, train_candidate

        started_at = time.time()
        outcome = {"worker": self.name, "started_at": started_at}
        try:
            dataset = self.training_config.dataset
            splits = dataset.load()
            architecture = self.search_space.architecture_from_dict(proposal["architecture"])
            resources = resource_objectives(architecture, dataset.input_shape,
                                            dataset.num_classes, self.latency_model)
            result = train_candidate(architecture, self.training_config, splits,
                                     dataset.input_shape, dataset.num_classes,
                                     seed=proposal["seed"],
                                     save_model_path=proposal.get("save_model_path"))
        except Exception as error:  # noqa: BLE001 - any training error fails this candidate only
            reason = failure_reason(error)
            logger.warning("Candidate %s failed on worker %s: %s", proposal["id"], self.name,
                           reason, exc_info=logger.isEnabledFor(logging.DEBUG))
            outcome.update(status="failed", error=reason)
        else:
            outcome.update(
                status="completed",
                objectives={"val_error": result.val_error, "test_error": result.test_error,
                            **resources},
                epochs=result.epochs_run, train_seconds=result.train_seconds)
        outcome["finished_at"] = time.time()
        return outcome


class WorkerStartError(UnasError):
    """A worker process raised while starting, for example while unpickling the config."""


@dataclass
class _Task:
    proposal: dict
    worker_index: int
    attempts: int


class WorkerPool:
    """A fixed set of `CandidateWorker` actors with asynchronous submit/wait.

    A worker process that dies mid-candidate (killed, crashed, or stopped by Ray's memory
    monitor) is replaced, and its candidate is retried up to ``max_retries`` times before it
    is reported as failed.
    """

    def __init__(self, training_config: Any, search_space: Any, size: int, cpus_per_worker: float,
                 intra_op_threads: int, max_retries: int = 2, latency_model: Any = None):
        import ray

        self._ray = ray
        self._remote_class = ray.remote(CandidateWorker)
        self._arguments = (ray.put(training_config), ray.put(search_space))
        self._latency_model = latency_model
        self._cpus_per_worker = cpus_per_worker
        self._threads = intra_op_threads
        self.max_retries = max_retries
        self._workers = [self._new_worker() for _ in range(size)]
        self._idle = list(range(size))
        self._tasks: dict[Any, _Task] = {}
        # Errors that mean the worker process is gone, not that evaluate() raised.
        self._worker_death_errors = (ray.exceptions.RayActorError,
                                     ray.exceptions.WorkerCrashedError,
                                     ray.exceptions.OutOfMemoryError)

    def _new_worker(self):
        return self._remote_class.options(num_cpus=self._cpus_per_worker).remote(
            *self._arguments, self._threads, logging.getLogger().level,
            latency_model=self._latency_model)

    def _replace_worker(self, index: int) -> None:
        try:
            self._ray.kill(self._workers[index])
        except Exception:  # noqa: BLE001 - the actor is usually dead already
            logger.debug("Killing dead worker %d failed.", index, exc_info=True)
        self._workers[index] = self._new_worker()
        self._idle.append(index)

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

    def wait_any(self, timeout: Optional[float] = None) -> Optional[tuple[dict, dict]]:
        """Wait up to ``timeout`` seconds (None: no limit) for a candidate to finish.

        Returns (proposal, outcome), or None when nothing finished in time or a candidate
        whose worker died was submitted again.
        """
        ray = self._ray
        if not self._tasks:
            return None
        done, _ = ray.wait(list(self._tasks), num_returns=1, timeout=timeout)
        if not done:
            return None
        reference = done[0]
        task = self._tasks.pop(reference)
        try:
            outcome = ray.get(reference)
        except self._worker_death_errors as error:
            return self._handle_worker_death(task, error)
        except ray.exceptions.RayTaskError as error:
            # evaluate() catches training errors itself, so this is a bug in the worker code;
            # the worker process is still alive.
            logger.error("Evaluating candidate %s raised: %s", task.proposal["id"], error)
            self._idle.append(task.worker_index)
            return task.proposal, _failed_outcome(
                f"the worker raised {_first_line(str(error))}")
        self._idle.append(task.worker_index)
        return task.proposal, outcome

    def _handle_worker_death(self, task: _Task, error: Exception) -> Optional[tuple[dict, dict]]:
        if getattr(error, "actor_init_failed", False):
            # Every worker is built from the same arguments, so retrying cannot help.
            self.cancel_all()
            raise WorkerStartError(
                f"The Ray worker process could not start: {_last_line(str(error))}. This is a "
                "problem of the config or of the environment on the workers, not of one "
                "candidate. Fix it and rerun the same command to resume."
            ) from error

        self._replace_worker(task.worker_index)
        cause = _first_line(str(error))
        if task.attempts < self.max_retries:
            logger.warning("The worker training candidate %s died (%s: %s); retrying "
                           "(attempt %d of %d).", task.proposal["id"], type(error).__name__,
                           cause, task.attempts + 2, self.max_retries + 1)
            self.submit(task.proposal, attempts=task.attempts + 1)
            return None
        reason = (f"the worker process died {self.max_retries + 1} times "
                  f"({type(error).__name__}: {cause}). A common cause is running out of "
                  "memory: lower --parallel or the batch size")
        logger.warning("Candidate %s failed: %s.", task.proposal["id"], reason)
        return task.proposal, _failed_outcome(reason)

    def cancel_all(self) -> None:
        """Stop every running candidate by killing the workers."""
        for worker in self._workers:
            try:
                self._ray.kill(worker)
            except Exception:  # noqa: BLE001 - a dead worker needs no killing
                logger.debug("Killing a worker failed.", exc_info=True)
        self._tasks.clear()
        self._idle.clear()


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


def _last_line(text: str) -> str:
    # A Python traceback ends with the exception's type and message.
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _failed_outcome(reason: str) -> dict:
    now = time.time()
    return {"status": "failed", "started_at": now, "finished_at": now, "worker": None,
            "error": reason}
