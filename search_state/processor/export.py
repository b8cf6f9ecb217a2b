"""Export of one candidate: its kept or retrained model as Keras, int8 TFLite, C and a card.

The architecture comes from the journal record, and the search space, dataset and training
settings from the run's copy of its config file (``config.py`` in the run folder), with the
epochs, batch size and data folder that run.json recorded. The candidate trains with the
seed the search gave it, so with the same epochs it reproduces the search's result up to
nondeterminism of TensorFlow's kernels.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

from errors import JournalError
from search_algorithms.objectives import is_feasible
from search_state.journal import CONFIG_COPY_FILE, utc_now
from search_state.processor.card import CARD_FORMAT_VERSION, write_card
from search_state.processor.runs import LoadedRun, find_candidate

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportResult:
    """Paths of the exported files, and the card's contents."""

    directory: Path
    keras_path: Path
    tflite_path: Path
    c_source_path: Path
    c_header_path: Path
    card_json_path: Path
    card_markdown_path: Path
    card: dict

    @property
    def files(self) -> list[Path]:
        return [self.keras_path, self.tflite_path, self.c_source_path, self.c_header_path,
                self.card_json_path, self.card_markdown_path]


def load_run_config(run: LoadedRun, epochs: Optional[int] = None,
                    data_dir: Optional[str] = None) -> Any:
    """Load the run's config copy with the run's epochs and data folder applied.

    ``epochs`` and ``data_dir`` replace what run.json recorded. Returns a `config.RunConfig`.

    Raises:
        JournalError: the run folder has no config copy.
        ConfigError: the config copy does not load or an override is invalid.
    """
    from config import load_config

    config_path = run.path / CONFIG_COPY_FILE
    if not config_path.is_file():
        raise JournalError(
            f"{config_path} not found: the run folder has no copy of its config file, so the "
            "candidate's search space and training settings are unknown. Copy the config file "
            f"the run was created with to {config_path}.")
    config = load_config(config_path)

    stored_training = run.config.get("training") or {}
    stored_dataset = run.config.get("dataset") or {}
    if data_dir is None and getattr(config.training.dataset, "uses_data_dir", False):
        data_dir = stored_dataset.get("data_dir")
    config = config.with_overrides(epochs=epochs or stored_training.get("epochs"),
                                   data_dir=data_dir)

    batch_size = stored_training.get("batch_size")
    if batch_size and batch_size != config.training.batch_size:
        config = replace(config, training=replace(config.training, batch_size=batch_size))

    stored_space = run.config.get("search_space")
    if stored_space and stored_space != config.search.search_space.describe():
        logger.warning("The search space of %s (%s) differs from the one run.json recorded "
                       "(%s); the export uses the config copy's.", config_path,
                       config.search.search_space.describe(), stored_space)
    return config


def _model_keeper():
    import keras

    class KeepTrainedModel(keras.callbacks.Callback):
        """Keep a reference to the model that `train_candidate` trains.

        `train_candidate` drops its own reference when it returns. It restores the best
        epoch's weights into this same model object before it tests it, so the kept model
        contains the weights that the returned errors belong to.
        """

        trained_model = None

        def on_train_end(self, logs=None):
            self.trained_model = self.model

    return KeepTrainedModel()


def train_for_export(architecture: Any, config: Any, splits: Any, seed: int):
    """Train ``architecture`` like the search did; return the Keras model and its result."""
    from model_trainer import train_candidate

    # NOTE: this relies on train_candidate restoring the best weights in place; a
    # train_candidate option that returns the model would make the contract explicit.
    keeper = _model_keeper()
    original_callbacks = config.training.callbacks
    training = replace(config.training, callbacks=lambda: [*original_callbacks(), keeper])
    dataset = config.training.dataset
    result = train_candidate(architecture, training, splits, dataset.input_shape,
                             dataset.num_classes, seed)
    if keeper.trained_model is None:
        raise RuntimeError("Training finished without calling on_train_end, so the trained "
                           "model was not kept.")
    return keeper.trained_model, result


def load_kept_model(path: Path, record: dict):
    """Load a model that the search saved (``keep_pareto_models``) and its recorded result."""
    import keras

    import cnn  # noqa: F401 - registers the custom layers that CNN models use
    from model_trainer import TrainingResult

    model = keras.models.load_model(path)
    objectives = record["objectives"]
    result = TrainingResult(val_error=objectives["val_error"],
                            test_error=objectives["test_error"],
                            epochs_run=record.get("epochs") or 0,
                            train_seconds=(record.get("timings") or {}).get("train_seconds")
                            or 0.0)
    return model, result


def _tflite_files(model: Any, splits: Any, directory: Path, stem: str) -> dict:
    """Convert, reorder and measure the int8 model; write the .tflite and the C files."""
    from deployment.conversion import convert_to_tflite
    from deployment.firmware import write_firmware
    from deployment.flatbuffer import constant_bytes, read_model
    from deployment.litert import evaluate_tflite_accuracy
    from deployment.reorder import reorder_to_optimal
    from deployment.tflm import measure_arena

    converted = convert_to_tflite(model, splits.x_train)
    # The order is optimised on the graph read from the file, which is what TFLM runs.
    reordered = reorder_to_optimal(converted)
    tflite_bytes = reordered.tflite_bytes
    tflite_path = directory / f"{stem}.tflite"
    tflite_path.write_bytes(tflite_bytes)

    arena = measure_arena(tflite_bytes)
    firmware = write_firmware(tflite_bytes, directory, name=stem,
                              arena_bytes=arena.minimal_arena_bytes)
    int8_test_accuracy = evaluate_tflite_accuracy(tflite_bytes, splits.x_test, splits.y_test)
    return {
        "tflite_path": tflite_path,
        "firmware": firmware,
        "int8_test_accuracy": int8_test_accuracy,
        "tflite": {
            "file_bytes": len(tflite_bytes),
            "weight_bytes": constant_bytes(read_model(tflite_bytes)).weight_bytes,
            "operator_order": {
                "reordered": reordered.order != sorted(reordered.order),
                "file_order_peak_bytes": reordered.file_order_peak_bytes,
                "peak_bytes": reordered.peak_bytes,
            },
        },
        "tflm": {
            "minimal_arena_bytes": arena.minimal_arena_bytes,
            "total_bytes": arena.total_bytes,
            "head_bytes": arena.head_bytes,
            "tail_bytes": arena.tail_bytes,
        },
    }


