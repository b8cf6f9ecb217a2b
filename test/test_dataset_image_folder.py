import numpy as np
import pytest

from dataset import ImageFolder
from dataset.testing import (check_split_contract, check_unit_range, load_tiny,
                             shared_example_counts, write_image)
from errors import DatasetError

#: Three CIFAR-10 classes of the tiny set, renamed as a user's own classes.
CLASSES = {3: "cat", 5: "dog", 8: "ship"}


@pytest.fixture(scope="module")
def tiny_images():
    tiny = load_tiny("cifar10jpeg_test500")
    keep = np.isin(tiny["y"], list(CLASSES))
    return tiny["x"][keep], tiny["y"][keep]


@pytest.fixture
def flat_folder(tmp_path, tiny_images):
    root = tmp_path / "pets"
    for index, (image, label) in enumerate(zip(*tiny_images)):
        write_image(root / CLASSES[label] / f"{index:03d}.png", image)
    return root


@pytest.fixture
def split_folder(tmp_path, tiny_images):
    root = tmp_path / "pets"
    for index, (image, label) in enumerate(zip(*tiny_images)):
        split = "test" if index % 5 == 0 else "train"
        write_image(root / split / CLASSES[label] / f"{index:03d}.png", image)
    return root


def test_flat_folder_contract(flat_folder, tmp_path):
    dataset = ImageFolder(str(flat_folder), (32, 32), cache_dir=str(tmp_path / "cache"))
    splits = dataset.load()
    check_split_contract(dataset, splits)
    check_unit_range(splits)
    assert dataset.num_classes == 3
    assert shared_example_counts(splits) == {"train/val": 0, "train/test": 0, "val/test": 0}


def test_flat_folder_split_sizes(flat_folder, tmp_path):
    splits = ImageFolder(str(flat_folder), (32, 32), cache_dir=str(tmp_path / "cache")).load()
    assert len(splits.y_test) == 30
    assert len(splits.y_val) == 12
    assert np.array_equal(np.bincount(splits.y_test), [10, 10, 10])


def test_split_folder_uses_test(split_folder, tiny_images, tmp_path):
    x, y = tiny_images
    splits = ImageFolder(str(split_folder), (32, 32), cache_dir=str(tmp_path / "cache")).load()
    is_test = np.arange(len(y)) % 5 == 0
    # Labels follow the sorted folder names, and files are read by class, then name.
    expected_labels = np.searchsorted(sorted(CLASSES), y[is_test])
    order = np.argsort(expected_labels, kind="stable")
    assert np.array_equal(splits.y_test, expected_labels[order])
    assert np.array_equal(splits.x_test, x[is_test][order].astype(np.float32) / 255)


def test_val_folder_as_test(split_folder, tmp_path):
    (split_folder / "test").rename(split_folder / "val")
    splits = ImageFolder(str(split_folder), (32, 32), cache_dir=str(tmp_path / "cache")).load()
    assert len(splits.y_test) == 30


def test_grayscale_and_resize(flat_folder, tmp_path):
    dataset = ImageFolder(str(flat_folder), (20, 24), channels=1,
                          cache_dir=str(tmp_path / "cache"))
    assert dataset.load().x_train.shape[1:] == (20, 24, 1)


def test_class_names_set_order(split_folder, tmp_path):
    named = ImageFolder(str(split_folder), (32, 32), class_names=("ship", "cat", "dog"),
                        cache_dir=str(tmp_path / "cache")).load()
    default = ImageFolder(str(split_folder), (32, 32), cache_dir=str(tmp_path / "cache")).load()
    # Ships are label 2 by sorted folder names and label 0 with the given names.
    assert np.array_equal(named.x_test[named.y_test == 0], default.x_test[default.y_test == 2])


def test_cache_reused(flat_folder, tmp_path):
    cache_dir = tmp_path / "cache"
    ImageFolder(str(flat_folder), (32, 32), cache_dir=str(cache_dir)).load()
    assert len(list((cache_dir / "image_folder").glob("*.npz"))) == 1
    ImageFolder(str(flat_folder), (32, 32), cache_dir=str(cache_dir)).load()
    assert len(list((cache_dir / "image_folder").glob("*.npz"))) == 1


def test_corrupt_image_error(flat_folder, tmp_path):
    broken = flat_folder / "dog" / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(DatasetError) as raised:
        ImageFolder(str(flat_folder), (32, 32), cache_dir=str(tmp_path / "cache")).load()
    assert str(broken) in str(raised.value)


def test_unknown_test_class_error(split_folder, tmp_path):
    (split_folder / "test" / "ship").rename(split_folder / "test" / "boat")
    with pytest.raises(DatasetError, match=r"class folders \['boat'\]"):
        ImageFolder(str(split_folder), (32, 32), cache_dir=str(tmp_path / "cache")).load()


def test_single_class_error(flat_folder, tmp_path):
    for name in ("dog", "ship"):
        for path in (flat_folder / name).iterdir():
            path.unlink()
        (flat_folder / name).rmdir()
    with pytest.raises(DatasetError, match="at least two"):
        ImageFolder(str(flat_folder), (32, 32), cache_dir=str(tmp_path / "cache")).load()


def test_test_without_train_error(flat_folder, tiny_images, tmp_path):
    write_image(flat_folder / "test" / "cat" / "extra.png", tiny_images[0][0])
    with pytest.raises(DatasetError, match="has test/ but no train/"):
        ImageFolder(str(flat_folder), (32, 32), cache_dir=str(tmp_path / "cache")).load()


def test_unknown_layout_error(tmp_path):
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(DatasetError) as raised:
        ImageFolder(str(tmp_path / "empty"), (32, 32)).load()
    assert "not in a known layout" in str(raised.value)
    assert "<root>/<class>/*.png" in str(raised.value)


@pytest.mark.parametrize("image_size, channels, fragment", [
    ((32,), 3, "image_size=\\(32,\\)"),
    ((32, 0), 3, "two positive integers"),
    ((32, 32), 2, "channels=2"),
])
def test_invalid_image_settings(image_size, channels, fragment):
    with pytest.raises(DatasetError, match=fragment):
        ImageFolder("anywhere", image_size, channels=channels)
