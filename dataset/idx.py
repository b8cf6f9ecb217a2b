"""A reader for IDX files, the array format of MNIST and Fashion-MNIST, gzipped or not.

An IDX file starts with a 4-byte magic number: two zero bytes, a type code and the number of
dimensions. Then come one big-endian uint32 size per dimension and the big-endian data.
"""
from __future__ import annotations

import gzip
import logging
import zlib
from pathlib import Path
from typing import Optional

import numpy as np

from errors import DatasetError

logger = logging.getLogger(__name__)

#: IDX type code -> big-endian numpy dtype.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


def find_idx_file(folder: Path, stem: str) -> Optional[Path]:
    """Return ``folder/stem.gz`` if it exists, else ``folder/stem`` if it exists, else None."""
    for name in (f"{stem}.gz", stem):
        path = folder / name
        if path.is_file():
            return path
    return None


def read_idx(path: Path, expected_ndim: Optional[int] = None) -> np.ndarray:
    """Read an IDX file into a native-endian array of its stored type.

    The file may be gzip-compressed (detected from its first bytes, not its name). Raises
    `DatasetError` naming the file when it is not IDX, is truncated, has trailing bytes or
    has ``expected_ndim`` violated.
    """
    content = _read_bytes(path)

    if len(content) < 4 or content[0] != 0 or content[1] != 0 or content[2] not in IDX_DTYPES:
        raise DatasetError(
            f"{path} is not an IDX file: its magic number is {content[:4].hex() or 'missing'}, "
            "expected 0000TTDD (TT a type code such as 08 for uint8, DD the number of "
            "dimensions). Replace it with the original download."
        )
    dtype = IDX_DTYPES[content[2]]
    ndim = content[3]
    if expected_ndim is not None and ndim != expected_ndim:
        raise DatasetError(f"{path} has {ndim} dimensions, expected {expected_ndim}. Check that "
                           "image and label files are not swapped.")

    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise DatasetError(f"{path} is truncated: its header needs {header_size} bytes, the file "
                           f"has {len(content)}. Download it again.")
    shape = tuple(int(size) for size in np.frombuffer(content, dtype=">u4", count=ndim, offset=4))

    expected_bytes = header_size + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(content) != expected_bytes:
        problem = "truncated" if len(content) < expected_bytes else "longer than its header says"
        raise DatasetError(
            f"{path} is {problem}: shape {shape} of {dtype.name} needs {expected_bytes} bytes "
            f"after decompression, the file has {len(content)}. Download it again."
        )

    data = np.frombuffer(content, dtype=dtype, offset=header_size).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=False)


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as file:
            content = file.read()
    except OSError as error:
        raise DatasetError(f"Cannot read {path}: {error}. Check that the file exists and is "
                           "readable.") from error
    if not content.startswith(_GZIP_MAGIC):
        return content
    try:
        return gzip.decompress(content)
    except (EOFError, OSError, zlib.error) as error:
        raise DatasetError(f"{path} is a corrupt or truncated gzip file ({error}). Download it "
                           "again.") from error