def export_candidate(run: LoadedRun, candidate_id: int, output_dir: Path,
                     epochs: Optional[int] = None,
                     data_dir: Optional[str] = None) -> ExportResult:
    """Export candidate ``candidate_id`` of ``run`` to ``candidate_<ID>/``.

    Uses the model the search kept (``keep_pareto_models``) when it exists and ``epochs`` is
    None; otherwise retrains the candidate with the run's training settings.

    Writes ``candidate_<ID>.keras``, ``candidate_<ID>.tflite`` (int8, operators in an order
    of minimum peak memory usage), ``candidate_<ID>.c`` and ``.h`` (the model as a C array,
    with the TFLM arena size measured on this machine), and ``card.json`` and ``card.md``.

    Raises:
        CandidateNotFoundError: the id is not in the journal, or the candidate failed.
        JournalError, ConfigError, DatasetError: the run's config copy or data is missing,
            or the architecture does not fit the config copy's search space.
        model_trainer.CandidateFailed: the loss became NaN or infinite during retraining.
    """
    from model_trainer import resource_objectives

    record = find_candidate(run, candidate_id)
    config = load_run_config(run, epochs=epochs, data_dir=data_dir)
    dataset = config.training.dataset
    space = config.search.search_space

    # Rebuild and check the architecture before the data loads and training starts.
    try:
        architecture = space.architecture_from_dict(record["architecture"])
        space.validate(architecture, dataset.input_shape)
    except ValueError as error:
        raise JournalError(
            f"Candidate {candidate_id}'s architecture in the journal of {run.path} is invalid "
            f"for the search space {space.describe()} of the config copy: {error}. Was the "
            "config copy edited after the run?") from error
    splits = dataset.load()
    predicted = resource_objectives(architecture, dataset.input_shape, dataset.num_classes)
    searched = {name: record["objectives"][name] for name in predicted}
    if predicted != searched:
        logger.warning("Candidate %d: the resource model now predicts %s, but the search "
                       "recorded %s; the resource model changed since the run.",
                       candidate_id, predicted, searched)

    seed = int(record.get("seed") or 0)
    kept = run.path / record["model_file"] if record.get("model_file") else None
    if kept is not None and kept.is_file() and epochs is None:
        model, result = load_kept_model(kept, record)
        source = "kept by the search"
        logger.info("Using candidate %d's model kept by the search: %s.", candidate_id, kept)
    else:
        logger.info("Training candidate %d of %s for %d epochs (seed %d).", candidate_id,
                    run.label, config.training.epochs, seed)
        model, result = train_for_export(architecture, config, splits, seed)
        source = "retrained for the export"

    directory = Path(output_dir) / f"candidate_{candidate_id}"
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"candidate_{candidate_id}"
    keras_path = directory / f"{stem}.keras"
    model.save(keras_path)
    deployed = _tflite_files(model, splits, directory, stem)

    exported_objectives = {"val_error": result.val_error, **predicted}
    card = {
        "format_version": CARD_FORMAT_VERSION,
        "created_at": utc_now(),
        "candidate_id": candidate_id,
        "run": {"name": run.metadata.get("name"), "path": str(run.path),
                "round": record.get("round")},
        "dataset": {"name": dataset.name, "input_shape": list(dataset.input_shape),
                    "num_classes": dataset.num_classes},
        "architecture": record["architecture"],
        "training": {"source": source, "epochs": config.training.epochs,
                     "epochs_run": result.epochs_run,
                     "batch_size": config.training.batch_size, "seed": seed,
                     "train_seconds": result.train_seconds},
        "accuracy": {"float_validation": 1.0 - result.val_error,
                     "float_test": 1.0 - result.test_error,
                     "int8_test": deployed["int8_test_accuracy"],
                     "test_examples": int(len(splits.y_test))},
        "search_result": {**record["objectives"], "epochs": record.get("epochs")},
        "predicted_resources": predicted,
        "bounds": run.bounds,
        "feasible": is_feasible(exported_objectives, run.bounds),
        "tflite": deployed["tflite"],
        "tflm": deployed["tflm"],
        "files": {"keras": keras_path.name, "tflite": deployed["tflite_path"].name,
                  "c_source": deployed["firmware"].source.name,
                  "c_header": deployed["firmware"].header.name},
    }
    card_json, card_markdown = write_card(card, directory)
    return ExportResult(directory=directory, keras_path=keras_path,
                        tflite_path=deployed["tflite_path"],
                        c_source_path=deployed["firmware"].source,
                        c_header_path=deployed["firmware"].header, card_json_path=card_json,
                        card_markdown_path=card_markdown, card=card)
