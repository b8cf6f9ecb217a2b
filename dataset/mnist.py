"""MNIST and Fashion-MNIST: 28x28 grayscale images in 10 classes, from the four IDX files."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np

from errors import DatasetError

from .base import Dataset, DatasetSplits
from .files import locate_dataset_dir, missing_download_error
from .idx import find_idx_file, read_idx
from .splits import stratified_split_without_duplicates

logger = logging.getLogger(__name__)

#: (split, images file, labels file) without the optional ``.gz`` suffix.
IDX_FILES = (
    ("train", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    ("test", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
)


def _idx_layout(folder_name: str) -> str:
    lines = [f"  {folder_name}/"]
    for _, images, labels in IDX_FILES:
        lines += [f"    {images}.gz", f"    {labels}.gz"]
    lines.append("  (the files may also be uncompressed, without .gz)")
    return "\n".join(lines)


def _has_idx_files(folder: Path) -> bool:
    return any(find_idx_file(folder, stem) is not None
               for _, images, labels in IDX_FILES for stem in (images, labels))


class IdxImageDataset(Dataset):
    """Base class of the 28x28 grayscale datasets stored as four IDX files.

    Args:
        data_dir: the folder with the IDX files, or a parent folder that contains it. Defaults
            to ``$UNAS_DATA_DIR``, then to the Keras download in ``~/.keras/datasets``.
        validation_seed: seed of the validation split. Defaults to 0.
        validation_fraction: share of the training set held out for validation, stratified
            by class. Defaults to 0.1.
    """

    #: Subfolder names looked up under a parent data directory.
    folder_names: tuple[str, ...] = ()

    def __init__(self, data_dir: Optional[str] = None, validation_seed: int = 0,
                 validation_fraction: float = 0.1):
        super().__init__(data_dir=data_dir, validation_seed=validation_seed)
        self.validation_fraction = validation_fraction

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (28, 28, 1)

    @property
    def num_classes(self) -> int:
        return 10

    @property
    def layout(self) -> str:
        """The expected files, as shown in error messages."""
        return _idx_layout(self.folder_names[0])

    def _load_splits(self) -> DatasetSplits:
        (x_train, y_train), (x_test, y_test) = self._read_arrays()

        train, validation = stratified_split_without_duplicates(
            x_train, y_train, self.validation_fraction, self.validation_seed,
            setting_name="validation_fraction")
        return DatasetSplits(
            x_train=_to_float(x_train[train]), y_train=y_train[train].astype(np.int64),
            x_val=_to_float(x_train[validation]), y_val=y_train[validation].astype(np.int64),
            x_test=_to_float(x_test), y_test=y_test.astype(np.int64),
        )

    def _read_arrays(self):
        """Return ``((x_train, y_train), (x_test, y_test))`` as uint8 arrays."""
        root = self.resolve_data_dir()
        if root is None:
            root = self._default_dir()
        if root is None:
            return self._download()

        folder = locate_dataset_dir(root, self.name, self.folder_names, _has_idx_files,
                                    self.layout)
        logger.info("Reading %s from %s", self.name, folder)
        return tuple(self._read_split(folder, images, labels) for _, images, labels in IDX_FILES)

    def _read_split(self, folder: Path, images_stem: str, labels_stem: str):
        paths = {stem: find_idx_file(folder, stem) for stem in (images_stem, labels_stem)}
        missing = [stem for stem, path in paths.items() if path is None]
        if missing:
            raise DatasetError(
                f"{folder} is missing {', '.join(f'{stem}.gz' for stem in missing)} (or the "
                f"same file uncompressed). Expected this layout:\n{self.layout}"
            )

        images = read_idx(paths[images_stem], expected_ndim=3)
        labels = read_idx(paths[labels_stem], expected_ndim=1)
        if images.shape[1:] != (28, 28) or images.dtype != np.uint8:
            raise DatasetError(f"{paths[images_stem]} contains {images.dtype} images of shape "
                               f"{images.shape[1:]}, expected uint8 images of shape (28, 28).")
        if len(images) != len(labels):
            raise DatasetError(f"{paths[images_stem]} has {len(images)} images but "
                               f"{paths[labels_stem]} has {len(labels)} labels. They must match.")
        if labels.size and labels.max() >= self.num_classes:
            raise DatasetError(f"{paths[labels_stem]} contains label {int(labels.max())}, "
                               f"expected labels in [0, {self.num_classes}).")
        return images, labels

    def _default_dir(self) -> Optional[Path]:
        """Return a system-wide folder to read when no directory was given, if one exists."""
        return None

    def _download(self):
        raise NotImplementedError


def _to_float(images: np.ndarray) -> np.ndarray:
    return (images.astype(np.float32) / 255.0)[..., np.newaxis]


def _keras_download(dataset_name: str, keras_module_name: str, layout: str):
    import keras

    logger.info("No data directory given, so loading %s through keras.datasets (downloads to "
                "~/.keras/datasets on first use)", dataset_name)
    module = getattr(keras.datasets, keras_module_name)
    try:
        return module.load_data()
    except Exception as error:
        # keras.utils.get_file raises a bare Exception for network failures, so nothing
        # narrower catches them.
        raise missing_download_error(dataset_name, layout, error) from error


class MNIST(IdxImageDataset):
    """MNIST handwritten digits: 60,000 training and 10,000 test images."""

    name = "mnist"
    folder_names = ("mnist", "MNIST")

    def _download(self):
        return _keras_download(self.name, "mnist", self.layout)


#: Install folder of the IDX files from the Debian package ``dataset-fashion-mnist``.
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


class FashionMNIST(IdxImageDataset):
    """Fashion-MNIST clothing images: 60,000 training and 10,000 test images.

    With no directory given, the loader reads `DEBIAN_FASHION_MNIST_DIR` when it exists
    (``apt-get install dataset-fashion-mnist``) and downloads through Keras otherwise.
    """

    name = "fashion_mnist"
    folder_names = ("fashion_mnist", "fashion-mnist", "FashionMNIST")

    def _default_dir(self) -> Optional[Path]:
        if DEBIAN_FASHION_MNIST_DIR.is_dir():
            return DEBIAN_FASHION_MNIST_DIR
        return None

    def _download(self):
        return _keras_download(self.name, "fashion_mnist", self.layout)
