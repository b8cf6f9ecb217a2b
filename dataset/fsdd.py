"""Free Spoken Digit Dataset: 8 kHz recordings of the digits 0-9 as MFCC features."""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import numpy as np

from errors import DatasetError

from .audio import MfccSettings, compute_mfccs, fit_length, read_wav, standardise
from .base import Dataset, DatasetSplits
from .cache import cache_root, load_arrays, save_arrays, settings_key
from .files import list_files, locate_dataset_dir, no_download_error
from .splits import group_split

logger = logging.getLogger(__name__)

SAMPLE_RATE = 8000

#: The official split puts recordings with these indices in the test set.
TEST_INDICES = range(0, 5)

_FILE_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")

LAYOUT = """\
  fsdd/recordings/<digit>_<speaker>_<index>.wav   8 kHz mono, e.g. 7_jackson_32.wav
  (the recordings/ folder itself also works)"""

VALIDATION_GROUPINGS = ("index", "speaker")


class FreeSpokenDigits(Dataset):
    """Free Spoken Digit Dataset (FSDD): spoken digits 0-9 as (49, 40, 1) MFCCs by default.

    The official split puts indices 0-4 of every speaker and digit in the test set. The
    validation set is taken from the rest and shares no group with the training set: with
    ``validation_grouping="index"``, a seeded choice of recording indices (all speakers and
    digits of those indices). With ``"speaker"``, a seeded choice of whole speakers, none of
    whose recordings is in the training set (their indices 0-4 stay in the test set).

    Features: clips are zero-padded or cropped at the end to ``clip_ms`` (the longest FSDD
    clips are about 2.3 s, but 99% are shorter than 1 s). At 8 kHz the default 30 ms window
    is 240 samples and the 20 ms stride 160 samples (FFT length 256), which gives 49 frames
    of 40 MFCCs from a 40-band mel filterbank over 20-4000 Hz. Each MFCC is standardised
    with the training set's mean and deviation. Features are cached on disk.

    Args:
        data_dir: the FSDD folder, a parent folder that contains it, or the ``recordings``
            folder. Defaults to ``$UNAS_DATA_DIR``. There is no automatic download.
        validation_seed: seed of the validation choice. Defaults to 0.
        validation_grouping: ``"index"`` or ``"speaker"``, see above. Defaults to "index".
        validation_fraction: share of the groups (indices or speakers) held out for
            validation, at least one. Defaults to 0.1.
        clip_ms: clip length in milliseconds. Defaults to 1000.
        window_ms: STFT window in milliseconds. Defaults to 30.
        stride_ms: STFT stride in milliseconds. Defaults to 20.
        num_mfccs: MFCCs per frame. Defaults to 40.
        cache_dir: folder for the feature cache. Defaults to ``$UNAS_CACHE_DIR``, then to
            ``~/.cache/unas``.
    """

    name = "fsdd"
    folder_names = ("fsdd", "free-spoken-digit-dataset", "free_spoken_digit_dataset")

    def __init__(self, data_dir: Optional[str] = None, validation_seed: int = 0,
                 validation_grouping: str = "index", validation_fraction: float = 0.1,
                 clip_ms: float = 1000.0, window_ms: float = 30.0, stride_ms: float = 20.0,
                 num_mfccs: int = 40, cache_dir: Optional[str] = None):
        super().__init__(data_dir=data_dir, validation_seed=validation_seed)
        if validation_grouping not in VALIDATION_GROUPINGS:
            raise DatasetError(f"FreeSpokenDigits: validation_grouping={validation_grouping!r} "
                               f"is invalid: expected one of {VALIDATION_GROUPINGS}.")
        self.validation_grouping = validation_grouping
        self.validation_fraction = validation_fraction
        self.clip_ms = clip_ms
        self.window_ms = window_ms
        self.stride_ms = stride_ms
        self.num_mfccs = num_mfccs
        self.cache_dir = cache_dir
        self.mfcc_settings.validate()

    @property
    def mfcc_settings(self) -> MfccSettings:
        return MfccSettings.from_milliseconds(SAMPLE_RATE, self.clip_ms, self.window_ms,
                                              self.stride_ms, self.num_mfccs)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.mfcc_settings.feature_shape

    @property
    def num_classes(self) -> int:
        return 10

    def _load_splits(self) -> DatasetSplits:
        recordings = self._locate_recordings()
        files, digits, speakers, indices = _parse_names(recordings)

        is_test = np.isin(indices, list(TEST_INDICES))
        rest = np.flatnonzero(~is_test)
        groups = indices[rest] if self.validation_grouping == "index" else speakers[rest]
        if len(np.unique(groups)) < 2:
            raise DatasetError(
                f"{recordings} has recordings of {len(np.unique(groups))} "
                f"{self.validation_grouping}(s) outside the official test indices 0-4, but "
                "the training and validation splits need at least two. Add the recordings "
                "with indices 5 and above, or use another validation_grouping."
            )
        train, validation = group_split(groups, self.validation_fraction, self.validation_seed,
                                        setting_name="validation_fraction")
        split_indices = {"train": rest[train], "val": rest[validation],
                         "test": np.flatnonzero(is_test)}

        features = self._features(recordings, files)
        x = {name: features[chosen] for name, chosen in split_indices.items()}
        x_train, x_val, x_test = standardise(x["train"], [x["val"], x["test"]])
        return DatasetSplits(
            x_train=x_train[..., np.newaxis], y_train=digits[split_indices["train"]],
            x_val=x_val[..., np.newaxis], y_val=digits[split_indices["val"]],
            x_test=x_test[..., np.newaxis], y_test=digits[split_indices["test"]],
        )

    def _locate_recordings(self) -> Path:
        root = self.resolve_data_dir()
        if root is None:
            raise no_download_error(self.name, LAYOUT)
        folder = locate_dataset_dir(root, self.name, self.folder_names, _has_layout, LAYOUT)
        return folder / "recordings" if (folder / "recordings").is_dir() else folder

    def _features(self, recordings: Path, files: list[Path]) -> np.ndarray:
        """Return the MFCCs of every file, in order, from the cache when it has them."""
        settings = self.mfcc_settings
        listing = "\n".join(f"{path.name}:{path.stat().st_size}" for path in files)
        key = settings_key({"dataset": self.name, "folder": str(recordings.resolve()),
                            "files": hashlib.sha256(listing.encode()).hexdigest(),
                            "mfcc": asdict(settings)})
        cache_file = cache_root(self.cache_dir) / self.name / f"mfcc-{key}.npz"

        cached = load_arrays(cache_file)
        if cached is not None:
            logger.info("Reading FSDD features from cache %s", cache_file)
            return cached["features"]

        logger.info("Computing MFCCs of %d FSDD clips from %s", len(files), recordings)
        clips = np.stack([fit_length(_read_clip(path), settings.clip_samples) for path in files])
        features = compute_mfccs(clips, settings)
        save_arrays(cache_file, {"features": features})
        return features


