"""CIFAR-10: 32x32 RGB images in 10 classes, and binary tasks built from it."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from errors import ConfigError

from .base import Dataset, DatasetSplits
from .cache import cache_root, load_arrays, save_arrays, settings_key
from .cifar10_layouts import (CIFAR10_CLASSES, LAYOUT, batches_folder, find_archive,
                              has_cifar10_layout, has_image_folders, read_archive,
                              read_batches, read_image_folders)
from .files import locate_dataset_dir, missing_download_error
from .images import to_unit_float
from .splits import stratified_split_without_duplicates

logger = logging.getLogger(__name__)

#: The grouping of μNAS's binary CIFAR-10 task, which labels original classes 0-4 as 1:
#: airplane, automobile, bird, cat and deer are label 1, the other five classes label 0.
CIFAR10_BINARY_GROUPS = (("dog", "frog", "horse", "ship", "truck"),
                         ("airplane", "automobile", "bird", "cat", "deer"))

ClassSpec = Union[int, str]
BinaryClasses = Union[tuple[ClassSpec, ClassSpec],
                      tuple[Sequence[ClassSpec], Sequence[ClassSpec]]]


class Cifar10(Dataset):
    """CIFAR-10: 50,000 training and 10,000 test images, or a two-class task made from them.

    The loader reads the official python batches, ``train/`` and ``test/`` class folders of
    images, or a tar of either (see `cifar10_layouts.LAYOUT`). Decoded images from a tar of
    image folders are cached as arrays, so the archive is decoded once.

    Args:
        data_dir: the CIFAR-10 folder or a parent folder that contains it. Defaults to
            ``$UNAS_DATA_DIR``, then to the Keras download in ``~/.keras/datasets``.
        validation_seed: seed of the validation split. Defaults to 0.
        validation_fraction: share of the training set held out for validation, stratified
            by the 10 original classes. Defaults to 0.1.
        binary_classes: None for the 10-class task. For a two-class task, either two classes
            such as ``("cat", "dog")`` (examples of other classes are dropped) or two groups
            of classes such as `CIFAR10_BINARY_GROUPS`. Classes are names or indices, and
            the label of an example is the position (0 or 1) of its class or group.
            Defaults to None.
        cache_dir: folder for decoded images. Defaults to ``$UNAS_CACHE_DIR``, then to
            ``~/.cache/unas``.
    """

    name = "cifar10"
    folder_names = ("cifar10", "cifar-10", "CIFAR10", "cifar10-jpeg")

    def __init__(self, data_dir: Optional[str] = None, validation_seed: int = 0,
                 validation_fraction: float = 0.1,
                 binary_classes: Optional[BinaryClasses] = None,
                 cache_dir: Optional[str] = None):
        super().__init__(data_dir=data_dir, validation_seed=validation_seed)
        self.validation_fraction = validation_fraction
        self.binary_classes = binary_classes
        self.cache_dir = cache_dir
        # Validate now so that a bad config fails before any file is read.
        binary_class_groups(binary_classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (32, 32, 3)

    @property
    def num_classes(self) -> int:
        return 10 if self.binary_classes is None else 2

    def _load_splits(self) -> DatasetSplits:
        (x_train, y_train), (x_test, y_test) = self._read_arrays()

        train, validation = stratified_split_without_duplicates(
            x_train, y_train, self.validation_fraction, self.validation_seed,
            setting_name="validation_fraction")
        parts = {"train": (x_train[train], y_train[train]),
                 "val": (x_train[validation], y_train[validation]),
                 "test": (x_test, y_test)}

        groups = binary_class_groups(self.binary_classes)
        if groups is not None:
            parts = {name: _relabel(x, y, groups) for name, (x, y) in parts.items()}

        return DatasetSplits(
            x_train=to_unit_float(parts["train"][0]), y_train=parts["train"][1],
            x_val=to_unit_float(parts["val"][0]), y_val=parts["val"][1],
            x_test=to_unit_float(parts["test"][0]), y_test=parts["test"][1],
        )

    def _read_arrays(self):
        root = self.resolve_data_dir()
        if root is None:
            return self._download()

        folder = locate_dataset_dir(root, self.name, self.folder_names, has_cifar10_layout,
                                    LAYOUT)
        batches = batches_folder(folder)
        if batches is not None:
            logger.info("Reading CIFAR-10 python batches from %s", batches)
            return read_batches(batches)
        if has_image_folders(folder):
            logger.info("Reading CIFAR-10 image folders from %s", folder)
            return read_image_folders(folder)
        return self._read_archive_cached(find_archive(folder))

    def _read_archive_cached(self, archive: Path):
        status = archive.stat()
        key = settings_key({"dataset": self.name, "archive": str(archive.resolve()),
                            "bytes": status.st_size, "mtime_ns": status.st_mtime_ns})
        cache_file = cache_root(self.cache_dir) / self.name / f"{archive.name}-{key}.npz"

        cached = load_arrays(cache_file)
        if cached is not None:
            logger.info("Reading decoded CIFAR-10 images from cache %s", cache_file)
            return ((cached["x_train"], cached["y_train"]), (cached["x_test"], cached["y_test"]))

        (x_train, y_train), (x_test, y_test) = read_archive(archive)
        save_arrays(cache_file, {"x_train": x_train, "y_train": y_train,
                                 "x_test": x_test, "y_test": y_test})
        return (x_train, y_train), (x_test, y_test)

    def _download(self):
        import keras

        logger.info("No data directory given, so loading CIFAR-10 through keras.datasets "
                    "(downloads to ~/.keras/datasets on first use)")
        try:
            (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
        except Exception as error:
            # keras.utils.get_file raises a bare Exception for network failures.
            raise missing_download_error(self.name, LAYOUT, error) from error
        return ((x_train, y_train.reshape(-1).astype(np.int64)),
                (x_test, y_test.reshape(-1).astype(np.int64)))


def binary_class_groups(binary_classes: Optional[BinaryClasses],
                        ) -> Optional[tuple[frozenset[int], frozenset[int]]]:
    """Return the class indices of label 0 and label 1, or None for the 10-class task.

    Raises `ConfigError` unless ``binary_classes`` is two classes or two disjoint, non-empty
    groups of classes, each class a name in `CIFAR10_CLASSES` or an index in [0, 9].
    """
    if binary_classes is None:
        return None
    expected = ("expected two classes such as ('cat', 'dog') or two groups of classes such "
                "as dataset.cifar10.CIFAR10_BINARY_GROUPS")
    if isinstance(binary_classes, (str, bytes)) or not isinstance(binary_classes, Sequence) \
            or len(binary_classes) != 2:
        raise ConfigError(f"Cifar10: binary_classes={binary_classes!r} is invalid: {expected}.")

    groups = []
    for entry in binary_classes:
        members = [entry] if isinstance(entry, (int, str, np.integer)) else list(entry)
        if not members:
            raise ConfigError(f"Cifar10: binary_classes={binary_classes!r} has an empty group: "
                              f"{expected}.")
        groups.append(frozenset(_class_index(member, binary_classes) for member in members))

    if groups[0] & groups[1]:
        shared = sorted(CIFAR10_CLASSES[index] for index in groups[0] & groups[1])
        raise ConfigError(f"Cifar10: binary_classes={binary_classes!r} puts {shared} in both "
                          "groups, but each class may be in at most one group.")
    return groups[0], groups[1]


def _class_index(member, binary_classes) -> int:
    if isinstance(member, str) and member in CIFAR10_CLASSES:
        return CIFAR10_CLASSES.index(member)
    if isinstance(member, (int, np.integer)) and not isinstance(member, bool) \
            and 0 <= member < len(CIFAR10_CLASSES):
        return int(member)
    raise ConfigError(f"Cifar10: binary_classes={binary_classes!r} contains {member!r}, which is "
                      f"not a CIFAR-10 class: expected one of {', '.join(CIFAR10_CLASSES)} or an "
                      "index in [0, 9].")


def _relabel(x: np.ndarray, y: np.ndarray, groups: tuple[frozenset[int], frozenset[int]]):
    """Keep the examples of both groups and label them with their group's position."""
    in_first = np.isin(y, list(groups[0]))
    in_second = np.isin(y, list(groups[1]))
    keep = in_first | in_second
    return x[keep], in_second[keep].astype(np.int64)
