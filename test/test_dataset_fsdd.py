import numpy as np
import pytest
from sklearn.neighbors import NearestCentroid

from dataset import FreeSpokenDigits
from dataset.testing import (SHARED_DATASETS_DIR, check_split_contract, load_tiny,
                             shared_example_counts, write_wav)
from errors import DatasetError


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("fsdd-cache"))


@pytest.fixture(scope="module")
def fsdd(cache_dir):
    """All 3,000 real recordings, split by index."""
    dataset = FreeSpokenDigits(str(SHARED_DATASETS_DIR), cache_dir=cache_dir)
    return dataset, dataset.load()


@pytest.fixture
def tiny_recordings(tmp_path):
    """The 300 real official test clips (indices 0-4) in the recordings/ layout."""
    tiny = load_tiny("fsdd_test300_8k")
    folder = tmp_path / "fsdd" / "recordings"
    for clip in range(len(tiny["labels"])):
        samples = tiny["audio"][tiny["offsets"][clip]:tiny["offsets"][clip + 1]]
        name = f"{tiny['labels'][clip]}_{tiny['speakers'][clip]}_{tiny['index'][clip]}.wav"
        write_wav(folder / name, samples, int(tiny["sample_rate"]))
    return folder


def test_fsdd_contract(fsdd):
    dataset, splits = fsdd
    check_split_contract(dataset, splits)
    assert dataset.input_shape == (49, 40, 1)


def test_fsdd_official_test_split(fsdd):
    _, splits = fsdd
    assert len(splits.y_test) == 300
    assert np.array_equal(np.bincount(splits.y_test), np.full(10, 30))


def test_fsdd_index_validation_balanced(fsdd):
    # Four of the 45 training indices, for each of 6 speakers and 10 digits.
    _, splits = fsdd
    assert np.array_equal(np.bincount(splits.y_val), np.full(10, 24))
    assert len(splits.y_train) == 2700 - 240


def test_fsdd_splits_disjoint(fsdd):
    _, splits = fsdd
    assert shared_example_counts(splits) == {"train/val": 0, "train/test": 0, "val/test": 0}


def test_fsdd_standardised_on_train(fsdd):
    _, splits = fsdd
    assert np.abs(splits.x_train.mean(axis=(0, 1, 3), dtype=np.float64)).max() < 1e-4
    assert np.abs(splits.x_train.std(axis=(0, 1, 3), dtype=np.float64) - 1).max() < 1e-3


def test_fsdd_features_separate_digits(fsdd):
    # Nearest class mean of the time-averaged MFCCs. Chance is 0.1.
    _, splits = fsdd
    classifier = NearestCentroid().fit(splits.x_train.mean(axis=1)[..., 0], splits.y_train)
    assert classifier.score(splits.x_test.mean(axis=1)[..., 0], splits.y_test) > 0.5


def test_fsdd_speaker_validation(cache_dir):
    splits = FreeSpokenDigits(str(SHARED_DATASETS_DIR), cache_dir=cache_dir,
                              validation_grouping="speaker").load()
    # One of six speakers, all 45 training indices of all 10 digits.
    assert len(splits.y_val) == 450
    assert len(splits.y_test) == 300


def test_fsdd_seeded_validation(cache_dir):
    first = FreeSpokenDigits(str(SHARED_DATASETS_DIR), cache_dir=cache_dir,
                             validation_seed=4).load()
    again = FreeSpokenDigits(str(SHARED_DATASETS_DIR), cache_dir=cache_dir,
                             validation_seed=4).load()
    other = FreeSpokenDigits(str(SHARED_DATASETS_DIR), cache_dir=cache_dir,
                             validation_seed=5).load()
    assert np.array_equal(first.x_val, again.x_val)
    assert not np.array_equal(first.x_val, other.x_val)


@pytest.fixture
def renamed_recordings(tiny_recordings):
    """The tiny recordings with indices 3 and 4 renamed to 13 and 14, so that 120 train."""
    for path in sorted(tiny_recordings.glob("*_[34].wav")):
        digit, speaker, index = path.stem.split("_")
        path.rename(path.with_name(f"{digit}_{speaker}_{int(index) + 10}.wav"))
    return tiny_recordings


def test_fsdd_only_test_indices_error(tiny_recordings, tmp_path):
    with pytest.raises(DatasetError) as raised:
        FreeSpokenDigits(str(tiny_recordings), cache_dir=str(tmp_path / "c")).load()
    assert "outside the official test indices 0-4" in str(raised.value)
    assert str(tiny_recordings) in str(raised.value)


def test_fsdd_recordings_folder_direct(renamed_recordings, tmp_path):
    splits = FreeSpokenDigits(str(renamed_recordings), cache_dir=str(tmp_path / "c")).load()
    # Indices 13 and 14: one trains and one validates (10% of 2 groups rounds up to one).
    assert len(splits.y_train) == 60
    assert len(splits.y_val) == 60
    assert len(splits.y_test) == 180


def test_fsdd_clip_length_sets_frames(renamed_recordings, tmp_path):
    dataset = FreeSpokenDigits(str(renamed_recordings.parent), clip_ms=500,
                               cache_dir=str(tmp_path / "c"))
    splits = dataset.load()
    # 4000 samples: 1 + (4000 - 240) // 160 frames.
    assert dataset.input_shape == (24, 40, 1)
    assert splits.x_train.shape[1:] == (24, 40, 1)


def test_fsdd_wrong_sample_rate(renamed_recordings, tmp_path):
    bad = renamed_recordings / "3_theo_40.wav"
    write_wav(bad, np.zeros(16000, np.int16), 16000)
    with pytest.raises(DatasetError) as raised:
        FreeSpokenDigits(str(renamed_recordings), cache_dir=str(tmp_path / "c")).load()
    assert str(bad) in str(raised.value)
    assert "16000 Hz" in str(raised.value)


def test_fsdd_bad_file_name(tiny_recordings):
    write_wav(tiny_recordings / "seven_theo_40.wav", np.zeros(800, np.int16), 8000)
    with pytest.raises(DatasetError, match="seven_theo_40.wav .* does not follow"):
        FreeSpokenDigits(str(tiny_recordings)).load()


def test_fsdd_unknown_layout(tmp_path):
    (tmp_path / "audio").mkdir()
    with pytest.raises(DatasetError) as raised:
        FreeSpokenDigits(str(tmp_path)).load()
    assert "not in a known layout" in str(raised.value)
    assert "recordings/<digit>_<speaker>_<index>.wav" in str(raised.value)


def test_fsdd_no_directory(monkeypatch):
    monkeypatch.delenv("UNAS_DATA_DIR", raising=False)
    with pytest.raises(DatasetError, match="no automatic download"):
        FreeSpokenDigits().load()


def test_fsdd_invalid_grouping():
    with pytest.raises(DatasetError, match="validation_grouping='digit'"):
        FreeSpokenDigits(validation_grouping="digit")
