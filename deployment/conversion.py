"""Conversion of Keras models to fully int8-quantised TFLite flatbuffers."""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from typing import TYPE_CHECKING, Iterator

import numpy as np

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

#: Input and output types that `convert_to_tflite` accepts.
IO_TYPES = ("int8", "uint8")

#: Calibration examples used when the caller passes more; the quantisation ranges of a small
#: CNN no longer change measurably beyond a few hundred examples.
DEFAULT_CALIBRATION_EXAMPLES = 200


def fix_batch_size(model: "keras.Model") -> "keras.Model":
    """Wrap ``model`` in a functional model whose input has batch size 1.

    The wrapper shares the layers and weights of ``model``. A free batch dimension makes the
    converter emit SHAPE, STRIDED_SLICE and PACK operators to compute it at run time, which
    cost operators and arena bytes that a microcontroller model does not need.
    """
    import keras

    if len(model.inputs) != 1:
        raise ValueError(
            f"Expected a model with exactly one input, but {model.name!r} has "
            f"{len(model.inputs)}; wrap multi-input models yourself before converting.")

    input_shape = tuple(model.inputs[0].shape[1:])
    if any(size is None for size in input_shape):
        raise ValueError(
            f"Expected a fully defined input shape, got {input_shape} for model "
            f"{model.name!r}; build the model with a fixed keras.Input shape.")

    inputs = keras.Input(shape=input_shape, batch_size=1, name="input")
    return keras.Model(inputs, model(inputs), name=f"{model.name}_batch1")


def _calibration_examples(representative_data: np.ndarray,
                          max_examples: int) -> Iterator[list[np.ndarray]]:
    for example in representative_data[:max_examples]:
        yield [example[np.newaxis].astype(np.float32)]


def convert_to_tflite(model: "keras.Model", representative_data: np.ndarray,
                      io_type: str = "int8",
                      max_calibration_examples: int = DEFAULT_CALIBRATION_EXAMPLES) -> bytes:
    """Convert ``model`` to a fully int8-quantised TFLite flatbuffer.

    Every operator, including the input and output, is int8 (``TFLITE_BUILTINS_INT8``), so the
    result runs on TFLite Micro without float kernels. With ``io_type="uint8"`` the converter
    adds QUANTIZE operators that convert the uint8 input and output to and from int8.

    Args:
        model: a Keras model with one input of fixed shape; the batch size is fixed to 1.
        representative_data: float32 training examples, shape ``(N, *input_shape)``, used to
            calibrate the activation ranges (the first ``max_calibration_examples`` are used).
        io_type: ``"int8"`` or ``"uint8"``, the type of the model's input and output tensors.
        max_calibration_examples: upper limit on the examples used for calibration.

    Returns:
        The flatbuffer, as the converter wrote it (buffers 16-byte aligned).
    """
    import tensorflow as tf

    if io_type not in IO_TYPES:
        raise ValueError(f"Invalid io_type {io_type!r}; expected one of {IO_TYPES}.")

    representative_data = np.asarray(representative_data)
    batch_model = fix_batch_size(model)
    expected_shape = tuple(batch_model.inputs[0].shape[1:])
    if representative_data.ndim == 0 or tuple(representative_data.shape[1:]) != expected_shape:
        raise ValueError(
            f"Expected representative data of shape (N, {', '.join(map(str, expected_shape))}) "
            f"for model {model.name!r}, got {representative_data.shape}; pass training "
            "examples preprocessed like the model's input.")
    if len(representative_data) == 0:
        raise ValueError("Representative data is empty; pass at least one training example.")

    converter = tf.lite.TFLiteConverter.from_keras_model(batch_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: _calibration_examples(
        representative_data, max_calibration_examples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    tf_io_type = tf.int8 if io_type == "int8" else tf.uint8
    converter.inference_input_type = tf_io_type
    converter.inference_output_type = tf_io_type

    # The Keras export prints the saved signature to stdout, and the converter warns that
    # no input statistics were given although the representative dataset supplies them.
    printed = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(printed):
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        flatbuffer = converter.convert()
    logger.debug("Converter output for %s:\n%s", model.name, printed.getvalue())

    logger.info("Converted %s to int8 TFLite: %d bytes", model.name, len(flatbuffer))
    return bytes(flatbuffer)
