"""Visual Wake Words: does an image contain a person? Read from class folders."""
from __future__ import annotations

import logging
from typing import Optional, Sequence

from .image_folder import ImageFolder

logger = logging.getLogger(__name__)

#: Folder names in label order. Label 1 means a person is present, the output order of
#: the MLCommons Tiny VWW reference model (github.com/mlcommons/tiny).
VWW_CLASS_NAMES = ("non_person", "person")


LAYOUT = """\
  one of:
  vww/person/*.jpg, vww/non_person/*.jpg   test split carved out
  vww/train/person/*.jpg, vww/train/non_person/*.jpg
  vww/val/person/*.jpg, vww/val/non_person/*.jpg   the test split (test/ also works)"""


class VisualWakeWords(ImageFolder):
    """Visual Wake Words (person / no person), from ``person/`` and ``non_person/`` folders.

    Accepts the flat layout ``vww/person/``, ``vww/non_person/`` (test split carved out) or
    ``vww/train/<class>/`` with ``vww/val/<class>/`` (or ``test/``) as the test split, like
    μNAS, which tested on the COCO validation images. The default 96x96 RGB input is the
    input of the MLCommons Tiny VWW reference model. μNAS's loader resized to 192x220, so
    accuracy is not comparable to its results.

    Args:
        data_dir: the VWW folder or a parent folder that contains ``vww/``. Defaults to
            ``$UNAS_DATA_DIR``. There is no automatic download: build the folders from COCO
            2014 with the VWW scripts, or use a prepared copy.
        validation_seed: seed of the validation split. Defaults to 0.
        image_size: (height, width). Defaults to (96, 96).
        channels: 3 for RGB, 1 for grayscale. Defaults to 3.
        validation_fraction: share of the training images used for validation. Defaults
            to 0.1.
        test_fraction: share of all images used for testing in the flat layout. Defaults
            to 0.1.
        cache_dir: folder for decoded images. Defaults to ``$UNAS_CACHE_DIR``, then to
            ``~/.cache/unas``.
    """

    name = "vww"
    folder_names = ("vww", "visual_wake_words", "visualwakewords")
    layout = LAYOUT

    def __init__(self, data_dir: Optional[str] = None, validation_seed: int = 0,
                 image_size: Sequence[int] = (96, 96), channels: int = 3,
                 validation_fraction: float = 0.1, test_fraction: float = 0.1,
                 cache_dir: Optional[str] = None):
        super().__init__(data_dir, image_size, channels=channels,
                         validation_seed=validation_seed,
                         validation_fraction=validation_fraction, test_fraction=test_fraction,
                         class_names=VWW_CLASS_NAMES, cache_dir=cache_dir)
