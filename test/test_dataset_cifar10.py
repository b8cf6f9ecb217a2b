import pickle
import tarfile
from collections import OrderedDict

import numpy as np
import pytest

from dataset import CIFAR10_BINARY_GROUPS, Cifar10
from dataset.cifar10_layouts import CIFAR10_CLASSES
from dataset.testing import (SHARED_DATASETS_DIR, check_split_contract, check_unit_range,
                             load_tiny, shared_example_counts, write_image)
from errors import ConfigError, DatasetError

#: The tiny layouts put every fifth of the 500 real images (10 per class) in the test split.
TEST_EVERY = 5
TRAIN_COUNT = 400


@pytest.fixture(scope="module")
def tiny_cifar():
    """500 real CIFAR-10 test images (decoded from the shipped JPEGs) and their labels."""
    tiny = load_tiny("cifar10jpeg_test500")
    return tiny["x"], tiny["y"].astype(np.int64)


def _is_test(indices):
    return np.asarray(indices) % TEST_EVERY == 0


def _test_part(x, y):
    """Return the test images in the order the folder reader uses: by class, then index."""
    indices = np.flatnonzero(_is_test(np.arange(len(y))))
    order = np.lexsort((indices, y[indices]))
    return x[indices[order]], y[indices[order]]


def _write_folders(root, x, y, suffix=".png", quality=None):
    for index, (image, label) in enumerate(zip(x, y)):
        split = "test" if _is_test(index) else "train"
        write_image(root / split / CIFAR10_CLASSES[label] / f"{index:04d}{suffix}", image,
                    quality=quality)


def _write_batches(folder, x, y, protocol=2):
    """Write the official python-batch layout: rows of red, green, then blue planes.

    Protocol 2 stores the keys as bytes, as the official files (written by Python 2) do.
    """
    folder.mkdir(parents=True)
    rows = x.transpose(0, 3, 1, 2).reshape(len(x), -1)
    key = (lambda name: name.encode()) if protocol == 2 else (lambda name: name)
    is_test = _is_test(np.arange(len(y)))
    chunks = np.array_split(np.flatnonzero(~is_test), 5)
    names = [f"data_batch_{number}" for number in range(1, 6)]
    for name, chunk in zip(names, chunks):
        batch = {key("data"): rows[chunk], key("labels"): y[chunk].tolist()}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
    test = {key("data"): rows[is_test], key("labels"): y[is_test].tolist()}
    (folder / "test_batch").write_bytes(pickle.dumps(test, protocol=protocol))


@pytest.fixture
def png_folders(tmp_path, tiny_cifar):
    root = tmp_path / "cifar10"
    _write_folders(root, *tiny_cifar)
    return root


def test_cifar10_image_folders_exact_pixels(png_folders, tiny_cifar):
    x, y = tiny_cifar
    splits = Cifar10(str(png_folders)).load()
    expected_x, expected_y = _test_part(x, y)
    assert np.array_equal(splits.y_test, expected_y)
    assert np.array_equal(splits.x_test, expected_x.astype(np.float32) / 255)


def test_cifar10_image_folders_contract(png_folders):
    dataset = Cifar10(str(png_folders.parent))
    splits = dataset.load()
    check_split_contract(dataset, splits)
    check_unit_range(splits)
    assert len(splits.y_val) == 40
    assert shared_example_counts(splits) == {"train/val": 0, "train/test": 0, "val/test": 0}


def test_cifar10_validation_stratified(png_folders, tiny_cifar):
    _, y = tiny_cifar
    splits = Cifar10(str(png_folders), validation_fraction=0.25).load()
    train_counts = np.bincount(y[~_is_test(np.arange(len(y)))], minlength=10)
    val_counts = np.bincount(splits.y_val, minlength=10)
    assert np.abs(val_counts - 0.25 * train_counts).max() <= 1


def test_cifar10_python_batches_exact_pixels(tmp_path, tiny_cifar):
    x, y = tiny_cifar
    _write_batches(tmp_path / "cifar-10-batches-py", x, y)
    splits = Cifar10(str(tmp_path)).load()
    is_test = _is_test(np.arange(len(y)))
    assert np.array_equal(splits.x_test, x[is_test].astype(np.float32) / 255)
    assert np.array_equal(splits.y_test, y[is_test])
    assert len(splits.y_train) + len(splits.y_val) == TRAIN_COUNT


def test_cifar10_python3_batch_keys(tmp_path, tiny_cifar):
    _write_batches(tmp_path / "batches", *tiny_cifar, protocol=4)
    splits = Cifar10(str(tmp_path / "batches")).load()
    assert len(splits.y_test) == 100


