"""Keras models of CNN architectures.

Layer order per convolution layer: [MaxPooling2D(2)] → Conv2D or DepthwiseConv2D (padding
"same", ``use_bias = not batch_norm``) → [BatchNormalization] → [ReLU]. Layer names follow
`cnn.assembly`, such as ``block0_layer1_conv`` and ``group2_add``.
"""
from __future__ import annotations

import logging
from typing import Sequence

import keras

from cnn.architecture import CnnArchitecture, ConvLayer, Pooling
from cnn.assembly import assemble
from cnn.shapes import check_input_shape, check_num_classes

logger = logging.getLogger(__name__)

#: Momentum of the batch-norm moving statistics, which inference uses. With the Keras
#: default of 0.99 they need hundreds of steps to settle, and a candidate trained for a few
#: dozen steps is evaluated with near-initial statistics. On the 8x8 digits (3 epochs, 17
#: steps each, Adam 0.01), 30 random networks had a median validation error of 0.87 with
#: 0.99 and 0.43 with 0.9 (measured on a shared 2-core machine).
BATCH_NORM_MOMENTUM = 0.9


@keras.saving.register_keras_serializable(package="unas_cnn")
class ChannelPadding(keras.layers.Layer):
    """Append ``padding`` zero channels to an ``(batch, height, width, channels)`` tensor.

    Keras has no layer that pads the channel dimension. The TFLite converter turns this one
    into a PAD op.
    """

    def __init__(self, padding: int, **kwargs):
        super().__init__(**kwargs)
        self.padding = int(padding)

    def call(self, inputs):
        return keras.ops.pad(inputs, [[0, 0], [0, 0], [0, 0], [0, self.padding]])

    def compute_output_shape(self, input_shape):
        *leading, channels = input_shape
        return (*leading, None if channels is None else channels + self.padding)

    def get_config(self):
        config = super().get_config()
        config["padding"] = self.padding
        return config


class KerasBackend:
    """Builds Keras layers for `cnn.assembly.assemble`."""

    def __init__(self, dropout: float):
        self.dropout = dropout

    def max_pool(self, x, pool_size, strides, name):
        return keras.layers.MaxPooling2D(pool_size=pool_size, strides=strides, padding="valid",
                                         name=name)(x)

    def convolution(self, x, layer: ConvLayer, output_channels: int, name: str):
        use_bias = not layer.batch_norm
        if layer.type == "DWConv2D":
            x = keras.layers.DepthwiseConv2D(
                kernel_size=layer.kernel_size, strides=layer.strides, padding="same",
                depth_multiplier=1, use_bias=use_bias, name=name)(x)
        else:
            x = keras.layers.Conv2D(
                filters=output_channels, kernel_size=layer.kernel_size, strides=layer.strides,
                padding="same", use_bias=use_bias, name=name)(x)
        if layer.batch_norm:
            x = keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM,
                                                name=f"{name}_bn")(x)
        if layer.relu:
            x = keras.layers.ReLU(name=f"{name}_relu")(x)
        return x

    def pad_channels(self, x, padding, name):
        return ChannelPadding(padding, name=name)(x)

    def add(self, xs: Sequence, name: str):
        return keras.layers.Add(name=name)(list(xs))

    def pooling(self, x, pooling: Pooling, name: str):
        if pooling.size == "global":
            layer = (keras.layers.GlobalAveragePooling2D if pooling.kind == "avg"
                     else keras.layers.GlobalMaxPooling2D)
            return layer(name=name)(x)
        layer = (keras.layers.AveragePooling2D if pooling.kind == "avg"
                 else keras.layers.MaxPooling2D)
        return layer(pool_size=pooling.size, padding="valid", name=name)(x)

    def flatten(self, x, name):
        return keras.layers.Flatten(name=name)(x)

    def dense(self, x, units, name):
        x = self._dropout(x, name)
        return keras.layers.Dense(units, activation="relu", name=name)(x)

    def classifier(self, x, num_classes, name):
        x = self._dropout(x, name)
        return keras.layers.Dense(num_classes, activation="softmax", name=name)(x)

    def _dropout(self, x, name):
        if self.dropout > 0.0:
            x = keras.layers.Dropout(self.dropout, name=f"{name}_dropout")(x)
        return x


def build_keras_model(architecture: CnnArchitecture, input_shape: tuple[int, ...],
                      num_classes: int) -> keras.Model:
    """Build the untrained Keras model of ``architecture``.

    Raises `InvalidArchitectureError` if a shape rule breaks, and ValueError if
    ``input_shape`` is not ``(height, width, channels)`` or ``num_classes`` is below 1.
    """
    shape = check_input_shape(input_shape)
    check_num_classes(num_classes)

    inputs = keras.Input(shape=shape, name="input")
    outputs, _ = assemble(architecture, KerasBackend(architecture.dropout), inputs, shape,
                          num_classes)
    return keras.Model(inputs=inputs, outputs=outputs, name=f"cnn_{architecture.fingerprint()}")
