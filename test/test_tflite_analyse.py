"""The .tflite analysis command on a model from elsewhere and on this project's exports."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import tflite_micro
from deployment import testing
from deployment.conversion import convert_to_tflite
from deployment.reorder import reorder_to_optimal
from resource_models.tflite_reader import read_tflite

REPOSITORY = Path(__file__).resolve().parents[1]

# The sine model that ships with the tflite-micro package: float32 dense layers
# 1 -> 16 -> 16 -> 1 with ReLU, from TFLM's "hello world" example.
SINE_MODEL = Path(tflite_micro.__file__).parent / "python" / "tflite_micro" / "sine_float.tflite"


def run_analyse(*arguments):
    return subprocess.run([sys.executable, "-m", "resource_models.analyse", *map(str, arguments)],
                          cwd=REPOSITORY, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def branchy_file(tmp_path_factory):
    mnist = testing.load_mnist_subset()
    path = tmp_path_factory.mktemp("analyse") / "branchy.tflite"
    path.write_bytes(convert_to_tflite(testing.branchy_model(), mnist["x_train"][:64]))
    return path


def test_sine_model_json():
    result = run_analyse(SINE_MODEL, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)

    # Dense layers 1->16, 16->16 and 16->1 multiply-accumulate 16 + 256 + 16 times.
    assert report["macs"] == 16 + 256 + 16
    # float32 weights 16 + 256 + 16 and biases 16 + 16 + 1, 4 bytes each.
    assert report["model_size_bytes"] == 4 * (16 + 256 + 16 + 16 + 16 + 1)
    # The middle layer runs with its 16-float input and 16-float output live.
    assert report["peak_memory_bytes"] == 4 * (16 + 16)
    assert report["optimal_peak_memory_bytes"] == report["peak_memory_bytes"]
    assert report["optimal_operator_order"] == [0, 1, 2]
    assert [operator["type"] for operator in report["operators"]] == ["FULLY_CONNECTED"] * 3


def test_export_json_orders(branchy_file):
    result = run_analyse(branchy_file, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    expected = reorder_to_optimal(branchy_file.read_bytes())

    assert report["peak_memory_bytes"] == expected.file_order_peak_bytes
    assert report["optimal_peak_memory_bytes"] == expected.peak_bytes
    assert report["optimal_peak_memory_bytes"] < report["peak_memory_bytes"]
    assert len(report["optimal_order"]) == len(report["operators"])
    assert report["tflm_greedy_plan_bytes"] >= report["peak_memory_bytes"]


def test_export_sizes_match_graph(branchy_file):
    result = run_analyse(branchy_file, "--json")
    report = json.loads(result.stdout)
    graph = read_tflite(branchy_file).graph

    assert report["macs"] == graph.macs()
    assert report["int8_model_size_bytes"] == graph.model_size_bytes()
    # Trained or not, an int8 model stores 1 byte per weight and 4 per bias.
    assert report["model_size_bytes"] == report["int8_model_size_bytes"]


def test_text_report_and_plot(branchy_file, tmp_path):
    plot = tmp_path / "working_set.png"
    result = run_analyse(branchy_file, "--plot", plot)
    assert result.returncode == 0, result.stderr

    assert "Peak memory usage, file order:" in result.stdout
    assert "Peak memory usage, optimal order:" in result.stdout
    assert "Optimal operator order:" in result.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_file_message(tmp_path):
    result = run_analyse(tmp_path / "absent.tflite")

    assert result.returncode == 2
    assert "not found" in result.stderr


def test_not_tflite_message(tmp_path):
    path = tmp_path / "notes.tflite"
    path.write_text("not a flatbuffer")
    result = run_analyse(path)

    assert result.returncode == 2
    assert "TFL3" in result.stderr


def test_unsupported_operator_warned(tmp_path):
    import keras
    import tensorflow as tf

    # CUMSUM has no MAC formula in the reader, so it is counted with 0 MACs. The converter
    # drops an all-zero bias, so the Dense layer gets a bias of ones.
    inputs = keras.Input((8,), batch_size=1)
    outputs = keras.layers.Dense(4, bias_initializer="ones")(keras.layers.Lambda(
        lambda tensor: keras.ops.cumsum(tensor, axis=-1))(inputs))
    converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inputs, outputs))
    path = tmp_path / "cumsum.tflite"
    path.write_bytes(converter.convert())

    result = run_analyse(path, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["unsupported_operator_types"] == ["CUMSUM"]
    assert "CUMSUM" in result.stderr
    assert report["macs"] == 8 * 4
    assert report["model_size_bytes"] == 4 * (8 * 4 + 4)
