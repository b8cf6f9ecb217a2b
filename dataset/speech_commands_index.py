"""The file index of Speech Commands: which clip goes to which split with which label.

This module reads only file names and the official lists, never audio, so the splitting rules
can be checked quickly.
"""
from __future__ import annotations

import hashlib
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from errors import DatasetError

from .files import list_files, list_subfolders
from .splits import TEST_SPLIT_SEED, group_split

logger = logging.getLogger(__name__)

SILENCE_LABEL = "_silence_"
UNKNOWN_LABEL = "_unknown_"
BACKGROUND_NOISE_FOLDER = "_background_noise_"
VALIDATION_LIST = "validation_list.txt"
TESTING_LIST = "testing_list.txt"
SPLITS = ("train", "val", "test")

#: The hash range of the official split, from TensorFlow's speech_commands example as
#: copied into μNAS's dataset/speech_dataset.py: a group's SHA-1 modulo 2**27 is scaled to
#: a percentage by this maximum.
MAX_NUM_WAVS_PER_CLASS = 2 ** 27 - 1

_NOHASH = "_nohash_"


@dataclass(frozen=True)
class Clip:
    """One example of the index.

    Attributes:
        path: the WAV file, or None for a silence clip cut from background noise.
        label: class index, with the words first, then silence, then unknown.
        group: speaker id, so that a speaker's clips share a split.
        split: "train", "val" or "test".
    """

    path: Optional[Path]
    label: int
    group: str
    split: str


def speaker_of(file_name: str) -> str:
    """Return the speaker id of a clip: the last ``_`` part before ``_nohash_``.

    Official clips are named ``<speaker>_nohash_<n>.wav``. The canonical test set's
    ``_unknown_`` folder prefixes the word (``bed_0ea0e2f4_nohash_1.wav.wav``), so the word is
    dropped. A name without ``_nohash_``, such as a ``_silence_`` clip, is its own group.
    """
    if _NOHASH not in file_name:
        return re.sub(r"(\.wav)+$", "", file_name)
    return file_name.split(_NOHASH)[0].split("_")[-1]


