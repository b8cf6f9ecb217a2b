import pickle

import numpy as np
import pytest

from dataset import Digits
from dataset.testing import (check_split_contract, check_unit_range, class_shares,
                             shared_example_counts)
from errors import DatasetError


@pytest.fixture(scope="module")
def digits_splits():
    dataset = Digits()
    return dataset, dataset.load()


def test_digits_contract(digits_splits):
    dataset, splits = digits_splits
    check_split_contract(dataset, splits)
    check_unit_range(splits)


def test_digits_sizes_60_20_20(digits_splits):
    _, splits = digits_splits
    total = len(splits.y_train) + len(splits.y_val) + len(splits.y_test)
    assert total == 1797
    assert len(splits.y_val) == round(0.2 * total)
    assert len(splits.y_test) == round(0.2 * total)


def test_digits_pixels_use_full_range(digits_splits):
    # Raw pixels are 0..16, so a correct scale reaches exactly 1.0.
    _, splits = digits_splits
    assert splits.x_train.max() == 1.0


def test_digits_splits_disjoint(digits_splits):
    _, splits = digits_splits
    assert shared_example_counts(splits) == {"train/val": 0, "train/test": 0, "val/test": 0}


def test_digits_stratified(digits_splits):
    _, splits = digits_splits
    overall = class_shares(np.concatenate([splits.y_train, splits.y_val, splits.y_test]), 10)
    for labels in (splits.y_train, splits.y_val, splits.y_test):
        assert np.abs(class_shares(labels, 10) - overall).max() < 0.01


def test_digits_same_seed_same_split():
    first, second = Digits(validation_seed=3).load(), Digits(validation_seed=3).load()
    assert np.array_equal(first.x_val, second.x_val)
    assert np.array_equal(first.y_train, second.y_train)


def test_digits_seed_changes_validation_only(digits_splits):
    _, default = digits_splits
    other = Digits(validation_seed=1).load()
    assert not np.array_equal(default.x_val, other.x_val)
    assert np.array_equal(default.x_test, other.x_test)


def test_digits_pickles_without_arrays(digits_splits):
    dataset, _ = digits_splits
    copy = pickle.loads(pickle.dumps(dataset))
    assert copy._splits is None
    assert copy.validation_seed == dataset.validation_seed


def test_digits_reads_no_files():
    assert Digits.uses_data_dir is False


def test_digits_rejects_bad_fraction():
    with pytest.raises(DatasetError, match="validation_fraction=1.5"):
        Digits(validation_fraction=1.5).load()
