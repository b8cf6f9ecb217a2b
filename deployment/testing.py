"""Small Keras models and data for the deployment tests and examples.

The models have a known memory behaviour under the TFLite converter of TensorFlow 2.21.
`branchy_model` gets an operator order that is not optimal. `fragmenting_model` makes
TFLM's greedy memory planner need more than the peak memory usage in one order.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

#: MNIST subset with 1,000 training and 200 test images (keys x_train, y_train, x_test,
#: y_test), shipped with the project's shared datasets.
MNIST_SUBSET = Path("/work/shared/datasets/tiny/mnist_1000_200.npz")


def load_mnist_subset(path: Path = MNIST_SUBSET) -> dict[str, np.ndarray]:
    """Return the MNIST subset as float32 images in [0, 1] of shape (N, 28, 28, 1)."""
    with np.load(path) as archive:
        return {
            "x_train": (archive["x_train"].astype(np.float32) / 255.0)[..., np.newaxis],
            "y_train": archive["y_train"].astype(np.int64),
            "x_test": (archive["x_test"].astype(np.float32) / 255.0)[..., np.newaxis],
            "y_test": archive["y_test"].astype(np.int64),
        }


def branchy_model(seed: int = 0):
    """Return a 28x28x1 model with two branches that the converter orders badly.

    The converter runs the branches in the order of the Add's inputs: the long branch
    first, while the stem's output waits for the short branch. Running the short branch
    first needs 19,600 activation bytes instead of 21,952.
    """
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((28, 28, 1), name="input")
    stem = layers.Conv2D(8, 3, padding="same", activation="relu", name="stem")(inputs)
    long = layers.Conv2D(16, 3, padding="same", activation="relu", name="long_conv1")(stem)
    long = layers.MaxPooling2D(2, name="long_pool1")(long)
    long = layers.Conv2D(16, 3, padding="same", activation="relu", name="long_conv2")(long)
    long = layers.MaxPooling2D(2, name="long_pool2")(long)
    short = layers.Conv2D(16, 3, padding="same", activation="relu", name="short_conv")(stem)
    short = layers.MaxPooling2D(4, name="short_pool")(short)
    outputs = layers.Add(name="sum")([long, short])
    outputs = layers.GlobalAveragePooling2D(name="pool")(outputs)
    outputs = layers.Dense(10, activation="softmax", name="classifier")(outputs)
    return keras.Model(inputs, outputs, name="branchy")


def branchy_graph():
    """Return the resource graph of `branchy_model`."""
    from resource_models import Graph, ops

    graph = Graph(name="branchy")
    x = graph.add_input((28, 28, 1), name="input")
    stem = graph.add(ops.Conv2D(8, 3, activation="relu"), x, name="stem")
    long = graph.add(ops.Conv2D(16, 3, activation="relu"), stem, name="long_conv1")
    long = graph.add(ops.Pool2D("max", 2), long, name="long_pool1")
    long = graph.add(ops.Conv2D(16, 3, activation="relu"), long, name="long_conv2")
    long = graph.add(ops.Pool2D("max", 2), long, name="long_pool2")
    short = graph.add(ops.Conv2D(16, 3, activation="relu"), stem, name="short_conv")
    short = graph.add(ops.Pool2D("max", 4), short, name="short_pool")
    total = graph.add(ops.Add(), long, short, name="sum")
    pooled = graph.add(ops.GlobalPool2D("avg"), total, name="pool")
    scores = graph.add(ops.Dense(10), pooled, name="classifier")
    graph.mark_output(graph.add(ops.Softmax(), scores, name="softmax"))
    return graph


def fragmenting_model(seed: int = 0):
    """Return a 28x28x1 model whose tensors can fragment TFLM's greedy memory plan.

    A wide tensor feeds a long-lived convolution and a chain of similar-sized tensors.
    When the long-lived convolution runs right after the wide one (the converter of
    TensorFlow 2.21 runs the chain first), the largest-first placement leaves gaps that
    later tensors cannot use: 67,056 activation bytes where 53,136 suffice.
    """
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((28, 28, 1), name="input")
    x = layers.MaxPooling2D(2, name="pre_pool")(inputs)
    x = layers.DepthwiseConv2D(5, padding="same", activation="relu", name="depthwise")(x)
    wide = layers.Conv2D(115, 1, name="wide")(x)
    long_lived = layers.Conv2D(85, 3, padding="same", activation="relu", name="long_lived")(wide)
    chain = layers.Conv2D(71, 1, activation="relu", name="chain1")(wide)
    chain = layers.DepthwiseConv2D(3, padding="same", activation="relu", name="chain2")(chain)
    chain = layers.Conv2D(74, 1, activation="relu", name="chain3")(chain)
    # Zero channels 74..84 make the branches' shapes equal; the converter emits PAD.
    chain = layers.Lambda(lambda tensor: keras.ops.pad(tensor, [[0, 0], [0, 0], [0, 0], [0, 11]]),
                          name="channel_pad")(chain)
    outputs = layers.Add(name="sum")([long_lived, chain])
    outputs = layers.MaxPooling2D(2, name="pool")(outputs)
    outputs = layers.GlobalAveragePooling2D(name="global_pool")(outputs)
    outputs = layers.Dense(10, activation="softmax", name="classifier")(outputs)
    return keras.Model(inputs, outputs, name="fragmenting")
