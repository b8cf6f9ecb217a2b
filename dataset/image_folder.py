"""Images in class folders, ``<root>/<class>/*.png``, optionally under train/ and test/."""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from errors import DatasetError

from .base import Dataset, DatasetSplits
from .cache import cache_root, load_arrays, save_arrays, settings_key
from .files import list_files, list_subfolders, locate_dataset_dir, no_download_error
from .images import IMAGE_SUFFIXES, decode_image, to_unit_float, validate_image_settings
from .splits import TEST_SPLIT_SEED, held_out_count, stratified_split_without_duplicates

logger = logging.getLogger(__name__)

#: Folder names accepted for the test split of the train/test layout.
TEST_FOLDER_NAMES = ("test", "val")

LAYOUT = """\
  one of:
  <root>/<class>/*.png (or .jpg, .jpeg, .bmp)   one folder per class, test split carved out
  <root>/train/<class>/*.png                    fixed test split from test/ (or val/)
  <root>/test/<class>/*.png"""


class ImageFolder(Dataset):
    """A classification dataset of your own images: one folder per class.

    With ``train/`` and ``test/`` (or ``val/``) subfolders, the test split is ``test/`` and
    the validation split is carved from ``train/``. With class folders directly under the
    root, a test split (fixed by `TEST_SPLIT_SEED`) is carved first. Carved splits are
    stratified by class and keep identical images together. Images are converted to
    ``channels`` and resized to ``image_size`` without keeping the aspect ratio. Decoded
    images are cached.

    Args:
        path: the root folder. Defaults to ``$UNAS_DATA_DIR``.
        image_size: (height, width) of every example.
        channels: 1 for grayscale, 3 for RGB. Defaults to 3.
        validation_seed: seed of the validation split. Defaults to 0.
        validation_fraction: share of the training images used for validation. Defaults
            to 0.1.
        test_fraction: share of all images used for testing, in the layout without
            ``test/``. Defaults to 0.2.
        class_names: the class folder names in label order. Defaults to the sorted folder
            names of the training images.
        cache_dir: folder for decoded images. Defaults to ``$UNAS_CACHE_DIR``, then to
            ``~/.cache/unas``.
    """

    name = "image_folder"
    #: Subfolder names looked up under a parent data directory, none for arbitrary data.
    folder_names: tuple[str, ...] = ()
    #: The expected files, as shown in error messages.
    layout: str = LAYOUT

    def __init__(self, path: Optional[str], image_size: Sequence[int], channels: int = 3,
                 validation_seed: int = 0, validation_fraction: float = 0.1,
                 test_fraction: float = 0.2, class_names: Optional[Sequence[str]] = None,
                 cache_dir: Optional[str] = None):
        super().__init__(data_dir=path, validation_seed=validation_seed)
        self.image_size = tuple(image_size)
        self.channels = channels
        self.validation_fraction = validation_fraction
        self.test_fraction = test_fraction
        self.class_names = tuple(class_names) if class_names is not None else None
        self.cache_dir = cache_dir
        validate_image_settings(self.image_size, channels, type(self).__name__)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (*self.image_size, self.channels)

    @property
    def num_classes(self) -> int:
        if self.class_names is not None:
            return len(self.class_names)
        return len(self._class_list(self._train_folder(self._locate_root())))

    def _load_splits(self) -> DatasetSplits:
        root = self._locate_root()
        train_folder = self._train_folder(root)
        test_folder = self._test_folder(root)
        classes = self._class_list(train_folder)

        x, y = self._read_images(train_folder, classes)
        if test_folder is not None:
            x_test, y_test = self._read_images(test_folder, classes)
            rest = np.arange(len(y))
        else:
            rest, test = stratified_split_without_duplicates(x, y, self.test_fraction,
                                                             TEST_SPLIT_SEED,
                                                             setting_name="test_fraction")
            x_test, y_test = x[test], y[test]

        # validation_fraction is a share of the training images, so count it before the cut.
        validation_count = held_out_count(self.validation_fraction, len(rest),
                                          "validation_fraction")
        train, validation = stratified_split_without_duplicates(
            x[rest], y[rest], validation_count, self.validation_seed,
            setting_name="validation_fraction")
        train, validation = rest[train], rest[validation]

        return DatasetSplits(x_train=to_unit_float(x[train]), y_train=y[train],
                             x_val=to_unit_float(x[validation]), y_val=y[validation],
                             x_test=to_unit_float(x_test), y_test=y_test)

    def _locate_root(self) -> Path:
        root = self.resolve_data_dir()
        if root is None:
            raise no_download_error(self.name, self.layout)
        return locate_dataset_dir(root, self.name, self.folder_names, _has_layout,
                                  self.layout)

    @staticmethod
    def _train_folder(root: Path) -> Path:
        return root / "train" if (root / "train").is_dir() else root

    def _test_folder(self, root: Path) -> Optional[Path]:
        test_folders = [root / name for name in TEST_FOLDER_NAMES if (root / name).is_dir()]
        if not (root / "train").is_dir():
            if test_folders:
                raise DatasetError(f"{root} has {test_folders[0].name}/ but no train/ folder. "
                                   "Add train/, or move the class folders up. Expected this "
                                   f"layout:\n{self.layout}")
            return None
        return test_folders[0] if test_folders else None

    def _class_list(self, train_folder: Path) -> list[str]:
        found = [folder.name for folder in list_subfolders(train_folder)
                 if folder.name not in ("train", *TEST_FOLDER_NAMES)]
        if self.class_names is None:
            if len(found) < 2:
                raise DatasetError(f"{train_folder} contains {len(found)} class folder(s), but "
                                   "classification needs at least two. Expected this "
                                   f"layout:\n{self.layout}")
            return found
        missing = [name for name in self.class_names if name not in found]
        if missing:
            raise DatasetError(f"{train_folder} has no folders for the classes {missing}. "
                               f"Expected one folder per class in {list(self.class_names)}.")
        return list(self.class_names)

    def _read_images(self, folder: Path, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Return uint8 images and int64 labels of ``folder/<class>/*``, cached when possible."""
        unknown = [sub.name for sub in list_subfolders(folder) if sub.name not in classes
                   and sub.name not in ("train", *TEST_FOLDER_NAMES)]
        if unknown:
            raise DatasetError(f"{folder} contains the class folders {unknown}, which are not "
                               f"among the classes {classes}. Remove them or add them to "
                               "class_names.")

        files = []
        for label, class_name in enumerate(classes):
            class_folder = folder / class_name
            if class_folder.is_dir():
                files.extend((label, path) for path in list_files(class_folder, IMAGE_SUFFIXES))
        if not files:
            raise DatasetError(f"{folder} contains no images in its class folders (expected "
                               f"{', '.join(IMAGE_SUFFIXES)} files). Expected this layout:\n"
                               f"{self.layout}")

        listing = "\n".join(f"{label}:{path.relative_to(folder)}:{path.stat().st_size}"
                            for label, path in files)
        key = settings_key({"dataset": self.name, "folder": str(folder.resolve()),
                            "files": hashlib.sha256(listing.encode()).hexdigest(),
                            "image_size": self.image_size, "channels": self.channels})
        cache_file = cache_root(self.cache_dir) / self.name / f"{folder.name}-{key}.npz"
        cached = load_arrays(cache_file)
        if cached is not None:
            logger.info("Reading decoded images of %s from cache %s", folder, cache_file)
            return cached["x"], cached["y"]

        logger.info("Decoding %d images from %s", len(files), folder)
        x = np.stack([decode_image(path, self.image_size, self.channels) for _, path in files])
        y = np.asarray([label for label, _ in files], dtype=np.int64)
        save_arrays(cache_file, {"x": x, "y": y})
        return x, y


def _has_layout(folder: Path) -> bool:
    train = folder / "train"
    root = train if train.is_dir() else folder
    return any(list_files(class_folder, IMAGE_SUFFIXES) for class_folder in list_subfolders(root)
               if class_folder.name not in TEST_FOLDER_NAMES)