def test_cifar10_rejects_foreign_pickle_global(tmp_path, tiny_cifar):
    folder = tmp_path / "cifar-10-batches-py"
    _write_batches(folder, *tiny_cifar)
    # An OrderedDict is harmless, but it is a global outside numpy's array reconstruction.
    (folder / "data_batch_3").write_bytes(pickle.dumps(OrderedDict(data=1), protocol=2))
    with pytest.raises(DatasetError) as raised:
        Cifar10(str(tmp_path)).load()
    assert "data_batch_3" in str(raised.value)
    assert "not allowed" in str(raised.value)


def test_cifar10_missing_batch_error(tmp_path, tiny_cifar):
    folder = tmp_path / "cifar-10-batches-py"
    _write_batches(folder, *tiny_cifar)
    (folder / "test_batch").unlink()
    with pytest.raises(DatasetError, match="missing the batch file test_batch"):
        Cifar10(str(tmp_path)).load()


def test_cifar10_jpeg_archive_cached(tmp_path, tiny_cifar):
    x, y = tiny_cifar
    _write_folders(tmp_path / "jpeg", x, y, suffix=".jpg", quality=75)
    data_dir = tmp_path / "cifar10"
    data_dir.mkdir()
    with tarfile.open(data_dir / "cifar10.tar.gz", "w:gz") as archive:
        archive.add(tmp_path / "jpeg" / "train", arcname="train")
        archive.add(tmp_path / "jpeg" / "test", arcname="test")
    cache_dir = tmp_path / "cache"

    first = Cifar10(str(data_dir), cache_dir=str(cache_dir)).load()
    cache_files = list((cache_dir / "cifar10").glob("*.npz"))
    second = Cifar10(str(data_dir), cache_dir=str(cache_dir)).load()

    assert len(cache_files) == 1
    assert np.array_equal(first.x_train, second.x_train)
    expected_x, expected_y = _test_part(x, y)
    assert np.array_equal(first.y_test, expected_y)
    # JPEG at quality 75 is lossy, so the decoded pixels are only close to the originals.
    assert np.abs(first.x_test - expected_x.astype(np.float32) / 255).mean() < 0.03


def test_cifar10_binary_pair(png_folders, tiny_cifar):
    _, y = tiny_cifar
    dataset = Cifar10(str(png_folders), binary_classes=("cat", "dog"))
    splits = dataset.load()
    check_split_contract(dataset, splits)
    test_labels = _test_part(*tiny_cifar)[1]
    expected = np.sort(test_labels[np.isin(test_labels, [3, 5])] == 5).astype(np.int64)
    assert dataset.num_classes == 2
    assert np.array_equal(np.sort(splits.y_test), expected)


def test_cifar10_binary_groups_like_munas(png_folders, tiny_cifar):
    _, y = tiny_cifar
    dataset = Cifar10(str(png_folders), binary_classes=CIFAR10_BINARY_GROUPS)
    splits = dataset.load()
    expected = (_test_part(*tiny_cifar)[1] < 5).astype(np.int64)
    assert np.array_equal(splits.y_test, expected)


def test_cifar10_binary_indices_equal_names(png_folders):
    by_index = Cifar10(str(png_folders), binary_classes=(3, 5)).load()
    by_name = Cifar10(str(png_folders), binary_classes=("cat", "dog")).load()
    assert np.array_equal(by_index.y_train, by_name.y_train)


@pytest.mark.parametrize("binary_classes, fragment", [
    (("cat",), "expected two classes"),
    (("cat", "dragon"), "'dragon'"),
    (("cat", 10), "10"),
    ((("cat", "dog"), ("dog",)), "in both groups"),
    (((), ("dog",)), "empty group"),
])
def test_cifar10_binary_config_errors(binary_classes, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Cifar10(binary_classes=binary_classes)


def test_cifar10_unknown_class_folder(png_folders):
    (png_folders / "train" / "cat").rename(png_folders / "train" / "kitten")
    with pytest.raises(DatasetError, match="Unknown CIFAR-10 class folder 'kitten'"):
        Cifar10(str(png_folders)).load()


def test_cifar10_unknown_layout_error(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(DatasetError) as raised:
        Cifar10(str(tmp_path)).load()
    assert "not in a known layout" in str(raised.value)
    assert "data_batch_1" in str(raised.value)


@pytest.mark.slow
def test_cifar10_shipped_jpeg_archive(tmp_path):
    dataset = Cifar10(str(SHARED_DATASETS_DIR), cache_dir=str(tmp_path))
    splits = dataset.load()
    check_split_contract(dataset, splits)
    assert len(splits.y_train) == 45_000
    assert np.array_equal(np.bincount(splits.y_test), np.full(10, 1000))


def test_cifar10_download_failure_error(monkeypatch):
    # The failure is injected so that the test never opens a network connection.
    import keras

    def fail_download():
        raise Exception("URL fetch failure: no route to host")

    monkeypatch.delenv("UNAS_DATA_DIR", raising=False)
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", fail_download)
    with pytest.raises(DatasetError) as raised:
        Cifar10().load()
    assert "could not be downloaded" in str(raised.value)
    assert "cifar-10-batches-py" in str(raised.value)
