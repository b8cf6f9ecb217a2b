"""Google Speech Commands, 12-class keyword spotting, as MFCC features of 1 s clips."""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from errors import DatasetError

from .audio import MfccSettings, compute_mfccs, fit_length, read_wav, standardise
from .base import Dataset, DatasetSplits
from .cache import cache_root, load_arrays, save_arrays, settings_key
from .files import list_files, locate_dataset_dir, missing_download_error
from .speech_commands_index import (BACKGROUND_NOISE_FOLDER, SILENCE_LABEL, SPLITS,
                                    UNKNOWN_LABEL, Clip, build_index)

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000

#: The ten keywords of the standard 12-class task, which adds silence and unknown.
SPEECH_COMMANDS_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")

DOWNLOAD_URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"

LAYOUT = """\
  speech_commands/<word>/<speaker>_nohash_<n>.wav   16 kHz mono, 1 s, one folder per word
  speech_commands/_background_noise_/*.wav          optional: long noise recordings
  speech_commands/validation_list.txt               optional, with testing_list.txt: the
  speech_commands/testing_list.txt                  official split, lines like yes/x_nohash_0.wav
  speech_commands/_silence_/*.wav, _unknown_/*.wav  optional: the canonical test set's folders"""


class SpeechCommands(Dataset):
    """Speech Commands keyword spotting: the words, silence and unknown, as MFCCs.

    Labels are the words in order, then silence, then unknown (any other word). Splits come
    from the official lists, else from the official speaker hash. When the hash leaves a
    split empty, as for a folder that contains only the canonical test set, a seeded random
    choice of speakers replaces it (see `speech_commands_index.build_index`). No speaker is
    in two splits unless the official lists put them there. Per split, unknown clips and
    silence clips are each capped at ``unknown_percentage`` and ``silence_percentage``
    percent of the keyword clips, chosen with ``validation_seed``.

    Silence clips come from a ``_silence_`` folder when there is one. Otherwise they are 1 s
    cuts of ``_background_noise_`` recordings at a random volume in [0, 1], and each split
    cuts from its own part of every recording (the first ``validation_percentage`` percent
    for validation, the next ``testing_percentage`` percent for testing, the rest for
    training), so no noise is shared between splits. Without either folder, silence clips
    are all zeros.

    Features: 16 kHz clips padded or cropped at the end to 1 s, a ``window_ms`` STFT window
    with a ``stride_ms`` stride (480 and 320 samples by default, FFT length 512), a 40-band
    mel filterbank over 20-4000 Hz and ``num_mfccs`` MFCCs, which gives (49, 40, 1). Each
    MFCC is standardised with the training set's mean and deviation. Features are cached.

    Args:
        data_dir: the dataset folder or a parent folder that contains it. Defaults to
            ``$UNAS_DATA_DIR``, then to the download into ``~/.keras/datasets`` (2.3 GB).
        validation_seed: seed of the unknown and silence choices, of the noise mixed into
            training clips and, when the seeded speaker split applies, of its validation
            speakers. Defaults to 0.
        words: the keywords. Defaults to `SPEECH_COMMANDS_WORDS`.
        window_ms: STFT window in milliseconds. Defaults to 30.
        stride_ms: STFT stride in milliseconds. Defaults to 20. μNAS used 10, which gives
            (98, 40, 1) features.
        num_mfccs: MFCCs per frame. Defaults to 40.
        validation_percentage: percent of speakers in the validation split. Defaults to 10.
        testing_percentage: percent of speakers in the test split. Defaults to 10.
        silence_percentage: silence clips per split, in percent of its keyword clips.
            Defaults to 10.
        unknown_percentage: unknown clips per split, in percent of its keyword clips.
            Defaults to 10.
        background_noise: whether to mix ``_background_noise_`` into training clips when the
            folder exists. Defaults to True.
        background_frequency: share of training clips that get noise. Defaults to 0.8.
        background_volume: maximum noise volume. Each clip draws one in [0, this]. Defaults
            to 0.1.
        cache_dir: folder for the feature cache. Defaults to ``$UNAS_CACHE_DIR``, then to
            ``~/.cache/unas``.
    """

    name = "speech_commands"
    folder_names = ("speech_commands", "speech_commands_v0.02", "speech_commands_v0.01",
                    "speech-commands", "speech-commands-v0.02-test-subset",
                    "speech_commands_test_set_v0.02")

    def __init__(self, data_dir: Optional[str] = None, validation_seed: int = 0,
                 words: Sequence[str] = SPEECH_COMMANDS_WORDS, window_ms: float = 30.0,
                 stride_ms: float = 20.0, num_mfccs: int = 40,
                 validation_percentage: float = 10.0, testing_percentage: float = 10.0,
                 silence_percentage: float = 10.0, unknown_percentage: float = 10.0,
                 background_noise: bool = True, background_frequency: float = 0.8,
                 background_volume: float = 0.1, cache_dir: Optional[str] = None):
        super().__init__(data_dir=data_dir, validation_seed=validation_seed)
        self.words = tuple(words)
        self.window_ms = window_ms
        self.stride_ms = stride_ms
        self.num_mfccs = num_mfccs
        self.validation_percentage = validation_percentage
        self.testing_percentage = testing_percentage
        self.silence_percentage = silence_percentage
        self.unknown_percentage = unknown_percentage
        self.background_noise = background_noise
        self.background_frequency = background_frequency
        self.background_volume = background_volume
        self.cache_dir = cache_dir
        self._validate_settings()

    @property
    def mfcc_settings(self) -> MfccSettings:
        return MfccSettings.from_milliseconds(SAMPLE_RATE, 1000.0, self.window_ms,
                                              self.stride_ms, self.num_mfccs)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.mfcc_settings.feature_shape

    @property
    def num_classes(self) -> int:
        return len(self.words) + 2

    @property
    def class_names(self) -> list[str]:
        return [*self.words, SILENCE_LABEL, UNKNOWN_LABEL]

    def _validate_settings(self) -> None:
        if not self.words or len(set(self.words)) != len(self.words) \
                or any(word in (SILENCE_LABEL, UNKNOWN_LABEL, BACKGROUND_NOISE_FOLDER)
                       for word in self.words):
            raise DatasetError(f"SpeechCommands: words={self.words!r} is invalid: expected "
                               "distinct folder names other than _silence_, _unknown_ and "
                               "_background_noise_.")
        percentages = (self.validation_percentage, self.testing_percentage)
        if min(percentages) <= 0 or sum(percentages) >= 100:
            raise DatasetError(f"SpeechCommands: validation_percentage={percentages[0]} and "
                               f"testing_percentage={percentages[1]} are invalid: both must be "
                               "above 0 and their sum below 100.")
        for setting in ("silence_percentage", "unknown_percentage"):
            if getattr(self, setting) < 0:
                raise DatasetError(f"SpeechCommands: {setting}={getattr(self, setting)} is "
                                   "invalid: expected a percentage of 0 or more.")
        if not 0 <= self.background_frequency <= 1 or self.background_volume < 0:
            raise DatasetError(f"SpeechCommands: background_frequency={self.background_frequency}"
                               f" and background_volume={self.background_volume} are invalid: "
                               "expected a frequency in [0, 1] and a volume of 0 or more.")
        self.mfcc_settings.validate()

    def _load_splits(self) -> DatasetSplits:
        folder = self._locate_folder()
        clips = build_index(folder, self.words, self.validation_percentage,
                            self.testing_percentage, self.silence_percentage,
                            self.unknown_percentage, self.validation_seed)
        features = self._features(folder, clips)

        labels = np.asarray([clip.label for clip in clips], dtype=np.int64)
        splits = np.asarray([clip.split for clip in clips])
        parts = {split: (features[splits == split], labels[splits == split]) for split in SPLITS}
        for split, (_, split_labels) in parts.items():
            if len(split_labels) == 0:
                raise DatasetError(f"The {split} split of {folder} is empty. Add clips, or "
                                   "raise validation_percentage or testing_percentage.")

        x_train, x_val, x_test = standardise(parts["train"][0], [parts["val"][0],
                                                                 parts["test"][0]])
        return DatasetSplits(x_train=x_train[..., np.newaxis], y_train=parts["train"][1],
                             x_val=x_val[..., np.newaxis], y_val=parts["val"][1],
                             x_test=x_test[..., np.newaxis], y_test=parts["test"][1])

    def _locate_folder(self) -> Path:
        root = self.resolve_data_dir()
        if root is None:
            root = self._download()
        return locate_dataset_dir(root, self.name, self.folder_names, self._has_layout, LAYOUT)

    def _has_layout(self, folder: Path) -> bool:
        return any((folder / word).is_dir() for word in self.words)

    def _download(self) -> Path:
        # get_file (Keras 3.15) extracts the archive again on every call, so reuse an earlier
        # extraction.
        keras_home = Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser()
        extracted = keras_home / "datasets" / "speech_commands"
        if extracted.is_dir() and self._has_layout(extracted):
            return extracted

        import keras

        logger.info("No data directory given, so downloading Speech Commands (2.3 GB) to "
                    "~/.keras/datasets/speech_commands on first use")
        try:
            return Path(keras.utils.get_file("speech_commands", origin=DOWNLOAD_URL,
                                             extract=True))
        except Exception as error:
            # keras.utils.get_file raises a bare Exception for network failures.
            raise missing_download_error(self.name, LAYOUT, error) from error

    def _features(self, folder: Path, clips: list[Clip]) -> np.ndarray:
        """Return the MFCCs of every clip, in order, from the cache when it has them."""
        noise_files = self._noise_files(folder)
        listing = "\n".join(
            [f"{clip.path}:{clip.path.stat().st_size if clip.path else 0}:{clip.split}:"
             f"{clip.label}" for clip in clips]
            + [f"{path}:{path.stat().st_size}" for path in noise_files])
        key = settings_key({
            "dataset": self.name, "folder": str(folder.resolve()),
            "clips": hashlib.sha256(listing.encode()).hexdigest(),
            "mfcc": asdict(self.mfcc_settings), "seed": self.validation_seed,
            "percentages": [self.validation_percentage, self.testing_percentage],
            "background": [self.background_noise, self.background_frequency,
                           self.background_volume],
        })
        cache_file = cache_root(self.cache_dir) / self.name / f"mfcc-{key}.npz"

        cached = load_arrays(cache_file)
        if cached is not None:
            logger.info("Reading Speech Commands features from cache %s", cache_file)
            return cached["features"]

        logger.info("Computing MFCCs of %d Speech Commands clips from %s", len(clips), folder)
        audio = self._clip_audio(clips, noise_files)
        features = compute_mfccs(audio, self.mfcc_settings)
        save_arrays(cache_file, {"features": features})
        return features

    def _noise_files(self, folder: Path) -> list[Path]:
        noise_folder = folder / BACKGROUND_NOISE_FOLDER
        if not noise_folder.is_dir():
            return []
        files = list_files(noise_folder, (".wav",))
        if not files:
            raise DatasetError(f"{noise_folder} contains no .wav files. Add the noise "
                               "recordings or remove the folder.")
        return files

    def _clip_audio(self, clips: list[Clip], noise_files: list[Path]) -> np.ndarray:
        """Return float32 audio (N, 16000): read, silence cut from noise, noise mixed in."""
        length = self.mfcc_settings.clip_samples
        rng = np.random.default_rng(self.validation_seed)
        noise = _NoiseSegments(noise_files, self.validation_percentage,
                               self.testing_percentage, length)
        if not noise_files and any(clip.path is None for clip in clips):
            logger.warning("No _silence_ or %s folder: the silence clips are all zeros",
                           BACKGROUND_NOISE_FOLDER)

        audio = np.zeros((len(clips), length), dtype=np.float32)
        for index, clip in enumerate(clips):
            if clip.path is None:
                audio[index] = noise.cut(clip.split, rng) * rng.uniform(0.0, 1.0)
                continue
            audio[index] = fit_length(_read_clip(clip.path), length)
            if (clip.split == "train" and self.background_noise and noise_files
                    and rng.random() < self.background_frequency):
                mixed = audio[index] + noise.cut("train", rng) * rng.uniform(
                    0.0, self.background_volume)
                audio[index] = np.clip(mixed, -1.0, 1.0)
        return audio


