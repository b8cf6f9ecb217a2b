"""The μNAS CNN search space: convolution blocks with branches, pooling and dense layers."""
from cnn.architecture import CnnArchitecture, ConvBlock, ConvLayer, DenseLayer, Pooling
from cnn.morphisms import MORPHISM_NAMES
from cnn.search_space import CnnSearchSpace

__all__ = ["CnnArchitecture", "CnnSearchSpace", "ConvBlock", "ConvLayer", "DenseLayer",
           "MORPHISM_NAMES", "Pooling"]
