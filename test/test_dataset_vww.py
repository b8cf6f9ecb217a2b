import numpy as np
import pytest

from dataset import VisualWakeWords
from dataset.testing import check_split_contract, check_unit_range, load_tiny, write_image
from errors import DatasetError


@pytest.fixture(scope="module")
def photos():
    """Real 32x32 photos standing in for VWW: cats as "person", ships as "non_person"."""
    tiny = load_tiny("cifar10jpeg_test500")
    return tiny["x"][tiny["y"] == 3], tiny["x"][tiny["y"] == 8]


def _write(root, photos, suffix):
    person, non_person = photos
    for class_name, images in (("person", person), ("non_person", non_person)):
        for index, image in enumerate(images):
            write_image(root / class_name / f"{index:03d}{suffix}", image, quality=90
                        if suffix == ".jpg" else None)


def test_vww_flat_layout(tmp_path, photos):
    _write(tmp_path / "vww", photos, ".jpg")
    dataset = VisualWakeWords(str(tmp_path), cache_dir=str(tmp_path / "cache"))
    splits = dataset.load()
    check_split_contract(dataset, splits)
    check_unit_range(splits)
    assert dataset.input_shape == (96, 96, 3)
    assert dataset.num_classes == 2


def test_vww_person_is_label_one(tmp_path, photos):
    person, non_person = photos
    _write(tmp_path / "vww", (person[:40], non_person), ".png")
    splits = VisualWakeWords(str(tmp_path / "vww"), image_size=(32, 32),
                             cache_dir=str(tmp_path / "cache")).load()
    all_labels = np.concatenate([splits.y_train, splits.y_val, splits.y_test])
    assert np.array_equal(np.bincount(all_labels), [50, 40])


def test_vww_train_val_layout(tmp_path, photos):
    person, non_person = photos
    _write(tmp_path / "vww" / "train", (person[:40], non_person[:40]), ".png")
    _write(tmp_path / "vww" / "val", (person[40:], non_person[40:]), ".png")
    splits = VisualWakeWords(str(tmp_path), image_size=(50, 50),
                             cache_dir=str(tmp_path / "cache")).load()
    assert np.array_equal(np.bincount(splits.y_test), [10, 10])
    assert len(splits.y_val) == 8
    assert splits.x_test.shape[1:] == (50, 50, 3)


def test_vww_missing_class_error(tmp_path, photos):
    _write(tmp_path / "vww", photos, ".png")
    for path in (tmp_path / "vww" / "non_person").iterdir():
        path.unlink()
    (tmp_path / "vww" / "non_person").rmdir()
    with pytest.raises(DatasetError, match=r"no folders for the classes \['non_person'\]"):
        VisualWakeWords(str(tmp_path), cache_dir=str(tmp_path / "cache")).load()


def test_vww_no_directory(monkeypatch):
    monkeypatch.delenv("UNAS_DATA_DIR", raising=False)
    with pytest.raises(DatasetError) as raised:
        VisualWakeWords().load()
    assert "no automatic download" in str(raised.value)
    assert "vww/train/non_person/*.jpg" in str(raised.value)