class _NoiseSegments:
    """Background noise recordings, each divided into one disjoint part per split."""

    def __init__(self, files: list[Path], validation_percentage: float,
                 testing_percentage: float, length: int):
        self.length = length
        self.parts: dict[str, list[np.ndarray]] = {split: [] for split in SPLITS}
        for path in files:
            samples = _read_clip(path)
            validation_end = int(len(samples) * validation_percentage / 100)
            test_end = validation_end + int(len(samples) * testing_percentage / 100)
            for split, part in (("val", samples[:validation_end]),
                                ("test", samples[validation_end:test_end]),
                                ("train", samples[test_end:])):
                if len(part) >= length:
                    self.parts[split].append(part)

    def cut(self, split: str, rng: np.random.Generator) -> np.ndarray:
        """Return a random ``length``-sample cut of this split's noise, zeros if it has none."""
        parts = self.parts[split]
        if not parts:
            return np.zeros(self.length, dtype=np.float32)
        part = parts[int(rng.integers(len(parts)))]
        start = int(rng.integers(len(part) - self.length + 1))
        return part[start:start + self.length]


def _read_clip(path: Path) -> np.ndarray:
    samples, sample_rate = read_wav(path)
    if sample_rate != SAMPLE_RATE:
        raise DatasetError(f"{path} has a sample rate of {sample_rate} Hz, but Speech Commands "
                           f"clips are {SAMPLE_RATE} Hz. Resample the file or remove it.")
    return samples
