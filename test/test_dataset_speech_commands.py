import logging
from collections import Counter

import numpy as np
import pytest

from dataset import SPEECH_COMMANDS_WORDS, SpeechCommands
from dataset.speech_commands_index import build_index, hash_split, speaker_of
from dataset.testing import (SHARED_DATASETS_DIR, check_split_contract, load_tiny,
                             shared_example_counts, write_wav)
from errors import DatasetError

SUBSET_DIR = SHARED_DATASETS_DIR / "speech-commands-v0.02-test-subset"

#: Settings of build_index that the official 12-class task uses.
OFFICIAL_PERCENTAGES = dict(validation_percentage=10, testing_percentage=10,
                            silence_percentage=10, unknown_percentage=10)


@pytest.fixture(scope="module")
def tiny_clips():
    """120 real clips (10 per class) as (relative path, int16 samples) pairs."""
    tiny = load_tiny("sc12_120_16k")
    return [(str(name), samples) for name, samples in zip(tiny["names"], tiny["x"])]


@pytest.fixture
def tiny_folder(tmp_path, tiny_clips):
    """The canonical test-set layout, with _silence_ and _unknown_ folders, 120 clips."""
    folder = tmp_path / "speech_commands"
    for name, samples in tiny_clips:
        write_wav(folder / name, samples, 16000)
    return folder


@pytest.fixture
def noise_folder(tmp_path, tiny_clips):
    """The full-dataset layout: word and other-word folders plus _background_noise_.

    The noise recording joins the ten real silence clips (10 s), and there is no _silence_
    folder, so the loader cuts silence clips from the noise.
    """
    folder = tmp_path / "speech_commands"
    noise = []
    for name, samples in tiny_clips:
        class_name, file_name = name.split("/")
        if class_name == "_silence_":
            noise.append(samples)
        elif class_name == "_unknown_":
            word = file_name.split("_")[0]
            write_wav(folder / word / file_name.removeprefix(f"{word}_").removesuffix(".wav"),
                      samples, 16000)
        else:
            write_wav(folder / name, samples, 16000)
    write_wav(folder / "_background_noise_" / "silence_clips.wav", np.concatenate(noise), 16000)
    return folder


def test_speaker_of_name_forms():
    assert speaker_of("0a7c2a8d_nohash_1.wav") == "0a7c2a8d"
    assert speaker_of("bed_0ea0e2f4_nohash_1.wav.wav") == "0ea0e2f4"
    assert speaker_of("1024.wav") == "1024"


def test_hash_split_canonical_test_set():
    # Every keyword clip of the canonical test set must hash to the official test split.
    speakers = {speaker_of(path.name) for word in SPEECH_COMMANDS_WORDS
                for path in (SUBSET_DIR / word).glob("*.wav")}
    assert {hash_split(speaker, 10, 10) for speaker in speakers} == {"test"}


