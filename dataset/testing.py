"""Checks and file writers shared by the dataset tests: the `DatasetSplits` contract, and tiny
IDX, WAV and image files built from real data.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import wave
from pathlib import Path
from typing import Optional

import numpy as np

from .base import Dataset, DatasetSplits
from .idx import IDX_DTYPES

SPLIT_NAMES = ("train", "val", "test")

#: Folder of the real datasets that the tests read: ``$UNAS_TEST_DATASETS_DIR`` when set,
#: else ``shared/datasets`` beside the repository.
SHARED_DATASETS_DIR = Path(os.environ.get(
    "UNAS_TEST_DATASETS_DIR", Path(__file__).resolve().parents[2] / "shared" / "datasets"))


def split_arrays(splits: DatasetSplits) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Return ``{"train": (x, y), "val": (x, y), "test": (x, y)}``."""
    return {name: (getattr(splits, f"x_{name}"), getattr(splits, f"y_{name}"))
            for name in SPLIT_NAMES}


def check_split_contract(dataset: Dataset, splits: DatasetSplits) -> None:
    """Assert the `DatasetSplits` contract: shapes, dtypes and label range of every split."""
    for name, (x, y) in split_arrays(splits).items():
        assert x.dtype == np.float32, f"x_{name} has dtype {x.dtype}, expected float32"
        assert y.dtype == np.int64, f"y_{name} has dtype {y.dtype}, expected int64"
        assert x.shape[1:] == tuple(dataset.input_shape), \
            f"x_{name} has example shape {x.shape[1:]}, expected {dataset.input_shape}"
        assert len(x) == len(y), f"x_{name} has {len(x)} examples but y_{name} has {len(y)}"
        assert len(y) > 0, f"split {name} is empty"
        assert y.min() >= 0, f"y_{name} has label {y.min()} < 0"
        assert y.max() < dataset.num_classes, \
            f"y_{name} has label {y.max()} >= num_classes {dataset.num_classes}"


def check_unit_range(splits: DatasetSplits) -> None:
    """Assert that every pixel value lies in [0, 1]."""
    for name, (x, _) in split_arrays(splits).items():
        assert x.min() >= 0.0, f"x_{name} has value {x.min()} < 0"
        assert x.max() <= 1.0, f"x_{name} has value {x.max()} > 1"


def example_hashes(x: np.ndarray) -> set[bytes]:
    """Return one digest per example, to find identical examples across splits."""
    return {hashlib.sha1(np.ascontiguousarray(example).tobytes()).digest() for example in x}


def shared_example_counts(splits: DatasetSplits) -> dict[str, int]:
    """Return how many identical examples each pair of splits shares."""
    hashes = {name: example_hashes(x) for name, (x, _) in split_arrays(splits).items()}
    return {f"{a}/{b}": len(hashes[a] & hashes[b])
            for a, b in (("train", "val"), ("train", "test"), ("val", "test"))}


def class_shares(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Return the fraction of examples in each class."""
    return np.bincount(labels, minlength=num_classes) / len(labels)


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> None:
    """Write ``array`` as an IDX file, gzipped when ``compress``."""
    type_codes = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}
    code = type_codes[array.dtype.newbyteorder("=")]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    content = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    if compress:
        content = gzip.compress(content, mtime=0)
    path.write_bytes(content)


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write int16 mono ``samples`` as a PCM WAV file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(sample_rate)
        file.writeframes(np.asarray(samples, dtype="<i2").tobytes())


def write_image(path: Path, pixels: np.ndarray, quality: Optional[int] = None) -> None:
    """Write uint8 ``pixels`` (H, W) or (H, W, 3) as PNG or JPEG, chosen by the suffix."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"quality": quality} if quality is not None else {}
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(path, **options)


def load_tiny(name: str) -> dict[str, np.ndarray]:
    """Return the arrays of ``tiny/<name>.npz`` from the shared real datasets."""
    with np.load(SHARED_DATASETS_DIR / "tiny" / f"{name}.npz", allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}
