"""Dataset loaders: each reads local files in a standard layout into `DatasetSplits`."""
from .base import DATA_DIR_ENVIRONMENT_VARIABLE, Dataset, DatasetSplits
from .chars74k import Chars74K
from .cifar10 import CIFAR10_BINARY_GROUPS, Cifar10
from .digits import Digits
from .fsdd import FreeSpokenDigits
from .image_folder import ImageFolder
from .mnist import MNIST, FashionMNIST
from .numpy_dataset import NumpyDataset
from .speech_commands import SPEECH_COMMANDS_WORDS, SpeechCommands
from .vww import VWW_CLASS_NAMES, VisualWakeWords

__all__ = [
    "CIFAR10_BINARY_GROUPS",
    "Chars74K",
    "Cifar10",
    "DATA_DIR_ENVIRONMENT_VARIABLE",
    "Dataset",
    "DatasetSplits",
    "Digits",
    "FashionMNIST",
    "FreeSpokenDigits",
    "ImageFolder",
    "MNIST",
    "NumpyDataset",
    "SPEECH_COMMANDS_WORDS",
    "SpeechCommands",
    "VWW_CLASS_NAMES",
    "VisualWakeWords",
]