def test_subset_index_speaker_disjoint(caplog):
    with caplog.at_level(logging.WARNING):
        clips = build_index(SUBSET_DIR, SPEECH_COMMANDS_WORDS, seed=0, **OFFICIAL_PERCENTAGES)
    speakers = {split: {clip.group for clip in clips if clip.split == split}
                for split in ("train", "val", "test")}
    assert "probably contains one official split only" in caplog.text
    assert not speakers["train"] & speakers["val"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["val"] & speakers["test"]


def test_subset_index_every_class_trains():
    clips = build_index(SUBSET_DIR, SPEECH_COMMANDS_WORDS, seed=0, **OFFICIAL_PERCENTAGES)
    train_counts = Counter(clip.label for clip in clips if clip.split == "train")
    assert sorted(train_counts) == list(range(12))


def test_subset_index_unknown_capped():
    clips = build_index(SUBSET_DIR, SPEECH_COMMANDS_WORDS, seed=0, **OFFICIAL_PERCENTAGES)
    for split in ("train", "val", "test"):
        keywords = sum(1 for clip in clips if clip.split == split and clip.label < 10)
        unknown = sum(1 for clip in clips if clip.split == split and clip.label == 11)
        assert unknown <= np.ceil(keywords * 0.1)


def test_subset_index_test_speakers_fixed():
    first = build_index(SUBSET_DIR, SPEECH_COMMANDS_WORDS, seed=0, **OFFICIAL_PERCENTAGES)
    other = build_index(SUBSET_DIR, SPEECH_COMMANDS_WORDS, seed=1, **OFFICIAL_PERCENTAGES)
    test_speakers = [{clip.group for clip in clips if clip.split == "test" and clip.label < 10}
                     for clips in (first, other)]
    val_speakers = [{clip.group for clip in clips if clip.split == "val"}
                    for clips in (first, other)]
    assert test_speakers[0] == test_speakers[1]
    assert val_speakers[0] != val_speakers[1]


def test_official_lists_used(tiny_folder):
    validation = sorted(path.relative_to(tiny_folder).as_posix()
                        for path in (tiny_folder / "yes").glob("*.wav"))[:3]
    testing = sorted(path.relative_to(tiny_folder).as_posix()
                     for path in (tiny_folder / "no").glob("*.wav"))[:4]
    (tiny_folder / "validation_list.txt").write_text("\n".join(validation) + "\n")
    (tiny_folder / "testing_list.txt").write_text("\n".join(testing) + "\n")
    clips = build_index(tiny_folder, SPEECH_COMMANDS_WORDS, seed=0, **OFFICIAL_PERCENTAGES)
    val_files = {clip.path.relative_to(tiny_folder).as_posix()
                 for clip in clips if clip.split == "val"}
    test_keywords = [clip for clip in clips if clip.split == "test" and clip.label < 10]
    assert val_files == set(validation)
    assert len(test_keywords) == 4


def test_single_official_list_error(tiny_folder):
    (tiny_folder / "testing_list.txt").write_text("yes/x_nohash_0.wav\n")
    with pytest.raises(DatasetError, match="contains testing_list.txt but not validation_list"):
        SpeechCommands(str(tiny_folder), cache_dir=str(tiny_folder.parent / "cache")).load()


def test_tiny_folder_features(tiny_folder):
    dataset = SpeechCommands(str(tiny_folder.parent), cache_dir=str(tiny_folder.parent / "c"),
                             validation_percentage=20, testing_percentage=20)
    splits = dataset.load()
    check_split_contract(dataset, splits)
    assert dataset.input_shape == (49, 40, 1)
    assert np.isfinite(splits.x_train).all()
    assert shared_example_counts(splits) == {"train/val": 0, "train/test": 0, "val/test": 0}


def test_tiny_folder_standardised(tiny_folder):
    splits = SpeechCommands(str(tiny_folder), cache_dir=str(tiny_folder.parent / "c"),
                            validation_percentage=20, testing_percentage=20).load()
    assert np.abs(splits.x_train.mean(axis=(0, 1, 3), dtype=np.float64)).max() < 1e-4
    assert np.abs(splits.x_train.std(axis=(0, 1, 3), dtype=np.float64) - 1).max() < 1e-3


def test_features_cached(tiny_folder):
    cache_dir = tiny_folder.parent / "cache"
    settings = dict(cache_dir=str(cache_dir), validation_percentage=20, testing_percentage=20)
    first = SpeechCommands(str(tiny_folder), **settings).load()
    cache_files = list((cache_dir / "speech_commands").glob("*.npz"))
    for path in (tiny_folder / "yes").glob("*.wav"):
        path.write_bytes(b"")
    # The cache key includes file sizes, so emptied files force a recompute, which fails.
    with pytest.raises(DatasetError, match="Cannot read WAV file"):
        SpeechCommands(str(tiny_folder), **settings).load()
    assert len(cache_files) == 1
    assert len(first.y_train) > 0


def test_stride_10ms_like_munas(tiny_folder):
    dataset = SpeechCommands(str(tiny_folder), stride_ms=10, validation_percentage=20,
                             testing_percentage=20, cache_dir=str(tiny_folder.parent / "c"))
    assert dataset.input_shape == (98, 40, 1)
    assert dataset.load().x_val.shape[1:] == (98, 40, 1)


def test_silence_cut_from_noise(noise_folder):
    dataset = SpeechCommands(str(noise_folder), validation_percentage=20, testing_percentage=20,
                             cache_dir=str(noise_folder.parent / "cache"))
    splits = dataset.load()
    for labels in (splits.y_train, splits.y_val, splits.y_test):
        assert 10 in labels
    assert np.isfinite(splits.x_test).all()


def test_wrong_sample_rate_error(tiny_folder):
    bad = tiny_folder / "go" / "ffffffff_nohash_9.wav"
    write_wav(bad, np.zeros(8000, np.int16), 8000)
    with pytest.raises(DatasetError) as raised:
        SpeechCommands(str(tiny_folder), cache_dir=str(tiny_folder.parent / "c"),
                       validation_percentage=20, testing_percentage=20).load()
    assert str(bad) in str(raised.value)
    assert "8000 Hz" in str(raised.value)


def test_missing_word_error(tiny_folder):
    with pytest.raises(DatasetError, match=r"no clips of the words \['cat'\]"):
        SpeechCommands(str(tiny_folder), words=("yes", "cat")).load()


def test_unknown_layout_error(tmp_path):
    (tmp_path / "audio").mkdir()
    with pytest.raises(DatasetError) as raised:
        SpeechCommands(str(tmp_path)).load()
    assert "not in a known layout" in str(raised.value)
    assert "<speaker>_nohash_<n>.wav" in str(raised.value)


@pytest.mark.parametrize("settings, fragment", [
    (dict(validation_percentage=60, testing_percentage=40), "sum below 100"),
    (dict(words=("yes", "_silence_")), "words="),
    (dict(background_frequency=2.0), "background_frequency=2.0"),
])
def test_invalid_settings(settings, fragment):
    with pytest.raises(DatasetError, match=fragment):
        SpeechCommands(**settings)


@pytest.mark.slow
def test_shipped_subset_loads(tmp_path):
    dataset = SpeechCommands(str(SHARED_DATASETS_DIR), cache_dir=str(tmp_path))
    splits = dataset.load()
    check_split_contract(dataset, splits)
    assert len(splits.y_train) + len(splits.y_val) + len(splits.y_test) > 1000


def test_download_failure_error(monkeypatch, tmp_path):
    # The failure is injected so that the test never opens a network connection.
    import keras

    def fail_download(*args, **kwargs):
        raise Exception("URL fetch failure: no route to host")

    monkeypatch.delenv("UNAS_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(keras.utils, "get_file", fail_download)
    with pytest.raises(DatasetError) as raised:
        SpeechCommands().load()
    assert "could not be downloaded" in str(raised.value)
    assert "UNAS_DATA_DIR" in str(raised.value)


def test_earlier_download_reused(monkeypatch, tmp_path, tiny_clips):
    for name, samples in tiny_clips:
        write_wav(tmp_path / "datasets" / "speech_commands" / name, samples, 16000)
    monkeypatch.delenv("UNAS_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    splits = SpeechCommands(validation_percentage=20, testing_percentage=20,
                            cache_dir=str(tmp_path / "cache")).load()
    assert len(splits.y_train) > 0
