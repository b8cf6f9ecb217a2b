"""The search state processor: summaries, Pareto CSV, plots, input errors and model export."""
import csv
import json
import logging
import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

import search_state_processor
from errors import JournalError
from search_state.journal import RunDirectory
from search_state.processor.runs import (CandidateNotFoundError, find_candidate,
                                         format_id_ranges, load_run, load_runs)
from search_state.processor.plots import best_feasible_by_round
from search_state.processor.summary import search_wall_seconds, summarize_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOT_FILES = ("error_vs_peak_memory.png", "error_vs_model_size.png", "error_vs_macs.png",
              "search_progress.png")

# MACs are unbounded, so the Pareto front is taken over error, peak memory and model size.
BOUNDS = {"val_error": 0.3, "peak_memory_bytes": 1000, "model_size_bytes": 2000, "macs": None}
FIRST_PROPOSAL = "2027-01-15T08:00:00+00:00"
FIRST_PROPOSAL_UNIX = datetime.fromisoformat(FIRST_PROPOSAL).timestamp()


def description(bounds=BOUNDS, rounds=10):
    """Return run.json's config as `config.RunConfig.describe` lays it out."""
    return {"config_file": "configs/example.py", "search_algorithm": "AgingEvoSearch",
            "dataset": {"class": "Digits", "name": "digits", "data_dir": None},
            "search_space": {"name": "cnn", "arguments": {"dropout": 0.0}},
            "training": {"batch_size": 32, "epochs": 1},
            "search": {"population_size": 4, "sample_size": 2, "rounds": rounds,
                       "max_parallel_evaluations": 1, "checkpoint_dir": "artifacts", "seed": 0},
            "bounds": bounds}


def record(candidate_id, val_error=None, peak=None, size=None, macs=None, status="completed",
           finished_after=None, train_seconds=2.0):
    objectives = None
    if status == "completed":
        objectives = {"val_error": val_error, "test_error": val_error + 0.01,
                      "peak_memory_bytes": peak, "model_size_bytes": size, "macs": macs}
    return {"id": candidate_id, "round": candidate_id + 1, "status": status,
            "architecture": {}, "objectives": objectives, "feasible": None,
            "seed": candidate_id, "epochs": 1,
            "error": "training loss became NaN" if status == "failed" else None,
            "algorithm": {"name": "aging_evolution", "parent_id": None, "morphism": "random"},
            "timings": {"proposed_at": FIRST_PROPOSAL,
                        "started_at": FIRST_PROPOSAL_UNIX + 1,
                        "finished_at": FIRST_PROPOSAL_UNIX
                        + (finished_after or 10 * (candidate_id + 1)),
                        "train_seconds": train_seconds},
            "worker": "127.0.0.1:1"}


HAND_WRITTEN_RECORDS = [
    record(0, 0.10, 800, 1500, 5000),    # feasible, lowest feasible error: on the front
    record(1, 0.20, 400, 1000, 9000),    # feasible, on the front
    record(2, 0.20, 400, 1000, 3000),    # ties with 1 over the front's objectives: kept too
    record(3, 0.25, 900, 1800, 4000),    # feasible, dominated by 1
    record(4, 0.05, 1200, 500, 1000),    # best error, but breaks the peak memory bound
    record(5, status="failed"),
    record(6, 0.40, 100, 100, 100, finished_after=125),  # breaks the error bound; last to finish
]


def write_run(folder, records, bounds=BOUNDS, name="hand", half_written_line=True):
    run = RunDirectory(folder)
    run.create(name, description(bounds), config_file=None)
    for item in records:
        run.append(item)
    if half_written_line:
        # What a run that is writing its next record, or that crashed mid-write, leaves.
        with open(run.journal_path, "a") as file:
            file.write('{"id": 7, "round": 8, "status": "compl')
    return folder


@pytest.fixture
def hand_run(tmp_path):
    return write_run(tmp_path / "hand", HAND_WRITTEN_RECORDS)


def run_cli(arguments):
    return search_state_processor.main([str(argument) for argument in arguments])


def read_csv_ids(path):
    with open(path, newline="") as file:
        return [int(row["id"]) for row in csv.DictReader(file)]


# --- loading and summary ------------------------------------------------------------------

def test_half_written_last_line_dropped(hand_run, caplog):
    with caplog.at_level(logging.WARNING):
        run = load_run(hand_run)
    assert [item["id"] for item in run.records] == list(range(7))
    assert "half-written" in caplog.text


def test_summary_counts(hand_run):
    summary = summarize_run(load_run(hand_run))
    assert summary.evaluated == 7
    assert summary.completed == 6
    assert summary.failed == 1
    assert summary.feasible == 4
    assert summary.rounds_planned == 10
    assert summary.pareto_size == 3


