"""The dataset interface that search spaces, the trainer and the driver rely on."""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

#: Environment variable naming a data directory, used when neither ``--data-dir`` nor the
#: config names one. It may be the dataset's own folder or a parent that contains it.
DATA_DIR_ENVIRONMENT_VARIABLE = "UNAS_DATA_DIR"


@dataclass
class DatasetSplits:
    """Arrays of one dataset, already preprocessed for training.

    ``x_*`` are float32 of shape ``(N, *input_shape)``; ``y_*`` are int64 class indices in
    ``[0, num_classes)``. The three splits never share an example.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


class Dataset(ABC):
    """A classification dataset with fixed train, validation and test splits.

    Subclasses are small picklable objects: the constructor only stores settings, and
    `load()` reads the files (once per process; the result is cached on the instance but not
    pickled), so Ray can ship a dataset to each worker cheaply.
    """

    #: Short identifier, such as ``"mnist"``; also the folder name looked up under a parent
    #: data directory.
    name: str = ""

    def __init__(self, data_dir: Optional[str] = None, validation_seed: int = 0):
        self.data_dir = data_dir
        self.validation_seed = validation_seed
        self._splits: Optional[DatasetSplits] = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_splits"] = None
        return state

    # --- what subclasses provide ---------------------------------------------------------

    @property
    @abstractmethod
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example, without the batch dimension, e.g. ``(28, 28, 1)``."""

    @property
    @abstractmethod
    def num_classes(self) -> int:
        """Number of classes."""

    @abstractmethod
    def _load_splits(self) -> DatasetSplits:
        """Read the files and return the preprocessed splits; raise `errors.DatasetError`."""

    #: Whether the dataset reads files from a directory (``--data-dir`` applies to it).
    uses_data_dir: bool = True

    # --- shared behaviour ----------------------------------------------------------------

    def load(self) -> DatasetSplits:
        """Return the splits, reading the files on the first call in this process."""
        if self._splits is None:
            self._splits = self._load_splits()
        return self._splits

    def resolve_data_dir(self) -> Optional[Path]:
        """Return the directory to read: ``data_dir``, else ``$UNAS_DATA_DIR``, else None.

        None means "no local directory was given": a subclass may then download the data
        to its usual cache when the machine has internet access.
        """
        if self.data_dir:
            return Path(self.data_dir).expanduser()
        from_environment = os.environ.get(DATA_DIR_ENVIRONMENT_VARIABLE)
        if from_environment:
            return Path(from_environment).expanduser()
        return None

    def describe(self) -> dict:
        """Return shapes and per-class counts of each split, for ``--dry-run`` and logs."""
        splits = self.load()
        summary = {"name": self.name, "input_shape": list(self.input_shape),
                   "num_classes": self.num_classes}
        for split in ("train", "val", "test"):
            labels = getattr(splits, f"y_{split}")
            counts = np.bincount(labels, minlength=self.num_classes)
            summary[split] = {"examples": int(len(labels)), "class_counts": counts.tolist()}
        return summary
