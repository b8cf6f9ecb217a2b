import shutil
import time

import keras
import numpy as np
import pytest

from dataset import MNIST, FashionMNIST
from dataset.idx import read_idx
from dataset.mnist import DEBIAN_FASHION_MNIST_DIR
from dataset.testing import (SHARED_DATASETS_DIR, check_split_contract, check_unit_range,
                             class_shares, load_tiny, shared_example_counts, write_idx)
from errors import DatasetError

MNIST_DIR = SHARED_DATASETS_DIR / "mnist"


@pytest.fixture(scope="module")
def mnist():
    # CPU time of this process, so that other jobs on a shared machine do not count.
    dataset = MNIST(str(MNIST_DIR))
    started = time.process_time()
    splits = dataset.load()
    return dataset, splits, time.process_time() - started


@pytest.fixture
def tiny_idx_dir(tmp_path):
    """A folder with the four MNIST IDX files, uncompressed, made from 1,000 + 200 real images."""
    tiny = load_tiny("mnist_1000_200")
    folder = tmp_path / "mnist"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte", tiny["x_train"], compress=False)
    write_idx(folder / "train-labels-idx1-ubyte", tiny["y_train"], compress=False)
    write_idx(folder / "t10k-images-idx3-ubyte", tiny["x_test"], compress=False)
    write_idx(folder / "t10k-labels-idx1-ubyte", tiny["y_test"], compress=False)
    return folder


@pytest.fixture
def no_data_dir_environment(monkeypatch):
    monkeypatch.delenv("UNAS_DATA_DIR", raising=False)


def test_mnist_full_contract(mnist):
    dataset, splits, _ = mnist
    check_split_contract(dataset, splits)
    check_unit_range(splits)


def test_mnist_full_sizes(mnist):
    _, splits, _ = mnist
    assert len(splits.y_train) == 54_000
    assert len(splits.y_val) == 6_000
    assert len(splits.y_test) == 10_000


def test_mnist_full_loads_fast(mnist):
    _, _, seconds = mnist
    assert seconds < 5.0


def test_mnist_validation_stratified(mnist):
    _, splits, _ = mnist
    overall = class_shares(np.concatenate([splits.y_train, splits.y_val]), 10)
    assert np.abs(class_shares(splits.y_val, 10) - overall).max() < 0.002


def test_mnist_splits_disjoint(mnist):
    _, splits, _ = mnist
    assert shared_example_counts(splits) == {"train/val": 0, "train/test": 0, "val/test": 0}


def test_mnist_test_split_is_t10k(mnist):
    _, splits, _ = mnist
    labels = read_idx(MNIST_DIR / "t10k-labels-idx1-ubyte.gz")
    assert np.array_equal(splits.y_test, labels)


def test_mnist_parent_dir_found():
    dataset = MNIST(str(SHARED_DATASETS_DIR), validation_fraction=0.5)
    assert len(dataset.load().y_test) == 10_000


def test_mnist_environment_variable(monkeypatch, tiny_idx_dir):
    monkeypatch.setenv("UNAS_DATA_DIR", str(tiny_idx_dir.parent))
    splits = MNIST().load()
    assert len(splits.y_train) + len(splits.y_val) == 1000


def test_mnist_uncompressed_files(tiny_idx_dir):
    dataset = MNIST(str(tiny_idx_dir))
    splits = dataset.load()
    check_split_contract(dataset, splits)
    assert len(splits.y_val) == 100
    assert len(splits.y_test) == 200


def test_mnist_seeded_validation(tiny_idx_dir):
    first = MNIST(str(tiny_idx_dir), validation_seed=5).load()
    again = MNIST(str(tiny_idx_dir), validation_seed=5).load()
    other = MNIST(str(tiny_idx_dir), validation_seed=6).load()
    assert np.array_equal(first.x_val, again.x_val)
    assert not np.array_equal(first.x_val, other.x_val)


