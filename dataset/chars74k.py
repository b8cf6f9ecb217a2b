"""Chars74K EnglishFnt: computer-font characters 0-9, A-Z and a-z, from PNG folders or an npz."""
from __future__ import annotations

import logging
import re
import string
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from errors import DatasetError

from .base import Dataset, DatasetSplits
from .cache import cache_root, load_arrays, save_arrays, settings_key
from .files import list_files, list_subfolders, locate_dataset_dir, no_download_error
from .images import IMAGE_SUFFIXES, read_class_folders, to_unit_float, validate_image_settings
from .splits import (TEST_SPLIT_SEED, HeldOutSize, duplicate_groups, held_out_count,
                     stratified_split_without_duplicates)

logger = logging.getLogger(__name__)

#: Character of each official sample folder: ``Sample001`` is "0", ``Sample062`` is "z".
CHARS74K_CHARACTERS = tuple(string.digits + string.ascii_uppercase + string.ascii_lowercase)

_SAMPLE_FOLDER = re.compile(r"^Sample(\d{3})$")

LAYOUT = """\
  one of:
  chars74k/English/Fnt/Sample001/*.png ... Sample062/*.png   the official EnglishFnt folders
    (chars74k/Fnt/SampleNNN/ or chars74k/SampleNNN/ also work)
  chars74k/<name>.npz   prepared arrays: x (N, H, W) uint8, y (N,) index into classes,
                        classes (the characters). With several npz files, pass the file itself."""


class Chars74K(Dataset):
    """Chars74K EnglishFnt character images, in the classes that the files contain.

    Labels are 0, 1, ... over the classes present, in the official order 0-9, A-Z, a-z. For
    example, an npz without "I" and "O" gives 34 classes. The splits are stratified by class
    because EnglishFnt has no writer groups to keep apart. Many glyphs render identically
    in several fonts, so identical images always share a split, and split sizes count
    distinct images. The test split is fixed by `TEST_SPLIT_SEED`, and the validation split
    is taken from the rest with ``validation_seed``. Decoded folder images are cached,
    because decoding all 62,992 official PNGs takes a while.

    Args:
        data_dir: the Chars74K folder, a parent folder that contains it, or an npz file.
            Defaults to ``$UNAS_DATA_DIR``. There is no automatic download.
        validation_seed: seed of the validation split. Defaults to 0.
        image_size: (height, width) that every image is resized to. Defaults to (48, 48),
            the size μNAS used for Chars74K.
        channels: 1 for grayscale, 3 for RGB (the gray value repeated). Defaults to 1,
            because the font images are grayscale.
        test_size: distinct images in the test split, as a count or a fraction. Defaults to
            2000, μNAS's test split size.
        validation_size: distinct images in the validation split, as a count or a fraction
            of all distinct images. Defaults to 705, μNAS's validation split size.
        cache_dir: folder for decoded images. Defaults to ``$UNAS_CACHE_DIR``, then to
            ``~/.cache/unas``.
    """

    name = "chars74k"
    folder_names = ("chars74k", "Chars74K", "chars74k-fnt34", "EnglishFnt")

    def __init__(self, data_dir: Optional[str] = None, validation_seed: int = 0,
                 image_size: Sequence[int] = (48, 48), channels: int = 1,
                 test_size: HeldOutSize = 2000, validation_size: HeldOutSize = 705,
                 cache_dir: Optional[str] = None):
        super().__init__(data_dir=data_dir, validation_seed=validation_seed)
        self.image_size = tuple(image_size)
        self.channels = channels
        self.test_size = test_size
        self.validation_size = validation_size
        self.cache_dir = cache_dir
        validate_image_settings(self.image_size, channels, "Chars74K")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (*self.image_size, self.channels)

    @property
    def num_classes(self) -> int:
        return len(self.class_characters())

    def class_characters(self) -> list[str]:
        """Return the character of each label, reading only folder names or the npz's ``y``."""
        source = self._locate_source()
        if source.is_file():
            with np.load(source, allow_pickle=False) as archive:
                characters = _npz_characters(archive, source)
                present = np.unique(archive["y"])
            return [characters[index] for index in present]
        return [CHARS74K_CHARACTERS[number - 1] for number, _ in _sample_folders(source)]

    def _load_splits(self) -> DatasetSplits:
        source = self._locate_source()
        x, y = self._read_npz(source) if source.is_file() else self._read_folders(source)

        # Sizes count distinct images, because copies of an image stay in one split.
        distinct_count = len(np.unique(duplicate_groups(x)))
        validation_count = held_out_count(self.validation_size, distinct_count,
                                          "validation_size")
        rest, test = stratified_split_without_duplicates(x, y, self.test_size, TEST_SPLIT_SEED,
                                                         setting_name="test_size")
        train, validation = stratified_split_without_duplicates(
            x[rest], y[rest], validation_count, self.validation_seed,
            setting_name="validation_size")
        train, validation = rest[train], rest[validation]

        x = to_unit_float(x)
        return DatasetSplits(x_train=x[train], y_train=y[train], x_val=x[validation],
                             y_val=y[validation], x_test=x[test], y_test=y[test])

    def _locate_source(self) -> Path:
        """Return the npz file or the folder that contains the ``SampleNNN`` folders."""
        root = self.resolve_data_dir()
        if root is None:
            raise no_download_error(self.name, LAYOUT)
        if root.is_file():
            if root.suffix != ".npz":
                raise DatasetError(f"{root} is a file but not an npz. Expected this layout:\n"
                                   f"{LAYOUT}")
            return root

        folder = locate_dataset_dir(root, self.name, self.folder_names, _has_layout, LAYOUT)
        sample_parent = _sample_parent(folder)
        if sample_parent is not None:
            return sample_parent

        archives = sorted(folder.glob("*.npz"))
        if len(archives) > 1:
            raise DatasetError(f"{folder} contains several npz files "
                               f"({', '.join(path.name for path in archives)}). Pass the one "
                               "to read as the data directory.")
        return archives[0]

    def _read_npz(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        logger.info("Reading Chars74K arrays from %s", path)
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in ("x", "y", "classes") if key not in archive.files]
            if missing:
                raise DatasetError(f"{path} is missing the arrays {missing}. Expected this "
                                   f"layout:\n{LAYOUT}")
            images, indices = archive["x"], archive["y"]
            _npz_characters(archive, path)

        if images.ndim != 3 or images.dtype != np.uint8 or len(images) != len(indices):
            raise DatasetError(f"{path}: x must be uint8 of shape (N, H, W) with one label per "
                               f"image, but got x {images.dtype} {images.shape}, "
                               f"y {indices.shape}.")

        if images.shape[1:] != self.image_size or self.channels != 1:
            images = np.stack([decode_image_array(image, self.image_size, self.channels)
                               for image in images])
        else:
            images = images[..., np.newaxis]

        _, labels = np.unique(indices, return_inverse=True)
        return images, labels.astype(np.int64)

    def _read_folders(self, sample_parent: Path) -> tuple[np.ndarray, np.ndarray]:
        folders = _sample_folders(sample_parent)
        file_count = sum(len(list_files(folder, IMAGE_SUFFIXES)) for _, folder in folders)
        key = settings_key({"dataset": self.name, "folder": str(sample_parent.resolve()),
                            "files": file_count, "image_size": self.image_size,
                            "channels": self.channels})
        cache_file = cache_root(self.cache_dir) / self.name / f"fnt-{key}.npz"

        cached = load_arrays(cache_file)
        if cached is not None:
            logger.info("Reading decoded Chars74K images from cache %s", cache_file)
            return cached["x"], cached["y"]

        logger.info("Decoding %d Chars74K images from %s", file_count, sample_parent)
        x, y = read_class_folders([(label, folder) for label, (_, folder) in enumerate(folders)],
                                  self.image_size, self.channels)
        save_arrays(cache_file, {"x": x, "y": y})
        return x, y


