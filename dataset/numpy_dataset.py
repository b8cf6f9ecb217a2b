"""Your own arrays in an npz file: ``x_train``, ``y_train``, ``x_test``, ``y_test``."""
from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np

from errors import DatasetError

from .base import Dataset, DatasetSplits
from .files import no_download_error
from .splits import stratified_split_without_duplicates

logger = logging.getLogger(__name__)

REQUIRED_KEYS = ("x_train", "y_train", "x_test", "y_test")

LAYOUT = """\
  <name>.npz with the arrays
    x_train  (N, H, W) or (N, H, W, C) images, or (N, F) feature vectors
    y_train  (N,) integer class indices from 0
    x_test, y_test  the same for the test split
  uint8 x is divided by 255, float x is used as it is (scale it to [0, 1] yourself)"""


class NumpyDataset(Dataset):
    """A classification dataset from an npz of arrays, with no code to write.

    uint8 ``x`` is scaled to [0, 1] by 255, and float ``x`` is kept as it is. A 3-D ``x``
    (N, H, W) gets a channel axis, and 2-D ``x`` (N, F) stays a feature vector per example.
    The validation split is carved from the training arrays, stratified by class and with
    identical examples kept together.

    Args:
        path: the npz file, or a folder that contains exactly one npz. Defaults to
            ``$UNAS_DATA_DIR``.
        validation_seed: seed of the validation split. Defaults to 0.
        validation_fraction: share of the training arrays used for validation. Defaults to
            0.1.
    """

    name = "numpy"

    def __init__(self, path: Optional[str] = None, validation_seed: int = 0,
                 validation_fraction: float = 0.1):
        super().__init__(data_dir=path, validation_seed=validation_seed)
        self.validation_fraction = validation_fraction

    @property
    def input_shape(self) -> tuple[int, ...]:
        shape = _stored_shape(self._locate_file(), "x_train")[1:]
        return (*shape, 1) if len(shape) == 2 else shape

    @property
    def num_classes(self) -> int:
        path = self._locate_file()
        with np.load(path, allow_pickle=False) as archive:
            labels = [_labels(archive, key, path) for key in ("y_train", "y_test")]
        return int(max(int(split_labels.max(initial=0)) for split_labels in labels)) + 1

    def _load_splits(self) -> DatasetSplits:
        path = self._locate_file()
        logger.info("Reading arrays from %s", path)
        with np.load(path, allow_pickle=False) as archive:
            x_train = _examples(archive, "x_train", path)
            x_test = _examples(archive, "x_test", path)
            y_train, y_test = _labels(archive, "y_train", path), _labels(archive, "y_test", path)

        for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
            if len(x) != len(y):
                raise DatasetError(f"{path}: x_{split} has {len(x)} examples but y_{split} has "
                                   f"{len(y)} labels. They must match.")
        if x_train.shape[1:] != x_test.shape[1:]:
            raise DatasetError(f"{path}: x_train examples have shape {x_train.shape[1:]} but "
                               f"x_test examples {x_test.shape[1:]}. They must match.")

        train, validation = stratified_split_without_duplicates(
            x_train, y_train, self.validation_fraction, self.validation_seed,
            setting_name="validation_fraction")
        return DatasetSplits(x_train=x_train[train], y_train=y_train[train],
                             x_val=x_train[validation], y_val=y_train[validation],
                             x_test=x_test, y_test=y_test)

    def _locate_file(self) -> Path:
        path = self.resolve_data_dir()
        if path is None:
            raise no_download_error(self.name, LAYOUT)
        if path.is_dir():
            archives = sorted(path.glob("*.npz"))
            if len(archives) != 1:
                raise DatasetError(f"{path} contains {len(archives)} npz files, expected exactly "
                                   f"one. Pass the file itself. Expected this layout:\n{LAYOUT}")
            path = archives[0]
        if not path.is_file():
            raise DatasetError(f"{path} does not exist. Expected this layout:\n{LAYOUT}")
        return path


def _stored_shape(path: Path, key: str) -> tuple[int, ...]:
    """Return an array's shape from its npy header, without reading its data."""
    try:
        with zipfile.ZipFile(path) as archive, archive.open(f"{key}.npy") as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, _, _ = np.lib.format.read_array_header_1_0(member)
            else:
                shape, _, _ = np.lib.format.read_array_header_2_0(member)
    except KeyError as error:
        raise DatasetError(f"{path} has no array {key!r}. Expected this layout:\n{LAYOUT}"
                           ) from error
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise DatasetError(f"Cannot read {path}: {error}. Write it with numpy.savez.") from error
    return tuple(shape)


def _read(archive, key: str, path: Path) -> np.ndarray:
    if key not in archive.files:
        raise DatasetError(f"{path} has no array {key!r} (it has {sorted(archive.files)}). "
                           f"Expected this layout:\n{LAYOUT}")
    try:
        return archive[key]
    except ValueError as error:
        # Object arrays need pickle, which is disabled because it can run code.
        raise DatasetError(f"{path}: array {key!r} cannot be read without pickle ({error}). "
                           "Store numeric arrays only.") from error


def _examples(archive, key: str, path: Path) -> np.ndarray:
    x = _read(archive, key, path)
    if x.ndim not in (2, 3, 4):
        raise DatasetError(f"{path}: {key} has shape {x.shape}, expected (N, F), (N, H, W) or "
                           "(N, H, W, C).")
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    elif np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    else:
        raise DatasetError(f"{path}: {key} has dtype {x.dtype}, expected uint8 (scaled by 255) "
                           "or a float type (used as it is). Convert it before saving.")
    return x[..., np.newaxis] if x.ndim == 3 else x


def _labels(archive, key: str, path: Path) -> np.ndarray:
    y = _read(archive, key, path)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"{path}: {key} has dtype {y.dtype} and shape {y.shape}, expected "
                           "one integer class index per example (not one-hot).")
    if y.size and y.min() < 0:
        raise DatasetError(f"{path}: {key} contains the negative label {int(y.min())}, but labels "
                           "must be class indices from 0.")
    return y.astype(np.int64)
