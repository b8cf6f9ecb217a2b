"""Int8 conversion with the real TFLite converter and LiteRT inference."""
import numpy as np
import pytest

from deployment import flatbuffer, testing
from deployment.conversion import convert_to_tflite
from deployment.litert import evaluate_tflite_accuracy, run_litert


@pytest.fixture(scope="module")
def mnist():
    return testing.load_mnist_subset()


@pytest.fixture(scope="module")
def trained_model(mnist):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(mnist["x_train"], mnist["y_train"], epochs=2, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def int8_model(trained_model, mnist):
    return convert_to_tflite(trained_model, mnist["x_train"][:100])


def test_conversion_int8_input_output(int8_model):
    model = flatbuffer.read_model(int8_model)
    subgraph = model.subgraphs[0]
    input_tensor = subgraph.tensors[int(subgraph.inputs[0])]
    output_tensor = subgraph.tensors[int(subgraph.outputs[0])]

    assert flatbuffer.tensor_type_name(input_tensor) == "INT8"
    assert flatbuffer.tensor_type_name(output_tensor) == "INT8"


def test_conversion_fixes_batch_size(int8_model):
    model = flatbuffer.read_model(int8_model)
    subgraph = model.subgraphs[0]
    types = {flatbuffer.operator_type_name(model, operator) for operator in subgraph.operators}

    assert list(subgraph.tensors[int(subgraph.inputs[0])].shape) == [1, 28, 28, 1]
    assert not types & {"SHAPE", "STRIDED_SLICE", "PACK"}


def test_conversion_quantizes_every_activation(int8_model):
    model = flatbuffer.read_model(int8_model)
    subgraph = model.subgraphs[0]
    float_activations = [
        flatbuffer.tensor_name(tensor) for tensor in subgraph.tensors
        if not flatbuffer.is_constant(model, tensor)
        and flatbuffer.tensor_type_name(tensor) == "FLOAT32"
    ]

    assert float_activations == []


def test_uint8_io_adds_quantize(trained_model, mnist):
    uint8_model = convert_to_tflite(trained_model, mnist["x_train"][:50], io_type="uint8")
    model = flatbuffer.read_model(uint8_model)
    subgraph = model.subgraphs[0]
    types = [flatbuffer.operator_type_name(model, operator) for operator in subgraph.operators]

    assert flatbuffer.tensor_type_name(subgraph.tensors[int(subgraph.inputs[0])]) == "UINT8"
    assert flatbuffer.tensor_type_name(subgraph.tensors[int(subgraph.outputs[0])]) == "UINT8"
    assert types[0] == "QUANTIZE"
    assert types[-1] == "QUANTIZE"

    outputs = run_litert(uint8_model, mnist["x_test"][:5])
    assert outputs.dtype == np.uint8


def test_int8_accuracy_near_float(trained_model, int8_model, mnist):
    float_accuracy = trained_model.evaluate(mnist["x_test"], mnist["y_test"], verbose=0)[1]
    int8_accuracy = evaluate_tflite_accuracy(int8_model, mnist["x_test"], mnist["y_test"])

    assert float_accuracy > 0.5
    assert abs(int8_accuracy - float_accuracy) <= 0.03


def test_invalid_io_type_rejected(trained_model, mnist):
    with pytest.raises(ValueError, match="io_type"):
        convert_to_tflite(trained_model, mnist["x_train"][:10], io_type="float32")


def test_wrong_data_shape_rejected(trained_model):
    with pytest.raises(ValueError, match=r"\(N, 28, 28, 1\)"):
        convert_to_tflite(trained_model, np.zeros((10, 32, 32, 3), np.float32))


def test_accuracy_label_count_mismatch(int8_model, mnist):
    with pytest.raises(ValueError, match="same, non-zero number"):
        evaluate_tflite_accuracy(int8_model, mnist["x_test"][:10], mnist["y_test"][:5])