def decode_image_array(image: np.ndarray, image_size: Sequence[int], channels: int) -> np.ndarray:
    """Resize a uint8 (H, W) grayscale array like a decoded file, through Pillow."""
    from PIL import Image

    with Image.fromarray(image, mode="L") as grayscale:
        if channels == 3:
            grayscale = grayscale.convert("RGB")
        resized = grayscale.resize((image_size[1], image_size[0]), Image.Resampling.BILINEAR)
        return np.asarray(resized, dtype=np.uint8).reshape(*image_size, channels)


def _npz_characters(archive, path: Path) -> list[str]:
    characters = [str(character) for character in archive["classes"]]
    indices = archive["y"]
    if indices.size and (indices.min() < 0 or indices.max() >= len(characters)):
        raise DatasetError(f"{path}: y contains {int(indices.max())}, but classes has only "
                           f"{len(characters)} entries. y must index into classes.")
    return characters


def _sample_folders(parent: Path) -> list[tuple[int, Path]]:
    """Return (sample number, folder) for each ``SampleNNN`` folder, in number order."""
    folders = []
    for folder in list_subfolders(parent):
        match = _SAMPLE_FOLDER.match(folder.name)
        if match is None:
            continue
        number = int(match.group(1))
        if not 1 <= number <= len(CHARS74K_CHARACTERS):
            raise DatasetError(f"{folder}: sample folders are numbered Sample001 to Sample062.")
        folders.append((number, folder))
    return sorted(folders)


def _sample_parent(folder: Path) -> Optional[Path]:
    for candidate in (folder, folder / "Fnt", folder / "English" / "Fnt"):
        if candidate.is_dir() and _sample_folders(candidate):
            return candidate
    return None


def _has_layout(folder: Path) -> bool:
    return _sample_parent(folder) is not None or any(folder.glob("*.npz"))
