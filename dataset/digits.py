"""scikit-learn's bundled 8x8 handwritten digits: the project's default dataset, no files needed."""
from __future__ import annotations

import logging

import numpy as np

from .base import Dataset, DatasetSplits
from .splits import TEST_SPLIT_SEED, held_out_count, stratified_split_without_duplicates

logger = logging.getLogger(__name__)

#: The digits' pixel values are integers in [0, 16].
MAX_PIXEL_VALUE = 16.0


class Digits(Dataset):
    """The 1,797 8x8 grayscale digit images of ``sklearn.datasets.load_digits``, 10 classes.

    Train, validation and test splits are stratified by class. The test split is fixed by
    `TEST_SPLIT_SEED`, so ``validation_seed`` only changes which examples validate.

    Args:
        validation_seed: seed of the validation split. Defaults to 0.
        validation_fraction: share of all examples used for validation. Defaults to 0.2.
        test_fraction: share of all examples used for testing. Defaults to 0.2, so the
            default split is 60/20/20.
    """

    name = "digits"
    uses_data_dir = False

    def __init__(self, validation_seed: int = 0, validation_fraction: float = 0.2,
                 test_fraction: float = 0.2):
        super().__init__(data_dir=None, validation_seed=validation_seed)
        self.validation_fraction = validation_fraction
        self.test_fraction = test_fraction

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (8, 8, 1)

    @property
    def num_classes(self) -> int:
        return 10

    def _load_splits(self) -> DatasetSplits:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = (digits.images.astype(np.float32) / MAX_PIXEL_VALUE)[..., np.newaxis]
        y = digits.target.astype(np.int64)

        # Both sizes are shares of the whole dataset, so convert the validation share to a
        # count before it is taken from what the test split leaves.
        validation_count = held_out_count(self.validation_fraction, len(y), "validation_fraction")
        rest, test = stratified_split_without_duplicates(x, y, self.test_fraction,
                                                         TEST_SPLIT_SEED,
                                                         setting_name="test_fraction")
        train, validation = stratified_split_without_duplicates(
            x[rest], y[rest], validation_count, self.validation_seed,
            setting_name="validation_fraction")
        train, validation = rest[train], rest[validation]

        logger.debug("Digits split: %d train, %d validation, %d test",
                     len(train), len(validation), len(test))
        return DatasetSplits(x_train=x[train], y_train=y[train], x_val=x[validation],
                             y_val=y[validation], x_test=x[test], y_test=y[test])
