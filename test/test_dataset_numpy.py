import numpy as np
import pytest

from dataset import NumpyDataset
from dataset.testing import (SHARED_DATASETS_DIR, check_split_contract, check_unit_range,
                             load_tiny, shared_example_counts)
from errors import DatasetError

TINY_MNIST = SHARED_DATASETS_DIR / "tiny" / "mnist_1000_200.npz"


@pytest.fixture
def arrays():
    tiny = load_tiny("mnist_1000_200")
    return {key: tiny[key] for key in ("x_train", "y_train", "x_test", "y_test")}


def _save(tmp_path, **arrays):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return str(path)


def test_numpy_tiny_mnist_contract():
    dataset = NumpyDataset(str(TINY_MNIST))
    splits = dataset.load()
    check_split_contract(dataset, splits)
    check_unit_range(splits)
    assert dataset.input_shape == (28, 28, 1)
    assert dataset.num_classes == 10


def test_numpy_uint8_scaled_exactly(arrays):
    splits = NumpyDataset(str(TINY_MNIST)).load()
    assert np.array_equal(splits.x_test[..., 0], arrays["x_test"].astype(np.float32) / 255)
    assert np.array_equal(splits.y_test, arrays["y_test"])


def test_numpy_validation_from_train():
    splits = NumpyDataset(str(TINY_MNIST), validation_fraction=0.2).load()
    assert len(splits.y_val) == 200
    assert len(splits.y_train) == 800
    assert shared_example_counts(splits)["train/val"] == 0


def test_numpy_validation_seeded():
    first = NumpyDataset(str(TINY_MNIST), validation_seed=2).load()
    again = NumpyDataset(str(TINY_MNIST), validation_seed=2).load()
    other = NumpyDataset(str(TINY_MNIST), validation_seed=3).load()
    assert np.array_equal(first.x_val, again.x_val)
    assert not np.array_equal(first.x_val, other.x_val)


def test_numpy_folder_with_one_npz(tmp_path, arrays):
    _save(tmp_path, **arrays)
    assert NumpyDataset(str(tmp_path)).input_shape == (28, 28, 1)


def test_numpy_feature_vectors(tmp_path, arrays):
    flat = {key: value.reshape(len(value), -1) if key.startswith("x") else value
            for key, value in arrays.items()}
    dataset = NumpyDataset(_save(tmp_path, **flat))
    assert dataset.input_shape == (784,)
    assert dataset.load().x_train.shape[1:] == (784,)


def test_numpy_float_kept(tmp_path, arrays):
    arrays["x_train"] = arrays["x_train"].astype(np.float64) * 2 - 1
    arrays["x_test"] = arrays["x_test"].astype(np.float64)
    splits = NumpyDataset(_save(tmp_path, **arrays)).load()
    assert splits.x_train.dtype == np.float32
    assert splits.x_train.min() == -1.0


def test_numpy_labels_column_accepted(tmp_path, arrays):
    arrays["y_train"] = arrays["y_train"][:, np.newaxis]
    splits = NumpyDataset(_save(tmp_path, **arrays)).load()
    assert splits.y_train.ndim == 1


@pytest.mark.parametrize("change, fragment", [
    (lambda a: a.pop("y_test"), "no array 'y_test'"),
    (lambda a: a.update(y_train=a["y_train"].astype(np.float32)), "expected one integer"),
    (lambda a: a.update(y_train=np.eye(10, dtype=np.int64)[a["y_train"]]), "not one-hot"),
    (lambda a: a.update(y_test=a["y_test"].astype(np.int64) - 5), "negative label"),
    (lambda a: a.update(x_test=a["x_test"][:, :20]), "must match"),
    (lambda a: a.update(x_train=a["x_train"].astype(np.int32)), "dtype int32"),
    (lambda a: a.update(y_train=a["y_train"][:10]), "has 1000 examples but y_train has 10"),
])
def test_numpy_invalid_arrays(tmp_path, arrays, change, fragment):
    change(arrays)
    with pytest.raises(DatasetError, match=fragment):
        NumpyDataset(_save(tmp_path, **arrays)).load()


def test_numpy_object_array_rejected(tmp_path, arrays):
    arrays["x_train"] = np.array([None] * 4, dtype=object)
    path = tmp_path / "data.npz"
    np.savez(path, **arrays, allow_pickle=True)
    with pytest.raises(DatasetError, match="cannot be read without pickle"):
        NumpyDataset(str(path)).load()


def test_numpy_two_files_error(tmp_path, arrays):
    np.savez(tmp_path / "a.npz", **arrays)
    np.savez(tmp_path / "b.npz", **arrays)
    with pytest.raises(DatasetError, match="contains 2 npz files"):
        NumpyDataset(str(tmp_path)).load()


def test_numpy_missing_file(tmp_path):
    missing = tmp_path / "absent.npz"
    with pytest.raises(DatasetError) as raised:
        NumpyDataset(str(missing)).load()
    assert str(missing) in str(raised.value)
    assert "x_train" in str(raised.value)