def test_mnist_missing_directory_error(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError) as raised:
        MNIST(str(missing)).load()
    message = str(raised.value)
    assert str(missing) in message
    assert "does not exist" in message
    assert "train-images-idx3-ubyte.gz" in message
    assert "UNAS_DATA_DIR" in message


def test_mnist_missing_file_error(tiny_idx_dir):
    (tiny_idx_dir / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetError) as raised:
        MNIST(str(tiny_idx_dir)).load()
    message = str(raised.value)
    assert "is missing t10k-labels-idx1-ubyte.gz" in message
    assert str(tiny_idx_dir) in message


def test_mnist_truncated_gzip_error(tmp_path):
    folder = tmp_path / "mnist"
    shutil.copytree(MNIST_DIR, folder)
    truncated = folder / "train-images-idx3-ubyte.gz"
    truncated.write_bytes(truncated.read_bytes()[:100_000])
    with pytest.raises(DatasetError) as raised:
        MNIST(str(folder)).load()
    assert str(truncated) in str(raised.value)
    assert "truncated" in str(raised.value)


def test_mnist_truncated_idx_error(tiny_idx_dir):
    truncated = tiny_idx_dir / "train-images-idx3-ubyte"
    truncated.write_bytes(truncated.read_bytes()[:-1])
    with pytest.raises(DatasetError) as raised:
        MNIST(str(tiny_idx_dir)).load()
    assert str(truncated) in str(raised.value)
    assert "is truncated" in str(raised.value)


def test_mnist_bad_magic_error(tiny_idx_dir):
    broken = tiny_idx_dir / "train-labels-idx1-ubyte"
    broken.write_bytes(b"not an idx file")
    with pytest.raises(DatasetError) as raised:
        MNIST(str(tiny_idx_dir)).load()
    assert str(broken) in str(raised.value)
    assert "not an IDX file" in str(raised.value)


def test_mnist_swapped_files_error(tiny_idx_dir):
    images = tiny_idx_dir / "train-images-idx3-ubyte"
    labels = tiny_idx_dir / "train-labels-idx1-ubyte"
    image_bytes = images.read_bytes()
    images.write_bytes(labels.read_bytes())
    labels.write_bytes(image_bytes)
    with pytest.raises(DatasetError, match="has 1 dimensions, expected 3"):
        MNIST(str(tiny_idx_dir)).load()


def test_mnist_unknown_layout_error(tmp_path):
    (tmp_path / "notes.txt").write_text("no IDX files here")
    with pytest.raises(DatasetError) as raised:
        MNIST(str(tmp_path)).load()
    message = str(raised.value)
    assert "not in a known layout" in message
    assert "t10k-images-idx3-ubyte.gz" in message


def test_mnist_download_failure_error(monkeypatch, no_data_dir_environment):
    # The failure is injected so that the test never opens a network connection.
    def fail_download():
        raise Exception("URL fetch failure: no route to host")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", fail_download)
    with pytest.raises(DatasetError) as raised:
        MNIST().load()
    message = str(raised.value)
    assert "could not be downloaded" in message
    assert "--data-dir" in message
    assert "train-labels-idx1-ubyte.gz" in message


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST_DIR.is_dir(),
                    reason="needs the Debian package dataset-fashion-mnist")
def test_fashion_mnist_debian_default(no_data_dir_environment):
    dataset = FashionMNIST()
    splits = dataset.load()
    check_split_contract(dataset, splits)
    assert len(splits.y_train) + len(splits.y_val) == 60_000
    assert np.array_equal(np.bincount(splits.y_test), np.full(10, 1000))


def test_fashion_mnist_parent_dir(tmp_path, tiny_idx_dir):
    # Only the folder name matters for the lookup; the files are the tiny MNIST ones.
    shutil.copytree(tiny_idx_dir, tmp_path / "parent" / "fashion-mnist")
    splits = FashionMNIST(str(tmp_path / "parent")).load()
    assert len(splits.y_test) == 200
