"""Dataset loaders: each reads local files in a standard layout into `DatasetSplits`."""
from .base import DATA_DIR_ENVIRONMENT_VARIABLE, Dataset, DatasetSplits
from .digits import Digits
from .mnist import MNIST, FashionMNIST

__all__ = [
    "DATA_DIR_ENVIRONMENT_VARIABLE",
    "Dataset",
    "DatasetSplits",
    "Digits",
    "FashionMNIST",
    "MNIST",
]
