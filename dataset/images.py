"""Decode and resize image files with Pillow into uint8 arrays, and read class-folder layouts."""
from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from errors import DatasetError

from .files import list_files

logger = logging.getLogger(__name__)

#: Suffixes of the image files that the folder layouts read (compared case-insensitively).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")

#: Pillow mode for each supported number of channels.
_MODES = {1: "L", 3: "RGB"}


def validate_image_settings(image_size: Sequence[int], channels: int, owner: str) -> None:
    """Raise `DatasetError` unless ``image_size`` is (height, width) > 0 and channels 1 or 3."""
    if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2
            or not all(isinstance(side, int) and not isinstance(side, bool) and side > 0
                       for side in image_size)):
        raise DatasetError(f"{owner}: image_size={image_size!r} is invalid: expected (height, "
                           "width) as two positive integers, e.g. (32, 32).")
    if channels not in _MODES:
        raise DatasetError(f"{owner}: channels={channels!r} is invalid: expected 1 (grayscale) "
                           "or 3 (RGB).")


def decode_image(source: Union[Path, bytes], image_size: Optional[Sequence[int]], channels: int,
                 description: Optional[str] = None) -> np.ndarray:
    """Decode an image file (a path or its bytes) to uint8 of shape (height, width, channels).

    Colour images are converted to grayscale for ``channels=1`` and grayscale to RGB for
    ``channels=3``. With ``image_size`` as (height, width), the image is resized with
    Pillow's antialiased bilinear filter, which ignores the aspect ratio. ``description``
    names the file in errors when ``source`` is bytes.
    """
    from PIL import Image, UnidentifiedImageError

    name = description or str(source)
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            image = image.convert(_MODES[channels])
            if image_size is not None and image.size != (image_size[1], image_size[0]):
                image = image.resize((image_size[1], image_size[0]), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise DatasetError(f"Cannot decode image {name}: {error}. Delete or replace the file."
                           ) from error
    return pixels.reshape(pixels.shape[0], pixels.shape[1], channels)


def read_class_folders(class_folders: Sequence[tuple[int, Path]], image_size: Sequence[int],
                       channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Read every image in each (label, folder) pair into uint8 x (N, H, W, C) and int64 y.

    Files are read in name order, so the result is the same on every machine. Raises
    `DatasetError` when a folder has no image files.
    """
    images, labels = [], []
    for label, folder in class_folders:
        files = list_files(folder, IMAGE_SUFFIXES)
        if not files:
            raise DatasetError(f"Class folder {folder} contains no image files (expected "
                               f"{', '.join(IMAGE_SUFFIXES)}). Add images or remove the folder.")
        images.extend(decode_image(path, image_size, channels) for path in files)
        labels.extend([label] * len(files))
        logger.debug("Read %d images of class %d from %s", len(files), label, folder)

    x = np.stack(images) if images else np.zeros((0, *image_size, channels), np.uint8)
    return x, np.asarray(labels, dtype=np.int64)


def to_unit_float(images: np.ndarray) -> np.ndarray:
    """Scale uint8 pixels to float32 in [0, 1]."""
    return images.astype(np.float32) / 255.0