def hash_split(group: str, validation_percentage: float, testing_percentage: float) -> str:
    """Return the official split of a speaker: a stable hash, so clips never change split."""
    digest = int(hashlib.sha1(group.encode("utf-8")).hexdigest(), 16)
    percentage = (digest % (MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / MAX_NUM_WAVS_PER_CLASS)
    if percentage < validation_percentage:
        return "val"
    if percentage < validation_percentage + testing_percentage:
        return "test"
    return "train"


def build_index(folder: Path, words: Sequence[str], validation_percentage: float,
                testing_percentage: float, silence_percentage: float,
                unknown_percentage: float, seed: int) -> list[Clip]:
    """Return the clips of every split, with unknown and silence clips sampled per split.

    Splits come from ``validation_list.txt`` and ``testing_list.txt`` when both exist, else
    from `hash_split` of each clip's speaker. When the hash leaves a split without keyword
    clips, which happens for a copy of one official split such as the canonical test set,
    `seeded_speaker_split` replaces it. Each split then gets up to ``unknown_percentage``
    and ``silence_percentage`` percent of its keyword-clip count as unknown and silence
    clips, chosen with ``seed``. Silence clips come from a ``_silence_`` folder when there
    is one, else they are placeholders (path None) that the loader fills from background
    noise.
    """
    files = _scan_files(folder, words)
    official_lists = _read_official_lists(folder)
    if official_lists is not None:
        splits = [_listed_split(relative_path, official_lists)
                  for relative_path, _, _, _ in files]
    else:
        splits = [hash_split(group, validation_percentage, testing_percentage)
                  for _, _, _, group in files]
        word_splits = {split for split, (_, kind, _, _) in zip(splits, files) if kind == "word"}
        if word_splits != set(SPLITS):
            logger.warning(
                "The official speaker hash puts every keyword clip in %s into the %s split, "
                "so the folder probably contains one official split only. Its speakers are "
                "split with a seeded random choice instead.", folder, "/".join(sorted(word_splits)))
            splits = seeded_speaker_split([group for _, _, _, group in files],
                                          validation_percentage, testing_percentage, seed)

    candidates = {(split, kind): [] for split in SPLITS for kind in ("word", "silence", "unknown")}
    for split, (relative_path, kind, label, group) in zip(splits, files):
        candidates[split, kind].append(Clip(folder / relative_path, label, group, split))

    silence = len(words)
    rng = np.random.default_rng(seed)
    clips: list[Clip] = []
    has_silence_files = any(candidates[split, "silence"] for split in SPLITS)
    for split in SPLITS:
        words_in_split = candidates[split, "word"]
        clips.extend(words_in_split)
        clips.extend(_sample(candidates[split, "unknown"],
                             math.ceil(len(words_in_split) * unknown_percentage / 100), rng))
        silence_count = math.ceil(len(words_in_split) * silence_percentage / 100)
        if has_silence_files:
            clips.extend(_sample(candidates[split, "silence"], silence_count, rng))
        else:
            clips.extend(Clip(None, silence, f"silence-{split}-{number}", split)
                         for number in range(silence_count))
    return clips


def seeded_speaker_split(groups: Sequence[str], validation_percentage: float,
                         testing_percentage: float, seed: int) -> list[str]:
    """Return the split of each clip from a seeded random choice of speakers.

    The test speakers are chosen with the fixed `TEST_SPLIT_SEED`, the validation speakers
    from the rest with ``seed``. Percentages apply to speakers, not clips.
    """
    groups = np.asarray(groups)
    rest, test = group_split(groups, testing_percentage / 100, TEST_SPLIT_SEED,
                             setting_name="testing_percentage / 100")
    validation_share = validation_percentage / (100 - testing_percentage)
    train, validation = group_split(groups[rest], validation_share, seed,
                                    setting_name="validation_percentage / 100")
    splits = np.full(len(groups), "train", dtype=object)
    splits[test] = "test"
    splits[rest[validation]] = "val"
    return splits.tolist()


def _scan_files(folder: Path, words: Sequence[str]) -> list[tuple[str, str, int, str]]:
    """Return (relative path, kind, label, speaker) of every clip in the class folders."""
    word_labels = {word: label for label, word in enumerate(words)}
    silence, unknown = len(words), len(words) + 1

    files = []
    for class_folder in list_subfolders(folder):
        if class_folder.name == BACKGROUND_NOISE_FOLDER:
            continue
        folder_name = class_folder.name.lower()
        if folder_name == SILENCE_LABEL:
            kind, label = "silence", silence
        elif folder_name in word_labels:
            kind, label = "word", word_labels[folder_name]
        else:
            kind, label = "unknown", unknown
        files.extend((f"{class_folder.name}/{path.name}", kind, label, speaker_of(path.name))
                     for path in list_files(class_folder, (".wav",)))

    found_labels = {label for _, kind, label, _ in files if kind == "word"}
    missing = [word for label, word in enumerate(words) if label not in found_labels]
    if missing:
        raise DatasetError(f"{folder} has no clips of the words {missing}. Expected one folder "
                           f"per word ({', '.join(words)}) containing .wav files.")
    return files


def _sample(clips: list[Clip], count: int, rng: np.random.Generator) -> list[Clip]:
    """Return ``count`` of ``clips`` chosen with ``rng`` (all when fewer), in file order."""
    if len(clips) <= count:
        return list(clips)
    chosen = np.sort(rng.choice(len(clips), size=count, replace=False))
    return [clips[index] for index in chosen]


def _read_official_lists(folder: Path) -> Optional[dict[str, set[str]]]:
    present = [name for name in (VALIDATION_LIST, TESTING_LIST) if (folder / name).is_file()]
    if not present:
        return None
    if len(present) == 1:
        missing = TESTING_LIST if present == [VALIDATION_LIST] else VALIDATION_LIST
        raise DatasetError(f"{folder} contains {present[0]} but not {missing}. Provide both "
                           "official lists, or neither to split by the speaker hash.")
    logger.info("Splitting Speech Commands by %s and %s", VALIDATION_LIST, TESTING_LIST)
    return {split: {line.strip() for line in (folder / name).read_text().splitlines()
                    if line.strip()}
            for split, name in (("val", VALIDATION_LIST), ("test", TESTING_LIST))}


def _listed_split(relative_path: str, official_lists: dict[str, set[str]]) -> str:
    for split in ("val", "test"):
        if relative_path in official_lists[split]:
            return split
    return "train"
