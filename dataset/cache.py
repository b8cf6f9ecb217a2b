"""An on-disk cache of preprocessed arrays (MFCC features, decoded images), keyed by settings.

Cache files live outside the data folders, which may be read-only: in ``cache_dir`` when a
loader is given one, else in ``$UNAS_CACHE_DIR``, else in ``~/.cache/unas``. A file's name
contains a hash of everything that produced it, so changed settings or files never reuse it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Optional

import numpy as np

logger = logging.getLogger(__name__)

#: Environment variable naming the cache folder when a loader is given no ``cache_dir``.
CACHE_DIR_ENVIRONMENT_VARIABLE = "UNAS_CACHE_DIR"

#: Bump to invalidate every cache file written by older code.
CACHE_FORMAT_VERSION = 1


def cache_root(cache_dir: Optional[str] = None) -> Path:
    """Return the cache folder: ``cache_dir``, else ``$UNAS_CACHE_DIR``, else ``~/.cache/unas``."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    from_environment = os.environ.get(CACHE_DIR_ENVIRONMENT_VARIABLE)
    if from_environment:
        return Path(from_environment).expanduser()
    return Path.home() / ".cache" / "unas"


def settings_key(settings: dict[str, Any]) -> str:
    """Return a short stable hash of JSON-compatible settings (16 hex digits)."""
    text = json.dumps({"format": CACHE_FORMAT_VERSION, **settings}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def load_arrays(path: Path) -> Optional[dict[str, np.ndarray]]:
    """Return the arrays in the npz at ``path``, or None when it is missing or unreadable.

    An unreadable file (for example one left by a killed process) is logged and ignored, so
    the caller recomputes and overwrites it.
    """
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        logger.warning("Ignoring unreadable cache file %s (%s: %s), recomputing it",
                       path, type(error).__name__, error)
        return None


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to an npz at ``path`` atomically, creating its folder.

    The file appears under its final name only once complete, so concurrent readers (such as
    Ray workers loading the same dataset) see either no file or the whole file. A failed write
    is logged, not raised, because the cache only saves time.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary_name = tempfile.mkstemp(dir=path.parent, suffix=".npz.partial")
        try:
            with os.fdopen(descriptor, "wb") as file:
                np.savez(file, **arrays)
            os.replace(temporary_name, path)
        except BaseException:
            Path(temporary_name).unlink(missing_ok=True)
            raise
    except OSError as error:
        logger.warning("Could not write cache file %s (%s: %s), so the next load recomputes it",
                       path, type(error).__name__, error)
        return
    logger.info("Wrote cache file %s", path)