def test_summary_best_feasible_per_objective(hand_run):
    best = summarize_run(load_run(hand_run)).best
    assert (best["val_error"].candidate_id, best["val_error"].value) == (0, 0.10)
    # Candidates 1 and 2 tie on peak memory and size; the lower id is reported.
    assert best["peak_memory_bytes"].candidate_id == 1
    assert best["model_size_bytes"].candidate_id == 1
    assert (best["macs"].candidate_id, best["macs"].value) == (2, 3000)


def test_summary_without_feasible_candidates(tmp_path):
    folder = write_run(tmp_path / "run", [record(0, 0.9, 5000, 5000, 5000)],
                       half_written_line=False)
    summary = summarize_run(load_run(folder))
    assert summary.feasible == 0
    assert all(best is None for best in summary.best.values())
    assert summary.best_completed["val_error"].candidate_id == 0


def test_progress_series_by_round(hand_run):
    run = load_run(hand_run)
    # Candidate 4 (error 0.05, round 5) breaks a bound, so only the second series drops.
    assert best_feasible_by_round(run) == [0.10] * 7
    assert best_feasible_by_round(run, feasible_only=False) == [0.10] * 4 + [0.05] * 3


def test_search_time_from_timings(hand_run):
    summary = summarize_run(load_run(hand_run))
    assert summary.wall_seconds == pytest.approx(125.0)
    assert summary.train_seconds == pytest.approx(2.0 * 7)


def test_search_time_without_timings():
    assert search_wall_seconds([{"id": 0, "status": "failed", "timings": {}}]) is None


def test_summary_counts_in_flight(hand_run):
    RunDirectory(hand_run).save_in_flight([{"id": 8, "architecture": {}},
                                           {"id": 2, "architecture": {}}])
    # Candidate 2 already has a record, so only candidate 8 is still in flight.
    assert summarize_run(load_run(hand_run)).in_flight == 1


def test_completed_record_without_objectives_rejected(tmp_path):
    broken = record(0, 0.1, 10, 10, 10)
    del broken["objectives"]["macs"]
    folder = write_run(tmp_path / "run", [broken], half_written_line=False)
    with pytest.raises(JournalError, match="Candidate 0 .* objectives"):
        load_run(folder)


def test_run_json_without_bounds_rejected(tmp_path):
    folder = tmp_path / "run"
    RunDirectory(folder).create("run", {"search_space": {}, "dataset": {}}, config_file=None)
    with pytest.raises(JournalError, match="config.bounds"):
        load_run(folder)


def test_duplicate_run_names_get_suffix(tmp_path):
    first = write_run(tmp_path / "a", HAND_WRITTEN_RECORDS[:2], name="same")
    second = write_run(tmp_path / "b", HAND_WRITTEN_RECORDS[:2], name="same")
    assert [run.label for run in load_runs([first, second])] == ["same#1", "same#2"]


def test_id_ranges_compact():
    assert format_id_ranges([9, 0, 1, 2, 4, 10, 11]) == "0-2, 4, 9-11"


def test_find_candidate_unknown_id_lists_available(hand_run):
    with pytest.raises(CandidateNotFoundError, match=r"Candidate 42 not found.*0-4, 6"):
        find_candidate(load_run(hand_run), 42)


def test_find_candidate_failed_id_rejected(hand_run):
    with pytest.raises(CandidateNotFoundError, match=r"Candidate 5 .* failed.*NaN"):
        find_candidate(load_run(hand_run), 5)


# --- command line: Pareto front and plots -------------------------------------------------

def test_cli_writes_pareto_csv_with_ties(hand_run, tmp_path, capsys):
    output = tmp_path / "report"
    assert run_cli([hand_run, "--output-dir", output]) == 0
    assert sorted(read_csv_ids(output / "pareto.csv")) == [0, 1, 2]


def test_cli_prints_summary_and_front(hand_run, tmp_path, capsys):
    run_cli([hand_run, "--output-dir", tmp_path / "report"])
    printed = capsys.readouterr().out
    assert "7 evaluated of 10 rounds (6 completed, 1 failed), 4 feasible" in printed
    table = printed.split("Pareto front of feasible candidates")[1]
    table_ids = [int(line.split()[0]) for line in table.splitlines()
                 if re.match(r"\s*\d+\s+\d+\s+0\.", line)]
    assert table_ids == [0, 1, 2]


def test_cli_writes_into_run_folder_by_default(hand_run):
    assert run_cli([hand_run]) == 0
    assert (hand_run / "pareto.csv").is_file()


def assert_png_files(folder):
    for name in PLOT_FILES:
        data = (folder / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE), name
        assert len(data) > 10_000, name


