"""Model generation for latency benchmarks and the latency model fitted to latencies."""
import csv
import json
import logging

import numpy as np
import pytest

from cnn import CnnSearchSpace
from deployment.latency_model import LatencyModel, op_kind
from generate_tflite_models import CSV_COLUMNS, generate
from resource_models.tflite_reader import read_tflite

# Invented per-kind costs (seconds per op, seconds per MAC) that synthetic latencies follow.
TRUE_COSTS = {
    "Conv2D": (40e-6, 4e-9), "DepthwiseConv2D": (30e-6, 9e-9), "Dense": (10e-6, 2e-9),
    "Pool2D": (15e-6, 0.0), "GlobalPool2D": (12e-6, 0.0), "Add": (8e-6, 0.0),
    "Pad": (6e-6, 0.0), "Reshape": (1e-6, 0.0), "Softmax": (5e-6, 0.0),
}


def true_latency(graph) -> float:
    return sum(TRUE_COSTS[op_kind(node)][0] + TRUE_COSTS[op_kind(node)][1] * node.macs()
               for node in graph.ops)


@pytest.fixture(scope="module")
def graphs():
    space = CnnSearchSpace()
    rng = np.random.default_rng(3)
    return [space.random_architecture(rng, (28, 28, 1)).build_resource_graph((28, 28, 1), 10)
            for _ in range(40)]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("latency_models")
    rows = generate(count=3, output_dir=folder, seed=1, input_shape=(28, 28, 1),
                    num_classes=10, max_macs=2e6, max_model_size=100_000)
    return folder, rows


def test_fit_predicts_held_out(graphs):
    model = LatencyModel.fit(graphs[:30], [true_latency(graph) for graph in graphs[:30]])

    for graph in graphs[30:]:
        assert model.predict_seconds(graph) == pytest.approx(true_latency(graph), rel=1e-6)
    assert model.fit_summary["models"] == 30
    assert model.fit_summary["rmse_ms"] < 1e-6


def test_save_load_round_trip(graphs, tmp_path):
    model = LatencyModel.fit(graphs[:30], [true_latency(graph) for graph in graphs[:30]])
    path = tmp_path / "latency.json"
    model.save(path)
    loaded = LatencyModel.load(path)

    assert loaded.seconds_per_op == model.seconds_per_op
    assert loaded.seconds_per_mac == model.seconds_per_mac
    assert loaded.predict_seconds(graphs[35]) == model.predict_seconds(graphs[35])


def test_load_rejects_other_format(tmp_path):
    path = tmp_path / "latency.json"
    path.write_text(json.dumps({"format_version": 99, "coefficients": {}}))

    with pytest.raises(ValueError, match="format_version"):
        LatencyModel.load(path)


def test_unknown_kind_warned(graphs, caplog):
    model = LatencyModel({"Conv2D": 1e-5}, {"Conv2D": 1e-9})
    with caplog.at_level(logging.WARNING, logger="deployment.latency_model"):
        seconds = model.predict_seconds(graphs[0])

    conv_nodes = [node for node in graphs[0].ops if op_kind(node) == "Conv2D"]
    assert seconds == pytest.approx(sum(1e-5 + 1e-9 * node.macs() for node in conv_nodes))
    assert "no coefficients" in caplog.text


def test_generate_writes_csv(generated):
    folder, rows = generated
    with (folder / "models.csv").open(newline="") as file:
        table = list(csv.DictReader(file))

    assert tuple(table[0].keys()) == CSV_COLUMNS
    assert len(table) == 3
    for row in table:
        model_bytes = (folder / row["file"]).read_bytes()
        assert int(row["file_bytes"]) == len(model_bytes)
        assert int(row["macs"]) <= 2e6
        assert int(row["tflm_arena_bytes"]) >= int(row["predicted_peak_memory_bytes"])
        assert row["latency_ms"] == ""


def test_generated_models_match_prediction(generated):
    folder, rows = generated
    for row in rows:
        graph = read_tflite(folder / row["file"]).graph

        assert graph.macs() == row["macs"]
        # Random non-zero biases keep every bias tensor in the file.
        assert graph.model_size_bytes() == row["predicted_model_size_bytes"]


def test_fit_csv_from_generated(generated, tmp_path):
    folder, rows = generated
    graphs = {row["file"]: read_tflite(folder / row["file"]).graph for row in rows}
    csv_path = folder / "measured.csv"
    with csv_path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["file", "latency_ms"])
        for name, graph in graphs.items():
            writer.writerow([name, true_latency(graph) * 1e3])

    model = LatencyModel.fit_csv(csv_path)
    for graph in graphs.values():
        assert model.predict_seconds(graph) == pytest.approx(true_latency(graph), rel=1e-6)


def test_fit_csv_missing_column(tmp_path):
    path = tmp_path / "latencies.csv"
    path.write_text("file,time\nmodel_000.tflite,3.5\n")

    with pytest.raises(ValueError, match="latency_ms"):
        LatencyModel.fit_csv(path)
