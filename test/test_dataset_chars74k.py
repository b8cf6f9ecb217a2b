import shutil

import numpy as np
import pytest

from dataset import Chars74K
from dataset.splits import duplicate_groups
from dataset.testing import (SHARED_DATASETS_DIR, check_split_contract, check_unit_range,
                             load_tiny, shared_example_counts, write_image)
from errors import DatasetError

TINY_NPZ = SHARED_DATASETS_DIR / "tiny" / "chars74k_fnt34_680.npz"

#: Split sizes for the 680-image subset (34 classes, 20 images each, some identical).
TINY_SIZES = {"test_size": 0.25, "validation_size": 0.25}


@pytest.fixture
def fnt_folders(tmp_path):
    """The official ``English/Fnt/SampleNNN/*.png`` layout, written from the 680 real images."""
    tiny = load_tiny("chars74k_fnt34_680")
    for index, (image, class_index) in enumerate(zip(tiny["x"], tiny["y"])):
        sample = class_index + 1
        write_image(tmp_path / "chars74k" / "English" / "Fnt" / f"Sample{sample:03d}"
                    / f"img{sample:03d}-{index:05d}.png", image)
    return tmp_path / "chars74k"


def test_chars74k_npz_contract():
    dataset = Chars74K(str(TINY_NPZ), image_size=(28, 28), **TINY_SIZES)
    splits = dataset.load()
    check_split_contract(dataset, splits)
    check_unit_range(splits)
    assert dataset.num_classes == 34


def test_chars74k_classes_skip_absent():
    characters = Chars74K(str(TINY_NPZ)).class_characters()
    assert "I" not in characters
    assert "O" not in characters
    assert characters[:11] == list("0123456789A")


def test_chars74k_identical_images_not_shared():
    splits = Chars74K(str(TINY_NPZ), image_size=(28, 28), **TINY_SIZES).load()
    assert shared_example_counts(splits) == {"train/val": 0, "train/test": 0, "val/test": 0}


def test_chars74k_test_split_stratified():
    x = load_tiny("chars74k_fnt34_680")["x"]
    distinct = len(np.unique(duplicate_groups(x)))
    splits = Chars74K(str(TINY_NPZ), image_size=(28, 28), **TINY_SIZES).load()
    distinct_test_labels = splits.y_test[np.unique(duplicate_groups(splits.x_test),
                                                   return_index=True)[1]]
    counts = np.bincount(distinct_test_labels, minlength=34)
    assert counts.sum() == round(0.25 * distinct)
    assert counts.max() - counts.min() <= 2


def test_chars74k_default_size_is_48():
    dataset = Chars74K(str(TINY_NPZ), **TINY_SIZES)
    assert dataset.load().x_train.shape[1:] == (48, 48, 1)


def test_chars74k_rgb_channels():
    splits = Chars74K(str(TINY_NPZ), image_size=(32, 32), channels=3, **TINY_SIZES).load()
    assert splits.x_val.shape[1:] == (32, 32, 3)
    assert np.array_equal(splits.x_val[..., 0], splits.x_val[..., 2])


def test_chars74k_validation_seeded():
    first = Chars74K(str(TINY_NPZ), image_size=(28, 28), validation_seed=1, **TINY_SIZES).load()
    again = Chars74K(str(TINY_NPZ), image_size=(28, 28), validation_seed=1, **TINY_SIZES).load()
    other = Chars74K(str(TINY_NPZ), image_size=(28, 28), validation_seed=2, **TINY_SIZES).load()
    assert np.array_equal(first.x_val, again.x_val)
    assert not np.array_equal(first.x_val, other.x_val)
    assert np.array_equal(first.x_test, other.x_test)


def test_chars74k_folders_match_npz(fnt_folders, tmp_path):
    from_folders = Chars74K(str(fnt_folders), image_size=(28, 28), cache_dir=str(tmp_path),
                            **TINY_SIZES).load()
    from_npz = Chars74K(str(TINY_NPZ), image_size=(28, 28), **TINY_SIZES).load()
    assert np.array_equal(from_folders.x_train, from_npz.x_train)
    assert np.array_equal(from_folders.y_test, from_npz.y_test)


def test_chars74k_folders_cached(fnt_folders, tmp_path):
    cache_dir = tmp_path / "cache"
    first = Chars74K(str(fnt_folders.parent), image_size=(20, 20), cache_dir=str(cache_dir),
                     **TINY_SIZES).load()
    shutil.rmtree(fnt_folders / "English" / "Fnt" / "Sample001")
    (fnt_folders / "English" / "Fnt" / "Sample001").mkdir()
    # The emptied class folder fails only if the cache is bypassed.
    assert len(list((cache_dir / "chars74k").glob("*.npz"))) == 1
    with pytest.raises(DatasetError, match="contains no image files"):
        Chars74K(str(fnt_folders), image_size=(20, 20), cache_dir=str(cache_dir),
                 **TINY_SIZES).load()
    assert first.x_train.shape[1:] == (20, 20, 1)


def test_chars74k_shipped_npz():
    dataset = Chars74K(str(SHARED_DATASETS_DIR), image_size=(28, 28))
    splits = dataset.load()
    check_split_contract(dataset, splits)
    assert len(np.unique(duplicate_groups(splits.x_test))) == 2000
    assert len(np.unique(duplicate_groups(splits.x_val))) == 705


def test_chars74k_default_sizes_too_large():
    with pytest.raises(DatasetError, match="validation_size=705 selects 705 of 612"):
        Chars74K(str(TINY_NPZ)).load()


def test_chars74k_npz_missing_key(tmp_path):
    np.savez(tmp_path / "chars.npz", x=np.zeros((4, 28, 28), np.uint8), y=np.zeros(4))
    with pytest.raises(DatasetError, match=r"missing the arrays \['classes'\]"):
        Chars74K(str(tmp_path / "chars.npz")).load()


def test_chars74k_several_npz_error(tmp_path):
    for name in ("a.npz", "b.npz"):
        shutil.copy(TINY_NPZ, tmp_path / name)
    with pytest.raises(DatasetError, match="several npz files"):
        Chars74K(str(tmp_path)).load()


def test_chars74k_unknown_layout(tmp_path):
    (tmp_path / "Img").mkdir()
    with pytest.raises(DatasetError) as raised:
        Chars74K(str(tmp_path)).load()
    assert "not in a known layout" in str(raised.value)
    assert "Sample001" in str(raised.value)


def test_chars74k_no_directory(monkeypatch):
    monkeypatch.delenv("UNAS_DATA_DIR", raising=False)
    with pytest.raises(DatasetError) as raised:
        Chars74K().load()
    assert "no automatic download" in str(raised.value)
    assert "UNAS_DATA_DIR" in str(raised.value)
