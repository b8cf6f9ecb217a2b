"""Readers for the three CIFAR-10 layouts: python batches, image folders, and a tar of either.

Every reader returns ``((x_train, y_train), (x_test, y_test))`` with uint8 x of shape
(N, 32, 32, 3) and int64 y holding indices into `CIFAR10_CLASSES`.
"""
from __future__ import annotations

import io
import logging
import pickle
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any, Optional

import numpy as np

from errors import DatasetError

from .images import IMAGE_SUFFIXES, decode_image, read_class_folders

logger = logging.getLogger(__name__)

#: The official class order. Labels are indices into it.
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")

BATCHES_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{number}" for number in range(1, 6))
TEST_BATCH = "test_batch"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")

LAYOUT = f"""\
  one of:
  cifar10/{BATCHES_FOLDER}/            the official python version
    data_batch_1 ... data_batch_5, test_batch
  cifar10/                             image folders, one folder per class
    train/<class>/*.jpg (or .png)
    test/<class>/*.jpg
  cifar10/<name>.tar.gz                a tar of either layout above
  where <class> is one of {', '.join(CIFAR10_CLASSES)}."""

#: The only globals that a CIFAR-10 batch needs: numpy's array reconstruction, and
#: ``_codecs.encode``, which pickle protocol 2 written by Python 3 uses to store bytes.
_ALLOWED_PICKLE_GLOBALS = {
    ("_codecs", "encode"): ("_codecs", "encode"),
    ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
}


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler that builds only dicts, lists, strings, numbers and numpy arrays.

    Plain `pickle.load` can run any code named in the file. Rejecting every global outside
    `_ALLOWED_PICKLE_GLOBALS` makes a malicious batch file fail instead of run.
    """

    def find_class(self, module: str, name: str) -> Any:
        allowed = _ALLOWED_PICKLE_GLOBALS.get((module, name))
        if allowed is None:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR-10 "
                                         "batch")
        return super().find_class(*allowed)


def find_archive(folder: Path) -> Optional[Path]:
    """Return the single tar archive in ``folder``, or None if there is none."""
    archives = sorted(path for path in folder.iterdir()
                      if path.is_file() and path.name.endswith(ARCHIVE_SUFFIXES))
    if len(archives) > 1:
        names = ", ".join(archive.name for archive in archives)
        raise DatasetError(f"{folder} contains several archives ({names}). Keep only the "
                           "CIFAR-10 one, or extract it and point --data-dir at the extracted "
                           "folder.")
    return archives[0] if archives else None


def batches_folder(folder: Path) -> Optional[Path]:
    """Return ``folder`` or ``folder/cifar-10-batches-py`` if it contains ``data_batch_1``."""
    for candidate in (folder, folder / BATCHES_FOLDER):
        if (candidate / TRAIN_BATCHES[0]).is_file():
            return candidate
    return None


def has_image_folders(folder: Path) -> bool:
    return (folder / "train").is_dir() and (folder / "test").is_dir()


def has_cifar10_layout(folder: Path) -> bool:
    """Return whether ``folder`` looks like any of the CIFAR-10 layouts."""
    return (batches_folder(folder) is not None or has_image_folders(folder)
            or any(path.name.endswith(ARCHIVE_SUFFIXES) for path in folder.iterdir()
                   if path.is_file()))


def read_batches(folder: Path):
    """Read the official python batches from ``folder``."""
    def read(name: str):
        path = folder / name
        if not path.is_file():
            raise DatasetError(f"{folder} is missing the batch file {name}. Expected this "
                               f"layout:\n{LAYOUT}")
        return path.read_bytes()

    train = [_parse_batch(read(name), folder / name) for name in TRAIN_BATCHES]
    test = _parse_batch(read(TEST_BATCH), folder / TEST_BATCH)
    return _concatenate(train), test


def read_image_folders(folder: Path):
    """Read ``train/<class>/*`` and ``test/<class>/*`` from ``folder``."""
    splits = []
    for split in ("train", "test"):
        split_folder = folder / split
        class_folders = [(_class_index(path.name, path), path)
                         for path in sorted(split_folder.iterdir()) if path.is_dir()]
        if not class_folders:
            raise DatasetError(f"{split_folder} contains no class folders. Expected this "
                               f"layout:\n{LAYOUT}")
        splits.append(read_class_folders(class_folders, (32, 32), 3))
    return tuple(splits)


def read_archive(path: Path):
    """Read a tar of the python batches or of the image folders, without extracting it.

    Members are read into memory, never written to disk, so member names cannot escape a
    target folder.
    """
    logger.info("Reading CIFAR-10 from archive %s", path)
    batches: dict[str, bytes] = {}
    images = {"train": [], "test": []}
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                parts = PurePosixPath(member.name).parts
                if parts[-1] in TRAIN_BATCHES + (TEST_BATCH,):
                    batches[parts[-1]] = archive.extractfile(member).read()
                elif (len(parts) >= 3 and parts[-3] in images
                      and parts[-1].lower().endswith(IMAGE_SUFFIXES)):
                    images[parts[-3]].append((parts[-2], parts[-1], member.name,
                                              archive.extractfile(member).read()))
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DatasetError(f"Cannot read archive {path}: {error}. Download it again.") from error

    if batches:
        missing = [name for name in TRAIN_BATCHES + (TEST_BATCH,) if name not in batches]
        if missing:
            raise DatasetError(f"Archive {path} is missing the batch files {missing}.")
        train = [_parse_batch(batches[name], f"{path}:{name}") for name in TRAIN_BATCHES]
        return _concatenate(train), _parse_batch(batches[TEST_BATCH], f"{path}:{TEST_BATCH}")

    if not images["train"] or not images["test"]:
        raise DatasetError(f"Archive {path} contains neither the python batches nor images in "
                           f"both train/ and test/. Expected this layout:\n{LAYOUT}")
    return tuple(_decode_members(images[split], path) for split in ("train", "test"))


def _decode_members(members: list, archive_path: Path):
    # Sorting by class and file name makes the order independent of the archive's order.
    members.sort(key=lambda member: (member[0], member[1]))
    x = np.stack([decode_image(content, (32, 32), 3, description=f"{archive_path}:{name}")
                  for _, _, name, content in members])
    y = np.asarray([_class_index(class_name, f"{archive_path}:{name}")
                    for class_name, _, name, _ in members], dtype=np.int64)
    return x, y


def _class_index(class_name: str, where: Any) -> int:
    if class_name not in CIFAR10_CLASSES:
        raise DatasetError(f"Unknown CIFAR-10 class folder {class_name!r} in {where}: expected "
                           f"one of {', '.join(CIFAR10_CLASSES)}.")
    return CIFAR10_CLASSES.index(class_name)


def _parse_batch(content: bytes, where: Any):
    try:
        batch = _BatchUnpickler(io.BytesIO(content), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise DatasetError(f"Cannot read CIFAR-10 batch {where}: {error}. Replace it with the "
                           "file from the official cifar-10-python.tar.gz.") from error
    if not isinstance(batch, dict):
        raise DatasetError(f"CIFAR-10 batch {where} contains a {type(batch).__name__}, expected "
                           "a dict with 'data' and 'labels'.")

    # Batches pickled by Python 2 load with bytes keys, ones written by Python 3 with str keys.
    entries = {key.decode() if isinstance(key, bytes) else key: value
               for key, value in batch.items()}
    data, labels = entries.get("data"), entries.get("labels")
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DatasetError(f"CIFAR-10 batch {where} has no 'data' array of shape (N, 3072).")
    labels = np.asarray(labels, dtype=np.int64) if labels is not None else None
    if labels is None or labels.shape != (len(data),) or labels.min() < 0 or labels.max() > 9:
        raise DatasetError(f"CIFAR-10 batch {where} has no 'labels' list of {len(data)} "
                           "labels in [0, 9].")

    # Each row contains the red, then the green, then the blue 32x32 plane.
    images = data.astype(np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _concatenate(parts):
    return (np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts]))
