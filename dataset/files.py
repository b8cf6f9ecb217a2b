"""Locate a dataset's folder on disk and word the errors for missing or unknown layouts."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Optional, Sequence

from errors import DatasetError

from .base import DATA_DIR_ENVIRONMENT_VARIABLE

logger = logging.getLogger(__name__)

#: Options that point the project at local files, appended to every "not found" message.
DATA_DIR_HINT = (
    "Pass --data-dir DIR, set data_dir= in the config, or set "
    f"{DATA_DIR_ENVIRONMENT_VARIABLE}=DIR, where DIR is the dataset's folder or a parent "
    "folder that contains it."
)


def locate_dataset_dir(root: Path, dataset_name: str, folder_names: Sequence[str],
                       has_layout: Callable[[Path], bool], layout: str) -> Path:
    """Return ``root`` or its subfolder named after the dataset, whichever has the layout.

    ``has_layout(folder)`` decides whether a folder contains the dataset's files. ``layout``
    describes the expected files for the error message. Raises `DatasetError` when ``root``
    does not exist or neither it nor a subfolder in ``folder_names`` has the layout.
    """
    if not root.exists():
        raise DatasetError(
            f"Data directory {root} for dataset {dataset_name!r} does not exist. "
            f"Expected this layout:\n{layout}\n{DATA_DIR_HINT}"
        )
    if not root.is_dir():
        raise DatasetError(
            f"Data directory {root} for dataset {dataset_name!r} is a file, not a folder. "
            f"Expected this layout:\n{layout}\n{DATA_DIR_HINT}"
        )

    if has_layout(root):
        return root

    for folder_name in folder_names:
        candidate = root / folder_name
        if candidate.is_dir() and has_layout(candidate):
            logger.debug("Found dataset %r in %s", dataset_name, candidate)
            return candidate

    subfolders = " or ".join(f"{name}/" for name in folder_names)
    raise DatasetError(
        f"Directory {root} is not in a known layout for dataset {dataset_name!r}: neither it "
        f"nor a subfolder {subfolders} contains the expected files. Expected this layout:\n"
        f"{layout}"
    )


def missing_download_error(dataset_name: str, layout: str, cause: Optional[BaseException] = None,
                           ) -> DatasetError:
    """Return the error raised when no directory was given and the download failed."""
    reason = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
    return DatasetError(
        f"Dataset {dataset_name!r} could not be downloaded{reason}. Download it on a machine "
        f"with internet access and copy its files into this layout:\n{layout}\n{DATA_DIR_HINT}"
    )


def no_download_error(dataset_name: str, layout: str) -> DatasetError:
    """Return the error raised when no directory was given for a dataset without a download."""
    return DatasetError(
        f"Dataset {dataset_name!r} has no automatic download and no data directory was given. "
        f"Provide its files in this layout:\n{layout}\n{DATA_DIR_HINT}"
    )


def list_files(folder: Path, suffixes: Sequence[str]) -> list[Path]:
    """Return the files directly in ``folder`` whose suffix is in ``suffixes``, sorted by name.

    Suffixes are compared case-insensitively, and hidden files (such as macOS ``._*``
    resource forks) are skipped.
    """
    accepted_suffixes = {suffix.lower() for suffix in suffixes}
    return sorted(
        path for path in folder.iterdir()
        if path.is_file() and path.suffix.lower() in accepted_suffixes
        and not path.name.startswith(".")
    )


def list_subfolders(folder: Path) -> list[Path]:
    """Return the non-hidden subfolders of ``folder``, sorted by name."""
    return sorted(path for path in folder.iterdir()
                  if path.is_dir() and not path.name.startswith("."))
