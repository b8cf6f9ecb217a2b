"""Domains of the values that a CNN architecture is made of.

The variables reuse `schema_types`, so `contains` checks a value and `sample` draws one
uniformly. The names match the keys of `CnnArchitecture.to_dict`.
"""
from schema_types import Boolean, Categorical, Discrete

#: ``DWConv2D`` is depthwise with depth multiplier 1, so it keeps its input's channels and
#: has no ``filters``. ``1x1Conv2D`` always has kernel size 1.
LAYER_TYPES = ("Conv2D", "1x1Conv2D", "DWConv2D")

CONV_BLOCK_COUNT = Discrete("conv_blocks", bounds=(1, 10))
LAYER_COUNT = Discrete("layers", bounds=(1, 3))
LAYER_TYPE = Categorical("type", values=LAYER_TYPES)
KERNEL_SIZE = Discrete("kernel_size", bounds=(3, 7), increment=2)
FILTERS = Discrete("filters", bounds=(1, 128))
STRIDE2 = Boolean("stride2")
PRE_POOL = Boolean("pre_pool")
BATCH_NORM = Boolean("batch_norm")
RELU = Boolean("relu")
IS_BRANCH = Boolean("is_branch")

POOLING_KIND = Categorical("kind", values=("avg", "max"))
#: Integer sizes are square windows whose stride equals the size. "global" reduces the
#: whole feature map to one value per channel.
POOLING_SIZE = Categorical("size", values=(2, 4, 6, "global"))

DENSE_LAYER_COUNT = Discrete("dense_layers", bounds=(1, 3))
UNITS = Discrete("units", bounds=(10, 256))

#: Window and stride of the optional max pooling that runs before a convolution.
PRE_POOL_SIZE = 2