def test_plots_for_one_run(hand_run, tmp_path):
    output = tmp_path / "report"
    run_cli([hand_run, "--output-dir", output])
    assert_png_files(output)


def test_plots_for_two_runs(hand_run, tmp_path):
    other_bounds = dict(BOUNDS, val_error=0.5, macs=8000)
    other = write_run(tmp_path / "other", HAND_WRITTEN_RECORDS[1:], bounds=other_bounds,
                      name="other")
    output = tmp_path / "report"
    assert run_cli([hand_run, other, "--output-dir", output]) == 0
    assert_png_files(output)
    assert sorted(read_csv_ids(output / "pareto_hand.csv")) == [0, 1, 2]
    # With MACs bounded, candidate 2 (fewer MACs than 1) dominates candidate 1, and the
    # looser error bound admits candidate 6.
    assert sorted(read_csv_ids(output / "pareto_other.csv")) == [2, 6]


def test_plots_without_completed_candidates(tmp_path):
    folder = write_run(tmp_path / "run", [record(0, status="failed")])
    assert run_cli([folder]) == 0
    assert_png_files(folder)
    assert read_csv_ids(folder / "pareto.csv") == []


# --- command line: invalid input -----------------------------------------------------------

def test_not_a_run_folder_exit_code_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert run_cli([tmp_path / "empty"]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_missing_folder_exit_code_2(tmp_path, capsys):
    assert run_cli([tmp_path / "missing"]) == 2
    assert "not found" in capsys.readouterr().err


def test_unknown_export_id_exit_code_2(hand_run, tmp_path, capsys):
    assert run_cli([hand_run, "--output-dir", tmp_path / "report", "--export", "42"]) == 2
    error = capsys.readouterr().err
    assert "Candidate 42 not found" in error
    assert "Completed candidates: 0-4, 6" in error


def test_failed_export_id_exit_code_2(hand_run, tmp_path, capsys):
    assert run_cli([hand_run, "--output-dir", tmp_path / "report", "--export", "5"]) == 2
    assert "Candidate 5 of run hand failed" in capsys.readouterr().err


def test_export_of_several_runs_rejected(hand_run, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        run_cli([hand_run, hand_run, "--export", "0"])
    assert exit_info.value.code == 2


def test_epochs_without_export_rejected(hand_run):
    with pytest.raises(SystemExit) as exit_info:
        run_cli([hand_run, "--epochs", "3"])
    assert exit_info.value.code == 2


def test_export_without_config_copy_exit_code_2(hand_run, tmp_path, capsys):
    assert run_cli([hand_run, "--output-dir", tmp_path / "report", "--export", "0"]) == 2
    assert "no copy of its config file" in capsys.readouterr().err


# --- export end to end ----------------------------------------------------------------------

CONFIG_TEXT = """\
import keras

from cnn import CnnSearchSpace
from config import AgingEvoConfig, BoundConfig, TrainingConfig
from dataset import Digits

training_config = TrainingConfig(
    dataset=Digits(),
    optimizer=lambda: keras.optimizers.Adam(learning_rate=0.01),
    batch_size=64,
    epochs=5,
)
search_config = AgingEvoConfig(search_space=CnnSearchSpace(), population_size=2, sample_size=1,
                               rounds=2)
bound_config = BoundConfig(error_bound=0.9, peak_mem_bound=50_000, model_size_bound=500_000,
                           mac_bound=20_000_000)
"""

EXPORT_ID = 3
INPUT_SHAPE = (8, 8, 1)
NUM_CLASSES = 10


def test_export_invalid_architecture_exit_code_2(tmp_path, capsys):
    config_path = tmp_path / "digits_config.py"
    config_path.write_text(CONFIG_TEXT)
    run = RunDirectory(tmp_path / "run")
    run.create("digits_export", description(), config_path)
    broken = record(0, 0.5, 10, 10, 10)
    broken["architecture"] = {"conv_blocks": "not a list"}
    run.append(broken)
    assert run_cli([run.path, "--export", "0"]) == 2
    assert "Candidate 0's architecture" in capsys.readouterr().err


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Create a real run folder with one random CNN candidate, and export it once."""
    import cnn
    from config import load_config
    from model_trainer import resource_objectives

    root = tmp_path_factory.mktemp("export")
    config_path = root / "digits_config.py"
    config_path.write_text(CONFIG_TEXT)
    # As `driver.py --epochs 1` records it: run.json records 1 epoch, the config file sets 5.
    config = load_config(config_path).with_overrides(epochs=1)
    run = RunDirectory(root / "run")
    run.create("digits_export", config.describe(), config_path)

    architecture = cnn.CnnSearchSpace().random_architecture(np.random.default_rng(0),
                                                            INPUT_SHAPE)
    searched = record(EXPORT_ID, 0.5, 0, 0, 0)
    searched["architecture"] = architecture.to_dict()
    searched["objectives"].update(resource_objectives(architecture, INPUT_SHAPE, NUM_CLASSES))
    run.append(searched)

    output = root / "report"
    exit_code = run_cli([run.path, "--output-dir", output, "--export", EXPORT_ID])
    folder = output / f"candidate_{EXPORT_ID}"
    card = json.loads((folder / "card.json").read_text()) if exit_code == 0 else None
    return {"exit_code": exit_code, "folder": folder, "card": card,
            "architecture": architecture, "config": config}


def test_export_exit_code_0(exported):
    assert exported["exit_code"] == 0


def test_export_writes_every_file(exported):
    stem = f"candidate_{EXPORT_ID}"
    for name in (f"{stem}.keras", f"{stem}.tflite", f"{stem}.c", f"{stem}.h", "card.json",
                 "card.md"):
        assert (exported["folder"] / name).stat().st_size > 0, name


def test_export_uses_run_training_settings(exported):
    training = exported["card"]["training"]
    assert training["epochs"] == 1
    assert training["batch_size"] == 64
    assert training["seed"] == EXPORT_ID


def test_export_tflite_runs_in_tflm(exported):
    from deployment.litert import quantize_for_model
    from deployment.tflm import run_tflm

    tflite = (exported["folder"] / f"candidate_{EXPORT_ID}.tflite").read_bytes()
    examples = exported["config"].training.dataset.load().x_test[:8]
    arena = exported["card"]["tflm"]["minimal_arena_bytes"]
    outputs = run_tflm(tflite, quantize_for_model(tflite, examples), arena_size=arena)
    assert outputs.shape == (8, NUM_CLASSES)


def test_export_tflm_outputs_match_litert(exported):
    from deployment.verification import compare_tflm_with_litert

    tflite = (exported["folder"] / f"candidate_{EXPORT_ID}.tflite").read_bytes()
    examples = exported["config"].training.dataset.load().x_test[:8]
    comparison = compare_tflm_with_litert(tflite, examples)
    # TFLM's kernels and LiteRT's reference kernels may round an output value one
    # quantisation step apart; this random CNN showed one such value in 80.
    assert comparison.max_abs_difference <= 1


def test_export_card_resources_match_resource_graph(exported):
    graph = exported["architecture"].build_resource_graph(INPUT_SHAPE, NUM_CLASSES)
    predicted = exported["card"]["predicted_resources"]
    assert predicted["model_size_bytes"] == graph.model_size_bytes()
    assert predicted["peak_memory_bytes"] == graph.peak_memory().peak_bytes
    assert predicted["macs"] == graph.macs()


def test_export_card_sizes_match_files(exported):
    card = exported["card"]
    tflite = exported["folder"] / f"candidate_{EXPORT_ID}.tflite"
    header = (exported["folder"] / f"candidate_{EXPORT_ID}.h").read_text()
    assert card["tflite"]["file_bytes"] == tflite.stat().st_size
    arena_define = re.search(r"#define CANDIDATE_3_ARENA_SIZE (\d+)", header)
    assert int(arena_define.group(1)) == card["tflm"]["minimal_arena_bytes"]
    assert card["tflm"]["head_bytes"] + card["tflm"]["tail_bytes"] == card["tflm"]["total_bytes"]


def test_export_card_int8_accuracy_reproducible(exported):
    from deployment.litert import evaluate_tflite_accuracy

    splits = exported["config"].training.dataset.load()
    tflite = (exported["folder"] / f"candidate_{EXPORT_ID}.tflite").read_bytes()
    accuracy = evaluate_tflite_accuracy(tflite, splits.x_test, splits.y_test)
    assert exported["card"]["accuracy"]["int8_test"] == pytest.approx(accuracy)


def test_export_keras_model_reloads_with_card_accuracy(exported):
    import keras

    import cnn  # noqa: F401  (registers the custom layers that CNN models may use)

    splits = exported["config"].training.dataset.load()
    model = keras.saving.load_model(exported["folder"] / f"candidate_{EXPORT_ID}.keras")
    _, accuracy = model.evaluate(splits.x_test, splits.y_test, verbose=0)
    assert exported["card"]["accuracy"]["float_test"] == pytest.approx(accuracy, abs=1e-6)


def test_export_card_markdown_names_candidate(exported):
    text = (exported["folder"] / "card.md").read_text()
    assert text.startswith(f"# Candidate {EXPORT_ID} of run digits_export")