def _read_clip(path: Path) -> np.ndarray:
    samples, sample_rate = read_wav(path)
    if sample_rate != SAMPLE_RATE:
        raise DatasetError(f"{path} has a sample rate of {sample_rate} Hz, but FSDD recordings "
                           f"are {SAMPLE_RATE} Hz. Resample the file or remove it.")
    return samples


def _parse_names(recordings: Path):
    """Return the WAV files and each one's digit, speaker and index, parsed from its name."""
    files = list_files(recordings, (".wav",))
    if not files:
        raise DatasetError(f"{recordings} contains no .wav files. Expected this layout:\n{LAYOUT}")

    digits, speakers, indices = [], [], []
    for path in files:
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise DatasetError(f"{path.name} in {recordings} does not follow the FSDD naming "
                               "<digit>_<speaker>_<index>.wav. Rename or remove it.")
        digits.append(int(match.group(1)))
        speakers.append(match.group(2))
        indices.append(int(match.group(3)))
    return (files, np.asarray(digits, dtype=np.int64), np.asarray(speakers),
            np.asarray(indices, dtype=np.int64))


def _has_layout(folder: Path) -> bool:
    recordings = folder / "recordings"
    if recordings.is_dir():
        return True
    return any(_FILE_NAME.match(path.name) for path in folder.glob("*.wav"))
