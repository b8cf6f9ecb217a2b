"""Morphisms of the CNN search space: small random changes to one architecture.

Each morphism is a function ``(architecture, rng, input_shape) -> architecture`` that draws
where and how to change, and returns a new architecture. The dataclasses are frozen, so the
input is never modified. A morphism may return an invalid architecture or an unchanged one:
`mutate` checks each result, draws again a bounded number of times, and then falls back to
another morphism.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from cnn import domains
from cnn.architecture import CnnArchitecture, ConvBlock, ConvLayer
from cnn.random_generator import (next_block_input_shape, random_conv_block, random_conv_layer,
                                  random_dense_layer, random_pooling)
from cnn.shapes import Shape
from errors import InvalidArchitectureError

logger = logging.getLogger(__name__)

FILTER_STEPS = (1, 3, 5)
#: Unit steps span the 10–256 domain in a few moves while still allowing fine tuning.
UNIT_STEPS = (1, 4, 16)

#: Draws of one morphism before `mutate` falls back to another one.
MAX_ATTEMPTS = 10


# --- convolution blocks -------------------------------------------------------------------

def add_block(architecture: CnnArchitecture, rng: np.random.Generator,
              input_shape: Shape) -> CnnArchitecture:
    """Insert a one-layer block at a random position after block 0."""
    blocks = list(architecture.conv_blocks)
    index = int(rng.integers(1, len(blocks) + 1))
    is_branch = bool(rng.integers(2))
    block_input = next_block_input_shape(blocks[:index], input_shape, is_branch)
    blocks.insert(index, random_conv_block(rng, block_input, is_branch, layer_count=1))
    return replace(architecture, conv_blocks=tuple(blocks))


def remove_block(architecture: CnnArchitecture, rng: np.random.Generator,
                 input_shape: Shape) -> CnnArchitecture:
    """Remove a random block. A branch right after a removed non-branch block takes its place."""
    blocks = list(architecture.conv_blocks)
    index = int(rng.integers(len(blocks)))
    removed = blocks.pop(index)
    if not removed.is_branch and index < len(blocks) and blocks[index].is_branch:
        blocks[index] = replace(blocks[index], is_branch=False)
    return replace(architecture, conv_blocks=tuple(blocks))


def toggle_branch(architecture: CnnArchitecture, rng: np.random.Generator,
                  input_shape: Shape) -> CnnArchitecture:
    """Make a random block after block 0 a branch, or a branch an ordinary block."""
    index = int(rng.integers(1, len(architecture.conv_blocks)))
    block = architecture.conv_blocks[index]
    return _replace_block(architecture, index, replace(block, is_branch=not block.is_branch))


def insert_layer(architecture: CnnArchitecture, rng: np.random.Generator,
                 input_shape: Shape) -> CnnArchitecture:
    """Insert a random layer at a random position of a block that has room for it."""
    indices = [index for index, block in enumerate(architecture.conv_blocks)
               if len(block.layers) < domains.LAYER_COUNT.bounds[1]]
    index = indices[int(rng.integers(len(indices)))]
    block = architecture.conv_blocks[index]

    # No layer of the block receives a larger input than the block's input, but a layer
    # drawn for it may not fit deeper in the block. `mutate` then draws again.
    block_input = next_block_input_shape(architecture.conv_blocks[:index], input_shape,
                                         block.is_branch)
    layers = list(block.layers)
    layers.insert(int(rng.integers(len(layers) + 1)), random_conv_layer(rng, block_input))
    return _replace_block(architecture, index, replace(block, layers=tuple(layers)))


def remove_layer(architecture: CnnArchitecture, rng: np.random.Generator,
                 input_shape: Shape) -> CnnArchitecture:
    """Remove a random layer of a block that has more than one."""
    indices = [index for index, block in enumerate(architecture.conv_blocks)
               if len(block.layers) > domains.LAYER_COUNT.bounds[0]]
    index = indices[int(rng.integers(len(indices)))]
    block = architecture.conv_blocks[index]
    layers = list(block.layers)
    layers.pop(int(rng.integers(len(layers))))
    return _replace_block(architecture, index, replace(block, layers=tuple(layers)))


# --- convolution layers -------------------------------------------------------------------

def toggle_batch_norm(architecture: CnnArchitecture, rng: np.random.Generator,
                      input_shape: Shape) -> CnnArchitecture:
    """Flip ``batch_norm`` of a random layer."""
    return _toggle_layer_flag(architecture, rng, "batch_norm")


def toggle_relu(architecture: CnnArchitecture, rng: np.random.Generator,
                input_shape: Shape) -> CnnArchitecture:
    """Flip ``relu`` of a random layer."""
    return _toggle_layer_flag(architecture, rng, "relu")


def toggle_pre_pool(architecture: CnnArchitecture, rng: np.random.Generator,
                    input_shape: Shape) -> CnnArchitecture:
    """Flip ``pre_pool`` of a random layer."""
    return _toggle_layer_flag(architecture, rng, "pre_pool")


def toggle_stride(architecture: CnnArchitecture, rng: np.random.Generator,
                  input_shape: Shape) -> CnnArchitecture:
    """Flip ``stride2`` of a random layer."""
    return _toggle_layer_flag(architecture, rng, "stride2")


def change_layer_type(architecture: CnnArchitecture, rng: np.random.Generator,
                      input_shape: Shape) -> CnnArchitecture:
    """Give a random layer another type, keeping its flags and the values that still apply.

    A new kernel size or filter count is drawn where the old type had none.
    """
    block_index, layer_index, layer = _random_layer(architecture, rng)
    types = [layer_type for layer_type in domains.LAYER_TYPES if layer_type != layer.type]
    new_type = types[int(rng.integers(len(types)))]

    if new_type == "1x1Conv2D":
        kernel_size = 1
    elif layer.type == "1x1Conv2D":
        kernel_size = domains.KERNEL_SIZE.sample(rng)
    else:
        kernel_size = layer.kernel_size

    if new_type == "DWConv2D":
        filters = None
    elif layer.filters is None:
        filters = domains.FILTERS.sample(rng)
    else:
        filters = layer.filters

    changed = replace(layer, type=new_type, kernel_size=kernel_size, filters=filters)
    return _replace_layer(architecture, block_index, layer_index, changed)


def change_filters(architecture: CnnArchitecture, rng: np.random.Generator,
                   input_shape: Shape) -> CnnArchitecture:
    """Add ±1, ±3 or ±5 to the filters of a random Conv2D or 1x1Conv2D layer, clipped."""
    block_index, layer_index, layer = _random_layer(architecture, rng, _has_filters)
    filters = _step(layer.filters, FILTER_STEPS, domains.FILTERS.bounds, rng)
    return _replace_layer(architecture, block_index, layer_index, replace(layer, filters=filters))


def change_kernel_size(architecture: CnnArchitecture, rng: np.random.Generator,
                       input_shape: Shape) -> CnnArchitecture:
    """Add ±2 to the kernel size of a random Conv2D or DWConv2D layer, clipped to 3–7."""
    block_index, layer_index, layer = _random_layer(architecture, rng, _has_kernel)
    kernel_size = _step(layer.kernel_size, (domains.KERNEL_SIZE.increment,),
                        domains.KERNEL_SIZE.bounds, rng)
    return _replace_layer(architecture, block_index, layer_index,
                          replace(layer, kernel_size=kernel_size))


# --- pooling ------------------------------------------------------------------------------

def toggle_pooling(architecture: CnnArchitecture, rng: np.random.Generator,
                   input_shape: Shape) -> CnnArchitecture:
    """Remove the pooling, or add a random one that fits the feature map."""
    if architecture.pooling is not None:
        return replace(architecture, pooling=None)
    features = next_block_input_shape(architecture.conv_blocks, input_shape, is_branch=False)
    return replace(architecture, pooling=random_pooling(rng, features))


def change_pooling_type(architecture: CnnArchitecture, rng: np.random.Generator,
                        input_shape: Shape) -> CnnArchitecture:
    """Switch the pooling between average and max."""
    kind = "max" if architecture.pooling.kind == "avg" else "avg"
    return replace(architecture, pooling=replace(architecture.pooling, kind=kind))


def change_pooling_size(architecture: CnnArchitecture, rng: np.random.Generator,
                        input_shape: Shape) -> CnnArchitecture:
    """Move the pooling size one step along 2, 4, 6, global."""
    sizes = domains.POOLING_SIZE.values
    position = sizes.index(architecture.pooling.size)
    neighbours = [index for index in (position - 1, position + 1) if 0 <= index < len(sizes)]
    size = sizes[neighbours[int(rng.integers(len(neighbours)))]]
    return replace(architecture, pooling=replace(architecture.pooling, size=size))


# --- dense layers -------------------------------------------------------------------------

def add_dense_layer(architecture: CnnArchitecture, rng: np.random.Generator,
                    input_shape: Shape) -> CnnArchitecture:
    """Insert a random dense layer at a random position."""
    dense_layers = list(architecture.dense_layers)
    dense_layers.insert(int(rng.integers(len(dense_layers) + 1)), random_dense_layer(rng))
    return replace(architecture, dense_layers=tuple(dense_layers))


def remove_dense_layer(architecture: CnnArchitecture, rng: np.random.Generator,
                       input_shape: Shape) -> CnnArchitecture:
    """Remove a random dense layer."""
    dense_layers = list(architecture.dense_layers)
    dense_layers.pop(int(rng.integers(len(dense_layers))))
    return replace(architecture, dense_layers=tuple(dense_layers))


def change_units(architecture: CnnArchitecture, rng: np.random.Generator,
                 input_shape: Shape) -> CnnArchitecture:
    """Add ±1, ±4 or ±16 to the units of a random dense layer, clipped to 10–256."""
    dense_layers = list(architecture.dense_layers)
    index = int(rng.integers(len(dense_layers)))
    units = _step(dense_layers[index].units, UNIT_STEPS, domains.UNITS.bounds, rng)
    dense_layers[index] = replace(dense_layers[index], units=units)
    return replace(architecture, dense_layers=tuple(dense_layers))


# --- registry -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Morphism:
    """A named morphism and the structural condition under which it can apply."""

    name: str
    apply: Callable[[CnnArchitecture, np.random.Generator, Shape], CnnArchitecture]
    is_applicable: Callable[[CnnArchitecture], bool]


def _always(architecture: CnnArchitecture) -> bool:
    return True


def _has_filters(layer: ConvLayer) -> bool:
    return layer.type in ("Conv2D", "1x1Conv2D")


def _has_kernel(layer: ConvLayer) -> bool:
    return layer.type in ("Conv2D", "DWConv2D")


def _any_layer(predicate: Callable[[ConvLayer], bool]) -> Callable[[CnnArchitecture], bool]:
    return lambda architecture: any(predicate(layer) for _, _, layer in architecture.layers())


_MIN_BLOCKS, _MAX_BLOCKS = domains.CONV_BLOCK_COUNT.bounds
_MIN_LAYERS, _MAX_LAYERS = domains.LAYER_COUNT.bounds
_MIN_DENSE, _MAX_DENSE = domains.DENSE_LAYER_COUNT.bounds

MORPHISMS: tuple[Morphism, ...] = (
    Morphism("add_block", add_block, lambda a: len(a.conv_blocks) < _MAX_BLOCKS),
    Morphism("remove_block", remove_block, lambda a: len(a.conv_blocks) > _MIN_BLOCKS),
    Morphism("toggle_branch", toggle_branch, lambda a: len(a.conv_blocks) > 1),
    Morphism("insert_layer", insert_layer,
             lambda a: any(len(block.layers) < _MAX_LAYERS for block in a.conv_blocks)),
    Morphism("remove_layer", remove_layer,
             lambda a: any(len(block.layers) > _MIN_LAYERS for block in a.conv_blocks)),
    Morphism("toggle_batch_norm", toggle_batch_norm, _always),
    Morphism("toggle_relu", toggle_relu, _always),
    Morphism("toggle_pre_pool", toggle_pre_pool, _always),
    Morphism("toggle_stride", toggle_stride, _always),
    Morphism("change_layer_type", change_layer_type, _always),
    Morphism("change_filters", change_filters, _any_layer(_has_filters)),
    Morphism("change_kernel_size", change_kernel_size, _any_layer(_has_kernel)),
    Morphism("toggle_pooling", toggle_pooling, _always),
    Morphism("change_pooling_type", change_pooling_type, lambda a: a.pooling is not None),
    Morphism("change_pooling_size", change_pooling_size, lambda a: a.pooling is not None),
    Morphism("add_dense_layer", add_dense_layer, lambda a: len(a.dense_layers) < _MAX_DENSE),
    Morphism("remove_dense_layer", remove_dense_layer,
             lambda a: len(a.dense_layers) > _MIN_DENSE),
    Morphism("change_units", change_units, _always),
)

MORPHISM_NAMES: tuple[str, ...] = tuple(morphism.name for morphism in MORPHISMS)


def mutate(architecture: CnnArchitecture, rng: np.random.Generator, input_shape: Shape,
           validate: Callable[[CnnArchitecture], None]) -> tuple[CnnArchitecture, str]:
    """Apply one morphism, drawn uniformly among the applicable ones, and return its result.

    ``validate`` raises `InvalidArchitectureError` for an invalid result. A morphism gets
    `MAX_ATTEMPTS` draws to produce a valid architecture that differs from the input;
    otherwise another applicable morphism is drawn. Raises `InvalidArchitectureError` if
    none succeeds, which a valid input never causes because `change_units` always does.
    """
    candidates = [morphism for morphism in MORPHISMS if morphism.is_applicable(architecture)]
    while candidates:
        morphism = candidates.pop(int(rng.integers(len(candidates))))
        for attempt in range(MAX_ATTEMPTS):
            result = morphism.apply(architecture, rng, input_shape)
            if result == architecture:
                continue
            try:
                validate(result)
            except InvalidArchitectureError as error:
                logger.debug("Morphism %s attempt %d gave an invalid architecture: %s",
                             morphism.name, attempt, error)
                continue
            return result, morphism.name
        logger.debug("Morphism %s found no valid change in %d attempts; trying another.",
                     morphism.name, MAX_ATTEMPTS)

    raise InvalidArchitectureError(
        f"No morphism produced a valid change of architecture {architecture.fingerprint()} "
        f"for input shape {tuple(input_shape)}; check that the architecture itself is valid.")


# --- helpers ------------------------------------------------------------------------------

def _random_layer(architecture: CnnArchitecture, rng: np.random.Generator,
                  predicate: Callable[[ConvLayer], bool] = lambda layer: True):
    sites = [site for site in architecture.layers() if predicate(site[2])]
    return sites[int(rng.integers(len(sites)))]


def _toggle_layer_flag(architecture: CnnArchitecture, rng: np.random.Generator,
                       field_name: str) -> CnnArchitecture:
    block_index, layer_index, layer = _random_layer(architecture, rng)
    changed = replace(layer, **{field_name: not getattr(layer, field_name)})
    return _replace_layer(architecture, block_index, layer_index, changed)


def _replace_block(architecture: CnnArchitecture, index: int,
                   block: ConvBlock) -> CnnArchitecture:
    blocks = list(architecture.conv_blocks)
    blocks[index] = block
    return replace(architecture, conv_blocks=tuple(blocks))


def _replace_layer(architecture: CnnArchitecture, block_index: int, layer_index: int,
                   layer: ConvLayer) -> CnnArchitecture:
    block = architecture.conv_blocks[block_index]
    layers = list(block.layers)
    layers[layer_index] = layer
    return _replace_block(architecture, block_index, replace(block, layers=tuple(layers)))


def _step(value: int, steps: tuple[int, ...], bounds: tuple[int, int],
          rng: np.random.Generator) -> int:
    """Add a random ± step to ``value`` and clip to ``bounds``, which may give ``value`` back."""
    step = int(steps[int(rng.integers(len(steps)))]) * (1 if rng.integers(2) else -1)
    return int(min(max(value + step, bounds[0]), bounds[1]))
