"""Inference on int8 TFLite models with the LiteRT interpreter (desktop TFLite)."""
from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)


def quantize(values: np.ndarray, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    """Quantise float ``values`` to ``dtype`` with the affine map ``q = round(x / scale) + zp``."""
    info = np.iinfo(dtype)
    quantized = np.round(np.asarray(values, np.float32) / scale) + zero_point
    return np.clip(quantized, info.min, info.max).astype(dtype)


def dequantize(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Map quantised ``values`` back to float32 with ``x = (q - zp) * scale``."""
    return ((np.asarray(values, np.float32) - zero_point) * scale).astype(np.float32)


def _make_interpreter(tflite_bytes: bytes, reference_kernels: bool):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # The reference kernels compute the same integer arithmetic as TFLite Micro's kernels;
    # the default resolver adds XNNPACK, which may round some outputs differently.
    resolver = OpResolverType.BUILTIN_REF if reference_kernels else OpResolverType.AUTO
    interpreter = Interpreter(model_content=bytes(tflite_bytes),
                              experimental_op_resolver_type=resolver)
    try:
        interpreter.allocate_tensors()
    except RuntimeError as error:
        if reference_kernels:
            raise
        # XNNPACK rejects some int8 models ("failed to create XNNPACK runtime"); the
        # builtin kernels without delegates run them.
        logger.info("LiteRT's XNNPACK delegate failed (%s); using the builtin kernels.",
                    str(error).strip())
        interpreter = Interpreter(
            model_content=bytes(tflite_bytes),
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        interpreter.allocate_tensors()
    return interpreter


def _check_examples(x: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != len(input_shape) or tuple(x.shape[1:]) != tuple(input_shape[1:]):
        raise ValueError(
            f"Expected examples of shape (N, {', '.join(map(str, input_shape[1:]))}) for this "
            f"TFLite model, got {x.shape}.")
    return x


def run_litert(tflite_bytes: bytes, x: np.ndarray, reference_kernels: bool = False,
               quantized_input: bool = False) -> np.ndarray:
    """Run the model on each example of ``x`` and return the raw quantised outputs.

    Args:
        tflite_bytes: a TFLite flatbuffer with one input and one output.
        x: examples of shape ``(N, *input_shape)``; float32 unless ``quantized_input``.
        reference_kernels: use TFLite's reference kernels, which match TFLite Micro's
            arithmetic, in place of the optimised (XNNPACK) ones.
        quantized_input: ``x`` is already in the input tensor's integer type.

    Returns:
        An array of shape ``(N, *output_shape[1:])`` in the output tensor's integer type.
    """
    interpreter = _make_interpreter(tflite_bytes, reference_kernels)
    input_details = interpreter.get_input_details()[0]
    output_details = interpreter.get_output_details()[0]
    x = _check_examples(x, tuple(input_details["shape"]))

    if not quantized_input:
        scale, zero_point = input_details["quantization"]
        x = quantize(x, scale, zero_point, input_details["dtype"])

    outputs = []
    for example in x:
        interpreter.set_tensor(input_details["index"], example[np.newaxis])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(output_details["index"])[0].copy())
    return np.stack(outputs)


def quantize_for_model(tflite_bytes: bytes, x: np.ndarray) -> np.ndarray:
    """Quantise float examples ``x`` with the model's input scale, zero point and type."""
    interpreter = _make_interpreter(tflite_bytes, reference_kernels=True)
    input_details = interpreter.get_input_details()[0]
    x = _check_examples(x, tuple(input_details["shape"]))
    scale, zero_point = input_details["quantization"]
    return quantize(x, scale, zero_point, input_details["dtype"])


def evaluate_tflite_accuracy(tflite_bytes: bytes, x: np.ndarray, y: np.ndarray) -> float:
    """Return the top-1 accuracy of the quantised model on float examples ``x``, labels ``y``.

    Labels are class indices. The arg-max of the quantised output equals the arg-max of its
    dequantised value, because dequantisation is monotonic.
    """
    y = np.asarray(y)
    if len(x) != len(y) or len(y) == 0:
        raise ValueError(
            f"Expected the same, non-zero number of examples and labels, got {len(x)} "
            f"examples and {len(y)} labels.")

    outputs = run_litert(tflite_bytes, x)
    predictions = outputs.reshape(len(outputs), -1).argmax(axis=1)
    accuracy = float(np.mean(predictions == y.reshape(-1)))
    logger.debug("TFLite accuracy on %d examples: %.4f", len(y), accuracy)
    return accuracy
