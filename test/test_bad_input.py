"""Invalid input to driver.py: one clear `error:` line, exit code 2, nothing written, no Ray.

Each case in `CASES` builds its input in a fresh folder and runs `driver.main` in this process,
as a user would run the command line. benchmarks/bad_input_table.py runs the same table to
write docs/bad_input.md, so the catalogue in the docs lists exactly these cases.
"""
from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import os
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

import driver

REPOSITORY = Path(__file__).resolve().parents[1]
MNIST_DIR = REPOSITORY.parent / "shared" / "datasets" / "mnist"

VALID_CONFIG = """
import keras
from cnn import CnnSearchSpace
from config import AgingEvoConfig, BoundConfig, TrainingConfig
from dataset import Digits

training_config = TrainingConfig(dataset=Digits(),
                                 optimizer=lambda: keras.optimizers.Adam(0.01),
                                 batch_size=64, epochs=1)
search_config = AgingEvoConfig(search_space=CnnSearchSpace(), population_size=2,
                               sample_size=2, rounds=2)
bound_config = BoundConfig(error_bound=0.5, peak_mem_bound=20000, model_size_bound=50000,
                           mac_bound=5000000)
"""


class Workspace:
    """A fresh folder for one case: the config file, the output folder and any data."""

    def __init__(self, root: Path):
        self.root = root
        self.output = root / "out"
        self.config_path = root / "tiny_digits.py"
        self.held_lock: int | None = None

    def config(self, *replacements: tuple[str, str], text: str = VALID_CONFIG) -> Path:
        """Write the config with each (old, new) replacement applied and return its path."""
        for old, new in replacements:
            assert old in text, f"test setup: {old!r} is not in the config"
            text = text.replace(old, new)
        self.config_path.write_text(textwrap.dedent(text))
        return self.config_path

    def argv(self, *options: str, config: Path | None = None) -> list[str]:
        """Return driver arguments for run 'run' in the output folder, plus ``options``."""
        config = config or self.config()
        return [str(config), "--name", "run", "--output-dir", str(self.output), *options]

    def run_folder(self, records: list[dict] | None = None, description_changes=None) -> Path:
        """Create the run folder that the valid config would create, with ``records``."""
        from config import load_config
        from search_state.journal import RunDirectory

        description = load_config(self.config()).describe()
        for key, value in (description_changes or {}).items():
            description[key] = value
        run = RunDirectory(self.output / "run")
        run.create("run", description, self.config_path, records=records or [])
        return run.path


def digits_record(candidate_id: int, seed: int = 0) -> dict:
    """Return a completed journal record with a real random CNN for 8x8 digits."""
    from cnn import CnnSearchSpace

    architecture = CnnSearchSpace().random_architecture(np.random.default_rng(seed), (8, 8, 1))
    return {"id": candidate_id, "round": candidate_id + 1, "status": "completed",
            "architecture": architecture.to_dict(),
            "objectives": {"val_error": 0.5, "test_error": 0.5, "peak_memory_bytes": 100,
                           "model_size_bytes": 100, "macs": 100},
            "feasible": True, "seed": candidate_id, "epochs": 1, "error": None,
            "algorithm": {"name": "aging_evolution", "parent_id": None, "morphism": "random"},
            "timings": {}, "worker": None}


def mnist_config(workspace: Workspace) -> Path:
    return workspace.config(("from dataset import Digits", "from dataset import MNIST"),
                            ("dataset=Digits()", "dataset=MNIST()"))


def mnist_copy(workspace: Workspace, leave_out=(), truncate=()) -> Path:
    """Return a copy of the MNIST folder without ``leave_out`` and with ``truncate`` cut short."""
    if not MNIST_DIR.is_dir():
        pytest.skip(f"MNIST not found in {MNIST_DIR}")
    folder = workspace.root / "mnist"
    folder.mkdir()
    for source in sorted(MNIST_DIR.glob("*.gz")):
        if source.name in leave_out:
            continue
        if source.name in truncate:
            # A download cut off part-way: valid gzip framing at the start, then nothing.
            (folder / source.name).write_bytes(source.read_bytes()[:20_000])
        else:
            (folder / source.name).symlink_to(source)
    return folder


