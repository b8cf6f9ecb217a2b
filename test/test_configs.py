"""Every shipped config loads and validates; the slow test runs a short search on each one
whose data is available here."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from config import load_config

REPOSITORY = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPOSITORY / "configs").glob("*.py"))
SHARED = REPOSITORY.parent / "shared" / "datasets"

#: Where the data of each config lives on a machine with the shared datasets; None means the
#: dataset needs no folder (bundled, or found in its default location).
DATA_DIRS = {
    "cnn_digits_quick.py": None,
    "mlp_digits.py": None,
    "cnn_mnist_aging.py": SHARED / "mnist",
    "cnn_mnist_aging_no_ms.py": SHARED / "mnist",
    "cnn_mnist_aging_no_pmu.py": SHARED / "mnist",
    "cnn_fashion_aging.py": None,
    "mlp_fashion.py": None,
    "cnn_cifar10_aging.py": SHARED / "cifar10-jpeg",
    "cnn_cifar10_binary.py": SHARED / "cifar10-jpeg",
    "cnn_chars74k_aging.py": SHARED / "chars74k-fnt34",
    "cnn_speech_commands_aging.py": SHARED / "speech-commands-v0.02-test-subset",
    "cnn_fsdd_aging.py": SHARED / "fsdd",
}
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


def test_every_config_is_listed():
    # A new config must say here where its data lives, so the slow test covers it.
    assert {path.name for path in CONFIGS} - {"cnn_vww.py"} == set(DATA_DIRS)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_config_loads_and_validates(path):
    run = load_config(path)
    assert run.search.rounds > 0
    assert json.loads(json.dumps(run.describe()))["search_space"]["name"] in ("cnn", "mlp")


def _data_available(name):
    if name in ("cnn_fashion_aging.py", "mlp_fashion.py"):
        return FASHION_MNIST_DIR.is_dir()
    directory = DATA_DIRS[name]
    return directory is None or directory.exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DATA_DIRS))
def test_short_search_per_config(name, tmp_path):
    if not _data_available(name):
        pytest.skip(f"the data of {name} is not on this machine")
    command = [sys.executable, str(REPOSITORY / "driver.py"), str(REPOSITORY / "configs" / name),
               "--name", "short", "--output-dir", str(tmp_path), "--rounds", "2",
               "--epochs", "1", "--parallel", "2"]
    if DATA_DIRS[name] is not None:
        command += ["--data-dir", str(DATA_DIRS[name])]

    result = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True,
                            timeout=1800)

    assert result.returncode == 0, result.stderr[-3000:]
    lines = (tmp_path / "short" / "journal.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 2
    assert all(record["status"] == "completed" for record in records), \
        [record["error"] for record in records]
