"""Loading and validating config files: every mistake is one clear ConfigError."""
import textwrap

import pytest

from config import load_config
from errors import ConfigError

VALID = """
import keras
from cnn import CnnSearchSpace
from config import AgingEvoConfig, BoundConfig, TrainingConfig
from dataset import Digits

training_config = TrainingConfig(dataset=Digits(),
                                 optimizer=lambda: keras.optimizers.Adam(0.01),
                                 batch_size={batch_size}, epochs=2)
search_config = AgingEvoConfig(search_space=CnnSearchSpace(), population_size=4,
                               sample_size=2, rounds={rounds})
bound_config = BoundConfig(error_bound={error_bound}, peak_mem_bound={peak_mem_bound},
                           model_size_bound=5000, mac_bound=None)
"""


def write_config(tmp_path, text=None, **fields):
    values = {"batch_size": 32, "rounds": 6, "error_bound": 0.1, "peak_mem_bound": 2000}
    values.update(fields)
    path = tmp_path / "my_config.py"
    path.write_text(textwrap.dedent(text if text is not None else VALID.format(**values)))
    return path


def test_valid_config_loads(tmp_path):
    run = load_config(write_config(tmp_path))
    assert run.search.rounds == 6
    assert run.bounds.as_objective_bounds()["model_size_bytes"] == 5000


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.py")


def test_missing_bound_config(tmp_path):
    text = VALID.split("bound_config")[0].format(batch_size=32, rounds=6)
    with pytest.raises(ConfigError, match="does not define `bound_config`"):
        load_config(write_config(tmp_path, text=text))


def test_wrong_type_for_search_config(tmp_path):
    text = VALID.format(batch_size=32, rounds=6, error_bound=0.1, peak_mem_bound=1) + \
        "\nsearch_config = {'rounds': 3}\n"
    with pytest.raises(ConfigError, match="`search_config` .* must be a AgingEvoConfig"):
        load_config(write_config(tmp_path, text=text))


@pytest.mark.parametrize("field, value, message", [
    ("error_bound", "3.5", r"bound_config.error_bound must be None or a number in \(0, 1\]"),
    ("error_bound", "0", "bound_config.error_bound"),
    ("peak_mem_bound", "-1", "bound_config.peak_mem_bound must be None or a positive number"),
    ("peak_mem_bound", "'2KB'", "bound_config.peak_mem_bound"),
    ("batch_size", "0", "training_config.batch_size must be a positive integer"),
    ("batch_size", "32.0", "training_config.batch_size"),
    ("rounds", "-5", "search_config.rounds must be a positive integer"),
])
def test_invalid_field_named(tmp_path, field, value, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write_config(tmp_path, **{field: value}))


def test_misspelled_keyword_reported_with_line(tmp_path):
    text = VALID.format(batch_size=32, rounds=6, error_bound=0.1, peak_mem_bound=1).replace(
        "mac_bound=None", "mac_bund=None")
    with pytest.raises(ConfigError, match=r"raised TypeError \(line \d+\).*mac_bund"):
        load_config(write_config(tmp_path, text=text))


def test_config_raising_on_import(tmp_path):
    with pytest.raises(ConfigError, match="raised ZeroDivisionError"):
        load_config(write_config(tmp_path, text="x = 1 / 0\n"))


def test_dataset_not_a_dataset(tmp_path):
    text = VALID.format(batch_size=32, rounds=6, error_bound=0.1, peak_mem_bound=1).replace(
        "dataset=Digits()", "dataset='mnist'")
    with pytest.raises(ConfigError, match="training_config.dataset must be a Dataset instance"):
        load_config(write_config(tmp_path, text=text))


def test_override_rounds(tmp_path):
    run = load_config(write_config(tmp_path)).with_overrides(rounds=2, epochs=1)
    assert (run.search.rounds, run.training.epochs) == (2, 1)


def test_override_data_dir_rejected_for_bundled_dataset(tmp_path):
    run = load_config(write_config(tmp_path))
    with pytest.raises(ConfigError, match="reads no files"):
        run.with_overrides(data_dir="/tmp")


def test_describe_is_json_compatible(tmp_path):
    import json

    description = load_config(write_config(tmp_path)).describe()
    assert json.loads(json.dumps(description)) == description