def raw_idx_truncated(workspace: Workspace) -> Path:
    """Return an MNIST folder whose uncompressed training images stop after 1,000 bytes."""
    folder = mnist_copy(workspace, leave_out=("train-images-idx3-ubyte.gz",))
    with gzip.open(MNIST_DIR / "train-images-idx3-ubyte.gz") as source:
        (folder / "train-images-idx3-ubyte").write_bytes(source.read(1_000))
    return folder


def hold_lock(workspace: Workspace) -> list[str]:
    """Create the run and lock it as a running driver would, until the case ends."""
    path = workspace.run_folder()
    handle = os.open(path / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    workspace.held_lock = handle
    return workspace.argv()


def empty_data_dir(workspace: Workspace) -> list[str]:
    (workspace.root / "empty").mkdir()
    return workspace.argv("--data-dir", str(workspace.root / "empty"),
                          config=mnist_config(workspace))


def output_below_file(workspace: Workspace) -> list[str]:
    (workspace.root / "file").write_text("in the way")
    return [str(workspace.config()), "--output-dir", str(workspace.root / "file" / "out")]


def run_of_other_search_space(workspace: Workspace) -> list[str]:
    workspace.run_folder(description_changes={
        "search_space": {"name": "cnn", "arguments": {"dropout": 0.5}}})
    return workspace.argv()


def load_into_existing_run(workspace: Workspace) -> list[str]:
    workspace.run_folder()
    return workspace.argv("--load-from", str(workspace.output / "run"))


def binary_journal(workspace: Workspace) -> list[str]:
    (workspace.run_folder() / "journal.jsonl").write_bytes(b"\xff\xfe\x00binary")
    return workspace.argv()


def write_journal(workspace: Workspace, text: str) -> list[str]:
    path = workspace.run_folder()
    (path / "journal.jsonl").write_text(text)
    return workspace.argv()


def write_run_json(workspace: Workspace, text: str) -> list[str]:
    path = workspace.run_folder()
    (path / "run.json").write_text(text)
    return workspace.argv()


def load_from_journal(workspace: Workspace, text: str) -> list[str]:
    journal = workspace.root / "other.jsonl"
    journal.write_text(text)
    return workspace.argv("--load-from", str(journal))


def record_line(record: dict) -> str:
    return json.dumps(record) + "\n"


@dataclass(frozen=True)
class Case:
    """One invalid input: how to build it, and the message it must produce."""

    name: str
    input: str
    setup: Callable[[Workspace], list[str]]
    message: str
    exit_code: int = 2


def _config_case(name, description, replacements, message):
    return Case(name, description, lambda w: w.argv(config=w.config(*replacements)), message)


CASES = [
    # --- the config file -------------------------------------------------------------------
    Case("config_not_found", "config path that does not exist",
         lambda w: [str(w.root / "missing.py"), "--output-dir", str(w.output)],
         r"Config file .*missing\.py not found"),
    Case("config_is_folder", "config path that is a folder",
         lambda w: [str(w.root), "--output-dir", str(w.output)],
         r"is a folder\. Pass the path of a Python config file"),
    Case("config_not_python", "config file without the .py suffix",
         lambda w: [str(w.config().rename(w.root / "tiny.txt")), "--output-dir", str(w.output)],
         r"Cannot load .*tiny\.txt as a Python module; a config file must end in \.py"),
    _config_case("config_syntax_error", "config file with a syntax error",
                 [("epochs=1)", "epochs=1")], r"syntax error on line \d+"),
    _config_case("config_raises", "config file that raises on import",
                 [("import keras", "import keras\nscale = 1 / 0")],
                 r"raised ZeroDivisionError \(line 3\) while loading: division by zero"),
    _config_case("missing_object", "config without `bound_config`",
                 [("bound_config = BoundConfig(", "bounds = BoundConfig(")],
                 r"does not define `bound_config`"),
    _config_case("missing_field", "`TrainingConfig` without its optimizer",
                 [("optimizer=lambda: keras.optimizers.Adam(0.01),", "")],
                 r"TrainingConfig\(\.\.\.\) is missing the required field optimizer\. "
                 r"Add optimizer=\.\.\."),
    _config_case("misspelled_field", "misspelled field `mac_bund`",
                 [("mac_bound=", "mac_bund=")],
                 r"BoundConfig has no field 'mac_bund'\. Did you mean 'mac_bound'\?"),
    _config_case("object_wrong_type", "`search_config` that is a dict",
                 [("mac_bound=5000000)", "mac_bound=5000000)\nsearch_config = {'rounds': 2}")],
                 r"`search_config` in .* must be a AgingEvoConfig, but got dict"),
    _config_case("field_wrong_type", "epochs given as the string '3'",
                 [("epochs=1", "epochs='3'")],
                 r"training_config\.epochs must be a positive integer, but got '3'"),
    _config_case("population_zero", "population_size=0",
                 [("population_size=2", "population_size=0")],
                 r"search_config\.population_size must be a positive integer, but got 0"),
    _config_case("bound_zero", "model_size_bound=0",
                 [("model_size_bound=50000", "model_size_bound=0")],
                 r"bound_config\.model_size_bound must be None or a positive number of bytes, "
                 r"but got 0"),
    _config_case("bound_negative", "peak_mem_bound=-1",
                 [("peak_mem_bound=20000", "peak_mem_bound=-1")],
                 r"bound_config\.peak_mem_bound must be None or a positive number of bytes, "
                 r"but got -1"),
    _config_case("error_bound_percentage", "error_bound=3.5 (a percentage)",
                 [("error_bound=0.5", "error_bound=3.5")],
                 r"error_bound must be None or a number in \(0, 1\] \(a fraction, not a "
                 r"percentage\), but got 3\.5"),
    _config_case("bound_below_input", "peak_mem_bound=32 for 8x8 inputs (64 bytes)",
                 [("peak_mem_bound=20000", "peak_mem_bound=32")],
                 r"peak_mem_bound is 32 bytes, but the int8 input tensor of shape \(8, 8, 1\) "
                 r"alone takes 64 bytes"),
    _config_case("unknown_dataset", "`from dataset import ImageNet`",
                 [("from dataset import Digits", "from dataset import Digits, ImageNet")],
                 r"dataset has no name 'ImageNet'\..*Available: .*MNIST"),
    _config_case("dataset_wrong_type", "dataset='mnist' (a string)",
                 [("dataset=Digits()", "dataset='mnist'")],
                 r"training_config\.dataset must be a Dataset instance"),
    _config_case("search_space_argument", "CnnSearchSpace(dropout=1.5)",
                 [("CnnSearchSpace()", "CnnSearchSpace(dropout=1.5)")],
                 r"raised ValueError \(line \d+\) while loading: Invalid dropout 1\.5"),
    _config_case("optimizer_instance", "an optimizer object instead of a factory",
                 [("lambda: keras.optimizers.Adam(0.01)", "keras.optimizers.Adam(0.01)")],
                 r"training_config\.optimizer must be a function with no arguments"),
    _config_case("optimizer_returns_string", "optimizer factory that returns 'adam'",
                 [("lambda: keras.optimizers.Adam(0.01)", "lambda: 'adam'")],
                 r"training_config\.optimizer\(\) returned 'adam', but it must return a "
                 r"new Keras optimizer"),
    _config_case("callbacks_raise", "callbacks factory that raises",
                 [("epochs=1)", "epochs=1, callbacks=lambda: [1 / 0])")],
                 r"Calling training_config\.callbacks\(\) raised ZeroDivisionError"),
    _config_case("callbacks_not_a_list", "callbacks factory that returns one callback",
                 [("epochs=1)", "epochs=1,\n    callbacks=lambda: keras.callbacks.TerminateOnNaN())")],
                 r"training_config\.callbacks\(\) returned a TerminateOnNaN object, but it must "
                 r"return a list"),
    _config_case("unknown_algorithm", "search_algorithm = 'random'",
                 [("import keras", "import keras\nsearch_algorithm = 'random'")],
                 r"only AgingEvoSearch is available"),

    # --- the data --------------------------------------------------------------------------
    Case("data_dir_missing", "--data-dir that does not exist",
         lambda w: w.argv("--data-dir", str(w.root / "nowhere"), config=mnist_config(w)),
         r"Data directory .*nowhere for dataset 'mnist' does not exist"),
    Case("data_dir_empty", "--data-dir without the dataset's files", empty_data_dir,
         r"Directory .*empty is not in a known layout for dataset 'mnist'"),
    Case("data_file_missing", "MNIST folder without the test images",
         lambda w: w.argv("--data-dir", str(mnist_copy(w, leave_out=(
             "t10k-images-idx3-ubyte.gz",))), config=mnist_config(w)),
         r"is missing t10k-images-idx3-ubyte\.gz"),
    Case("data_gzip_truncated", "MNIST training images cut off at 20 kB (gzip)",
         lambda w: w.argv("--data-dir", str(mnist_copy(w, truncate=(
             "train-images-idx3-ubyte.gz",))), config=mnist_config(w)),
         r"train-images-idx3-ubyte\.gz is a corrupt or truncated gzip file"),
    Case("data_idx_truncated", "MNIST training images cut off at 1,000 bytes (raw IDX)",
         lambda w: w.argv("--data-dir", str(raw_idx_truncated(w)), config=mnist_config(w)),
         r"train-images-idx3-ubyte is truncated: shape \(60000, 28, 28\) of uint8 needs "
         r"47040016 bytes"),
    Case("data_dir_not_read", "--data-dir for Digits, which reads no files",
         lambda w: w.argv("--data-dir", str(w.root)),
         r"--data-dir .* was given, but the dataset Digits reads no files"),

    # --- command-line options --------------------------------------------------------------
    Case("rounds_zero", "--rounds 0", lambda w: w.argv("--rounds", "0"),
         r"argument --rounds: expected a positive integer, got '0'"),
    Case("parallel_negative", "--parallel -1", lambda w: w.argv("--parallel", "-1"),
         r"argument --parallel: expected a positive integer, got '-1'"),
    Case("epochs_not_a_number", "--epochs abc", lambda w: w.argv("--epochs", "abc"),
         r"argument --epochs: expected an integer, got 'abc'"),
    Case("seed_negative", "--seed -3", lambda w: w.argv("--seed", "-3"),
         r"argument --seed: expected a non-negative integer, got '-3'"),
    Case("unknown_option", "misspelled option --populaton 3",
         lambda w: w.argv("--populaton", "3"), r"unrecognized arguments: --populaton 3"),
    Case("name_with_path", "--name ../escape",
         lambda w: w.argv() + ["--name", "../escape"],
         r"argument --name: expected a folder name without '/', got '\.\./escape'"),
    Case("ray_address_malformed", "--ray-address without a port",
         lambda w: w.argv("--ray-address", "cluster.example"),
         r"argument --ray-address: expected HOST:PORT"),

    # --- the output folder and the run folder ----------------------------------------------
    Case("output_dir_is_file", "--output-dir below a file", output_below_file,
         r"Cannot write the run folder .*file/out/tiny_digits: .*Choose a writable "
         r"--output-dir"),
    Case("other_search_space", "run folder created with CnnSearchSpace(dropout=0.5)",
         run_of_other_search_space,
         r"was created with a different config \(search_space: .*--force to resume anyway"),
    Case("run_in_use", "run folder locked by a running driver", hold_lock,
         r"is in use by another driver process"),
    Case("journal_corrupt_line", "journal with a corrupt middle line",
         lambda w: write_journal(w, record_line(digits_record(0)) + "{not json\n"
                                 + record_line(digits_record(1, seed=1))),
         r"Line 2 of .*journal\.jsonl is not valid JSON"),
    Case("journal_binary", "journal that is not UTF-8 text", binary_journal,
         r"journal\.jsonl is not UTF-8 text"),
    Case("journal_foreign", "journal of another tool (JSON without id and status)",
         lambda w: write_journal(w, '{"event": "epoch", "loss": 0.3}\n'),
         r"Line 1 of .* is not a candidate record"),
    Case("journal_duplicate_id", "journal with candidate 0 twice",
         lambda w: write_journal(w, record_line(digits_record(0))
                                 + record_line(digits_record(0, seed=1))),
         r"repeats candidate id 0 of record 1"),
    Case("journal_other_architecture", "journal with an architecture of another search space",
         lambda w: write_journal(w, record_line(dict(digits_record(0),
                                                     architecture={"hidden_units": [64]}))),
         r"Candidate 0 in .* is not a valid architecture of the cnn search space"),
    Case("run_json_foreign", "run.json of another tool (a JSON list)",
         lambda w: write_run_json(w, "[1, 2, 3]\n"),
         r"run\.json contains a JSON list, expected the object that driver\.py writes"),
    Case("run_json_corrupt", "run.json that is not JSON",
         lambda w: write_run_json(w, "format_version: 1\n"),
         r"Cannot read .*run\.json: .*It is corrupt or not written by this tool"),
    Case("run_json_version", "run.json with format_version 99",
         lambda w: write_run_json(w, json.dumps({"format_version": 99, "config": {}})),
         r"run\.json has format_version 99, but this version of the tool reads version 1"),
    Case("load_from_without_journal", "--load-from a folder without a journal",
         lambda w: w.argv("--load-from", str(w.root)),
         r"--load-from .*: no journal found"),
    Case("load_from_existing_run", "--load-from into an existing run", load_into_existing_run,
         r"--load-from was given, but the run .* already exists"),
    Case("load_from_corrupt", "--load-from a journal with a corrupt line",
         lambda w: load_from_journal(w, "{broken\n" + record_line(digits_record(0))),
         r"Line 1 of .*other\.jsonl is not valid JSON"),
    Case("load_from_bad_id", "--load-from a journal whose id is a string",
         lambda w: load_from_journal(w, record_line(dict(digits_record(0), id="zero"))),
         r"Record 1 of .*other\.jsonl has id 'zero', expected a non-negative integer"),
]


@dataclass
class Outcome:
    """What `driver.main` did with one case."""

    exit_code: int
    error_lines: list[str]
    stderr: str


def run_case(case: Case, root: Path, capture: Callable[[], str]) -> tuple[Outcome, dict, dict]:
    """Build ``case`` under ``root``, run the driver, and return the outcome and snapshots.

    ``capture`` returns the standard error written since its previous call. The snapshots
    map each path under the output folder to a hash of its contents, before and after.
    """
    workspace = Workspace(root)
    argv = case.setup(workspace)
    before = snapshot(workspace.output)
    capture()
    try:
        exit_code = driver.main(argv)
    finally:
        if workspace.held_lock is not None:
            os.close(workspace.held_lock)
    stderr = capture()
    error_lines = [line for line in stderr.splitlines() if ERROR_LINE.match(line)]
    return Outcome(exit_code, error_lines, stderr), before, snapshot(workspace.output)


#: The driver's `error:` line; argparse puts the program name in front.
ERROR_LINE = re.compile(r"^(driver\.py: )?error: ", re.MULTILINE)


def error_message(outcome: Outcome) -> str:
    """Return the message from the last `error:` line to the end of standard error.

    Messages about data files continue on further lines with the expected layout.
    """
    matches = list(ERROR_LINE.finditer(outcome.stderr))
    return outcome.stderr[matches[-1].end():].rstrip() if matches else ""


def snapshot(folder: Path) -> dict[str, str]:
    """Map every file and folder under ``folder`` (lock files aside) to a content hash."""
    if not folder.exists():
        return {}
    contents = {}
    for path in sorted(folder.rglob("*")):
        if path.name == ".lock":
            continue
        key = str(path.relative_to(folder))
        contents[key] = ("folder" if path.is_dir()
                         else hashlib.sha256(path.read_bytes()).hexdigest())
    return contents


def test_cases_have_unique_names():
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))


def test_at_least_thirty_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_rejected(case, tmp_path, capsys):
    outcome, before, after = run_case(case, tmp_path,
                                      lambda: capsys.readouterr().err)

    assert outcome.exit_code == case.exit_code, outcome.stderr[-2000:]
    assert len(outcome.error_lines) == 1, outcome.stderr[-2000:]
    assert re.search(case.message, error_message(outcome), re.DOTALL), error_message(outcome)
    assert "Traceback" not in outcome.stderr
    # Rejected before the search: the output folder is exactly as it was.
    assert after == before
    # Rejected before Ray: no local Ray instance was started.
    assert "ray" not in sys.modules or not sys.modules["ray"].is_initialized()


def test_catalogue_lists_every_case():
    catalogue = (REPOSITORY / "docs" / "bad_input.md").read_text()
    documented = re.findall(r"^\| `([a-z_]+)` \|", catalogue, re.MULTILINE)
    assert documented == [case.name for case in CASES], (
        "docs/bad_input.md is out of date: run .venv/bin/python benchmarks/bad_input_table.py")
