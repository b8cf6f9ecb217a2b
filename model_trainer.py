"""Train one candidate with Keras and measure its four objectives.

The objectives are the validation error (1 - best validation accuracy over the epochs), the
test error of the same weights, and the resource objectives of the architecture's resource
graph: peak memory usage and model size in bytes, and MACs.
"""
from __future__ import annotations

import gc
import logging
import math
import sys
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

logger = logging.getLogger(__name__)


#: Maximum length, in characters, of a failure reason stored in the journal, because
#: TensorFlow's error messages can run to pages.
MAX_REASON_CHARACTERS = 300


class CandidateFailed(Exception):
    """Training produced no usable result (a NaN loss, for example); the message gives the reason."""


def is_out_of_memory(error: BaseException) -> bool:
    """Return whether ``error`` reports that memory ran out: `MemoryError` from Python or
    NumPy, or `tf.errors.ResourceExhaustedError` from TensorFlow."""
    if isinstance(error, MemoryError):
        return True
    tensorflow = sys.modules.get("tensorflow")
    return tensorflow is not None and isinstance(error, tensorflow.errors.ResourceExhaustedError)


def failure_reason(error: BaseException) -> str:
    """Return the reason recorded in the journal for a candidate whose training raised."""
    if isinstance(error, CandidateFailed):
        return str(error)
    lines = str(error).strip().splitlines()
    message = f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    if len(message) > MAX_REASON_CHARACTERS:
        message = message[:MAX_REASON_CHARACTERS - 3] + "..."
    if is_out_of_memory(error):
        return (f"out of memory while training ({message}). Lower the batch size or "
                "--parallel, or tighten the bounds so that candidates are smaller")
    return message


@dataclass
class TrainingResult:
    """Result of training one candidate."""

    val_error: float
    test_error: float
    epochs_run: int
    train_seconds: float


def configure_threads(intra_op_threads: int, inter_op_threads: int = 1) -> None:
    """Limit TensorFlow's thread pools; call before TensorFlow runs its first operation.

    Candidates train in parallel processes, so each one gets a share of the cores instead of
    every process starting one thread per core and oversubscribing the machine.
    """
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads)
        tf.config.threading.set_inter_op_parallelism_threads(inter_op_threads)
    except RuntimeError:
        # TensorFlow is already initialised in this process; its pools keep their size.
        logger.warning("TensorFlow was initialised before the thread counts could be set; "
                       "parallel candidates may oversubscribe the cores.")


def resource_objectives(architecture: Any, input_shape: tuple[int, ...], num_classes: int,
                        latency_model: Any = None) -> dict[str, float]:
    """Return peak memory usage (bytes), model size (bytes) and MACs of an architecture.

    With a `deployment.latency_model.LatencyModel`, also its predicted ``latency_seconds``.
    """
    graph = architecture.build_resource_graph(input_shape, num_classes)
    objectives = {
        "peak_memory_bytes": int(graph.peak_memory().peak_bytes),
        "model_size_bytes": int(graph.model_size_bytes()),
        "macs": int(graph.macs()),
    }
    if latency_model is not None:
        objectives["latency_seconds"] = float(latency_model.predict_seconds(graph))
    return objectives


def _make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle_seed: Optional[int]):
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((x, y)).cache()
    if shuffle_seed is not None:
        data = data.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _best_weights_callback():
    import keras

    class KeepBestWeights(keras.callbacks.Callback):
        """Remember the weights of the epoch with the best validation accuracy."""

        def __init__(self):
            super().__init__()
            self.best_accuracy = -math.inf
            self.best_weights = None

        def on_epoch_end(self, epoch, logs=None):
            accuracy = (logs or {}).get("val_accuracy")
            if accuracy is not None and accuracy > self.best_accuracy:
                self.best_accuracy = float(accuracy)
                self.best_weights = self.model.get_weights()

    return KeepBestWeights()


def train_candidate(architecture: Any, training_config: Any, splits: Any,
                    input_shape: tuple[int, ...], num_classes: int, seed: int,
                    save_model_path: Optional[str] = None) -> TrainingResult:
    """Build, train and test one architecture; free the model's memory afterwards.

    Validation error and test error refer to the same weights: those of the epoch with the
    best validation accuracy. With ``save_model_path``, the model with those weights is
    saved there as a ``.keras`` file.

    Raises:
        CandidateFailed: the loss became NaN or infinite, or no epoch finished.
    """
    import keras

    keras.utils.set_random_seed(seed)
    model = architecture.build_model(input_shape, num_classes)
    try:
        model.compile(optimizer=training_config.optimizer(),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])

        train_data = _make_dataset(splits.x_train, splits.y_train, training_config.batch_size,
                                   shuffle_seed=seed)
        val_data = _make_dataset(splits.x_val, splits.y_val, training_config.batch_size, None)
        keep_best = _best_weights_callback()
        callbacks = [keep_best, keras.callbacks.TerminateOnNaN(), *training_config.callbacks()]

        started = time.perf_counter()
        history = model.fit(train_data, validation_data=val_data, epochs=training_config.epochs,
                            callbacks=callbacks, verbose=0, shuffle=False)
        train_seconds = time.perf_counter() - started

        losses = history.history.get("loss", [])
        if not losses or not all(math.isfinite(loss) for loss in losses):
            raise CandidateFailed(f"training loss became NaN or infinite (losses: {losses})")
        if keep_best.best_weights is None:
            raise CandidateFailed("no epoch reported a validation accuracy")

        model.set_weights(keep_best.best_weights)
        test_data = _make_dataset(splits.x_test, splits.y_test, training_config.batch_size, None)
        _, test_accuracy = model.evaluate(test_data, verbose=0)
        if save_model_path is not None:
            Path(save_model_path).parent.mkdir(parents=True, exist_ok=True)
            model.save(save_model_path)

        return TrainingResult(val_error=1.0 - keep_best.best_accuracy,
                              test_error=1.0 - float(test_accuracy),
                              epochs_run=len(losses), train_seconds=train_seconds)
    finally:
        del model
        keras.backend.clear_session()
        gc.collect()
