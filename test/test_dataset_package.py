import copy
import pickle

import numpy as np
import pytest

import dataset
from dataset import (MNIST, Chars74K, Cifar10, Digits, FashionMNIST, FreeSpokenDigits,
                     ImageFolder, NumpyDataset, SpeechCommands, VisualWakeWords)
from dataset.base import Dataset
from dataset.testing import SHARED_DATASETS_DIR

#: One instance of every loader, constructed without reading any file.
LOADERS = [
    Digits(), MNIST("somewhere"), FashionMNIST(), Cifar10(binary_classes=("cat", "dog")),
    Chars74K(), SpeechCommands(), FreeSpokenDigits(), VisualWakeWords(),
    ImageFolder("photos", (32, 32)), NumpyDataset("arrays.npz"),
]


def test_package_exports_exist():
    for name in dataset.__all__:
        assert hasattr(dataset, name), name


@pytest.mark.parametrize("loader", LOADERS, ids=lambda loader: type(loader).__name__)
def test_loader_name_set(loader):
    assert loader.name
    assert isinstance(loader, Dataset)


@pytest.mark.parametrize("loader", LOADERS, ids=lambda loader: type(loader).__name__)
def test_loader_pickles_settings(loader):
    restored = pickle.loads(pickle.dumps(loader))
    assert restored.__dict__ == loader.__dict__


def test_names_unique():
    names = [loader.name for loader in LOADERS]
    assert len(names) == len(set(names))


def test_only_digits_ignores_data_dir():
    assert [type(loader).__name__ for loader in LOADERS if not loader.uses_data_dir] == ["Digits"]


def test_copy_drops_loaded_arrays():
    # The config copies a dataset before setting data_dir, so the copy must read again.
    loader = NumpyDataset(str(SHARED_DATASETS_DIR / "tiny" / "mnist_1000_200.npz"))
    loader.load()
    moved = copy.copy(loader)
    moved.data_dir = str(SHARED_DATASETS_DIR / "mnist")
    assert moved._splits is None
    assert loader._splits is not None


def test_loaded_dataset_pickles_without_arrays():
    loader = NumpyDataset(str(SHARED_DATASETS_DIR / "tiny" / "mnist_1000_200.npz"))
    splits = loader.load()
    restored = pickle.loads(pickle.dumps(loader))
    assert restored._splits is None
    assert np.array_equal(restored.load().x_test, splits.x_test)
