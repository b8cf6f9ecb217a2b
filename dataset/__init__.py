"""Dataset loaders: each reads local files in a standard layout into `DatasetSplits`."""
from .base import DATA_DIR_ENVIRONMENT_VARIABLE, Dataset, DatasetSplits
from .chars74k import Chars74K
from .cifar10 import CIFAR10_BINARY_GROUPS, Cifar10
from .digits import Digits
from .fsdd import FreeSpokenDigits
from .mnist import MNIST, FashionMNIST
from .speech_commands import SPEECH_COMMANDS_WORDS, SpeechCommands

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
    "MNIST",
    "SPEECH_COMMANDS_WORDS",
    "SpeechCommands",
]
