"""The config schema: what a config file defines, and its validation.

A config file is a Python module (it is executed, so only run config files you trust) that
defines these module-level names:

- ``training_config``: a `TrainingConfig` (dataset, optimiser, batch size, epochs, callbacks);
- ``search_config``: an `AgingEvoConfig` (search space and aging-evolution settings);
- ``bound_config``: a `BoundConfig` (the resource bounds; any may be None);
- ``search_algorithm`` (optional): the search algorithm class, by default `AgingEvoSearch`.

`load_config` executes the file and validates every field in one place, so that each problem
is reported as a `ConfigError` naming the field, the value received, what is expected and how
to fix it.
"""
from __future__ import annotations

import copy
import difflib
import importlib.util
import logging
import math
import re
import sys
import traceback
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Optional

from errors import ConfigError

logger = logging.getLogger(__name__)


def _no_callbacks() -> list:
    return []


@dataclass
class TrainingConfig:
    """Training settings of every candidate.

    Attributes:
        dataset: a `dataset.Dataset` instance.
        optimizer: a function with no arguments returning a new Keras optimizer; it is called
            once per candidate, because optimizers hold per-model state.
        batch_size: examples per training step.
        epochs: training epochs per candidate (``--epochs`` overrides it).
        callbacks: a function with no arguments returning a list of Keras callbacks for one
            candidate (for example a learning-rate schedule).

    The driver calls ``optimizer`` and ``callbacks`` once before the search starts, to check
    what they return, so they should have no side effects.
    """

    dataset: Any
    optimizer: Callable[[], Any]
    batch_size: int = 128
    epochs: int = 30
    callbacks: Callable[[], list] = _no_callbacks


@dataclass
class BoundConfig:
    """Resource bounds, used as soft constraints; None leaves an objective unbounded.

    Attributes:
        error_bound: validation error (a fraction in (0, 1]).
        peak_mem_bound: peak memory usage in bytes (activation RAM, int8).
        model_size_bound: model size in bytes (flash: int8 weights, int32 biases).
        mac_bound: multiply-accumulate operations per inference.
        latency_bound: predicted latency of one inference in seconds; needs latency_model.
        latency_model: path of a latency model fitted to a microcontroller's measured
            latencies (`deployment.latency_model.LatencyModel.save`). When given, every
            candidate also gets the objective ``latency_seconds``; set ``mac_bound=None`` to
            bound latency in place of raw MACs.
    """

    error_bound: Optional[float] = None
    peak_mem_bound: Optional[int] = None
    model_size_bound: Optional[int] = None
    mac_bound: Optional[int] = None
    latency_bound: Optional[float] = None
    latency_model: Optional[str] = None

    def as_objective_bounds(self) -> dict[str, Optional[float]]:
        """Return the bounds keyed by the journal's objective names.

        ``latency_seconds`` is an objective only when a latency model is configured.
        """
        bounds = {
            "val_error": self.error_bound,
            "peak_memory_bytes": self.peak_mem_bound,
            "model_size_bytes": self.model_size_bound,
            "macs": self.mac_bound,
        }
        if self.latency_model is not None:
            bounds["latency_seconds"] = self.latency_bound
        return bounds

    def load_latency_model(self):
        """Return the configured `deployment.latency_model.LatencyModel`, or None."""
        if self.latency_model is None:
            return None
        from deployment.latency_model import LatencyModel

        try:
            return LatencyModel.load(self.latency_model)
        except (OSError, ValueError, KeyError) as error:
            raise ConfigError(
                f"bound_config.latency_model {self.latency_model!r} could not be loaded "
                f"({error}). Give the path of a JSON file written by LatencyModel.save, e.g. "
                "after LatencyModel.fit_csv on the models.csv of generate_tflite_models.py."
            ) from error


@dataclass
class AgingEvoConfig:
    """Settings of aging evolution.

    Attributes:
        search_space: a `search_space.SearchSpace` instance.
        population_size: members kept alive; the first ``population_size`` candidates are
            random architectures.
        sample_size: tournament size (members drawn with replacement per parent selection).
        rounds: candidates to evaluate in total, failed ones included (``--rounds``).
        max_parallel_evaluations: candidates trained at once (``--parallel``).
        checkpoint_dir: directory that contains the run folders (``--output-dir`` overrides it).
        seed: seed of the search's random choices and of each candidate's training (``--seed``).
        keep_pareto_models: save the trained model of every candidate on the Pareto front in
            the run folder (``models/candidate_<id>.keras``), so that exporting one needs no
            retraining. Models of candidates that leave the front are deleted.
    """

    search_space: Any
    population_size: int = 100
    sample_size: int = 25
    rounds: int = 2000
    max_parallel_evaluations: int = 1
    checkpoint_dir: str = "artifacts"
    seed: int = 0
    keep_pareto_models: bool = False


@dataclass
class RunConfig:
    """Everything a config file defines, validated, plus where it came from."""

    path: Path
    training: TrainingConfig
    search: AgingEvoConfig
    bounds: BoundConfig
    search_algorithm: type

    def with_overrides(self, *, rounds: Optional[int] = None, epochs: Optional[int] = None,
                       parallel: Optional[int] = None, seed: Optional[int] = None,
                       data_dir: Optional[str] = None,
                       output_dir: Optional[str] = None) -> "RunConfig":
        """Return a copy with command-line overrides applied and validated."""
        search = replace(self.search)
        training = replace(self.training)
        if rounds is not None:
            search.rounds = rounds
        if parallel is not None:
            search.max_parallel_evaluations = parallel
        if seed is not None:
            search.seed = seed
        if output_dir is not None:
            search.checkpoint_dir = output_dir
        if epochs is not None:
            training.epochs = epochs
        if data_dir is not None:
            if not getattr(training.dataset, "uses_data_dir", False):
                raise ConfigError(
                    f"--data-dir {data_dir!r} was given, but the dataset "
                    f"{type(training.dataset).__name__} reads no files. Remove --data-dir."
                )
            # Copy so that the config module's own dataset object keeps its setting.
            training.dataset = copy.copy(training.dataset)
            training.dataset.data_dir = data_dir

        overridden = replace(self, training=training, search=search)
        validate_run_config(overridden)
        return overridden

    def describe(self) -> dict:
        """Return the resolved settings as JSON-compatible data (stored with each run)."""
        dataset = self.training.dataset
        return {
            "config_file": str(self.path),
            "search_algorithm": self.search_algorithm.__name__,
            "dataset": {"class": type(dataset).__name__, "name": getattr(dataset, "name", ""),
                        "data_dir": getattr(dataset, "data_dir", None)},
            "search_space": self.search.search_space.describe(),
            "training": {"batch_size": self.training.batch_size, "epochs": self.training.epochs},
            "search": {name: getattr(self.search, f.name) for f in fields(AgingEvoConfig)
                       if (name := f.name) != "search_space"},
            "bounds": self.bounds.as_objective_bounds(),
        }


@dataclass(frozen=True)
class _Rule:
    """One validation rule: a field, a check, and the wording of what is expected."""

    field: str
    check: Callable[[Any], bool]
    expected: str
    fix: str = ""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive_int(value: Any) -> bool:
    return _is_int(value) and value > 0


def _optional_positive_number(value: Any) -> bool:
    return value is None or (_is_number(value) and value > 0)


def _dataset_like(value: Any) -> bool:
    from dataset.base import Dataset

    return isinstance(value, Dataset)


def _search_space_like(value: Any) -> bool:
    from search_space import SearchSpace

    return isinstance(value, SearchSpace)


_TRAINING_RULES = (
    _Rule("dataset", _dataset_like, "a Dataset instance such as dataset.MNIST()",
          "import a dataset class from the dataset package and instantiate it"),
    _Rule("optimizer", callable, "a function with no arguments that returns a Keras optimizer",
          "write e.g. optimizer=lambda: keras.optimizers.SGD(0.01, momentum=0.9)"),
    _Rule("batch_size", _positive_int, "a positive integer"),
    _Rule("epochs", _positive_int, "a positive integer"),
    _Rule("callbacks", callable, "a function with no arguments that returns a list of callbacks",
          "write e.g. callbacks=lambda: []"),
)

_BOUND_RULES = (
    _Rule("error_bound", lambda v: v is None or (_is_number(v) and 0 < v <= 1),
          "None or a number in (0, 1] (a fraction, not a percentage)"),
    _Rule("peak_mem_bound", _optional_positive_number, "None or a positive number of bytes"),
    _Rule("model_size_bound", _optional_positive_number, "None or a positive number of bytes"),
    _Rule("mac_bound", _optional_positive_number, "None or a positive number of MACs"),
    _Rule("latency_bound", _optional_positive_number, "None or a positive number of seconds"),
    _Rule("latency_model", lambda v: v is None or (isinstance(v, (str, Path)) and str(v) != ""),
          "None or the path of a latency model JSON file"),
)

_SEARCH_RULES = (
    _Rule("search_space", _search_space_like, "a SearchSpace instance such as cnn.CnnSearchSpace()"),
    _Rule("population_size", _positive_int, "a positive integer"),
    _Rule("sample_size", _positive_int, "a positive integer"),
    _Rule("rounds", _positive_int, "a positive integer"),
    _Rule("max_parallel_evaluations", _positive_int, "a positive integer"),
    _Rule("checkpoint_dir", lambda v: isinstance(v, (str, Path)) and str(v) != "",
          "a non-empty directory path"),
    _Rule("seed", lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
    _Rule("keep_pareto_models", lambda v: isinstance(v, bool), "True or False"),
)


def _describe_value(value: Any) -> str:
    # The default repr of an object shows its memory address, which tells the user nothing.
    text = repr(value)
    if " object at 0x" not in text:
        return text
    name = type(value).__name__
    return f"{'an' if name[0] in 'AEIOU' else 'a'} {name} object"


def _apply_rules(owner: str, instance: Any, rules: tuple[_Rule, ...]) -> None:
    for rule in rules:
        value = getattr(instance, rule.field)
        if not rule.check(value):
            fix = f" Fix: {rule.fix}." if rule.fix else ""
            raise ConfigError(
                f"{owner}.{rule.field} must be {rule.expected}, but got "
                f"{_describe_value(value)}.{fix}"
            )


def validate_run_config(run: RunConfig) -> None:
    """Raise `ConfigError` for the first invalid field of ``run``."""
    _apply_rules("training_config", run.training, _TRAINING_RULES)
    _apply_rules("bound_config", run.bounds, _BOUND_RULES)
    _apply_rules("search_config", run.search, _SEARCH_RULES)
    if run.bounds.latency_bound is not None and run.bounds.latency_model is None:
        raise ConfigError(
            f"bound_config.latency_bound is {run.bounds.latency_bound!r}, but no latency_model "
            "is given to predict latencies. Set bound_config.latency_model to a fitted model's "
            "JSON file, or remove latency_bound."
        )
    run.bounds.load_latency_model()


def _check_type(module_name: str, name: str, value: Any, expected_type: type) -> None:
    if value is None:
        raise ConfigError(
            f"The config file {module_name} does not define `{name}`. Define "
            f"`{name} = {expected_type.__name__}(...)` at module level (see configs/ for examples)."
        )
    if not isinstance(value, expected_type):
        raise ConfigError(
            f"`{name}` in {module_name} must be a {expected_type.__name__}, but got "
            f"{type(value).__name__}: {value!r}. Build it with {expected_type.__name__}(...)."
        )


#: The config classes whose constructor errors get a friendlier message.
_CONFIG_CLASSES = {cls.__name__: cls for cls in (TrainingConfig, BoundConfig, AgingEvoConfig)}


def _line_in(path: Path, error: BaseException) -> str:
    # Show where in the user's file the error happened, not our loader's frames.
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if Path(frame.filename).resolve() == path]
    return f" (line {frames[-1].lineno})" if frames else ""


def _constructor_problem(error: TypeError) -> Optional[str]:
    """Describe a misspelled or missing field of a config class, or return None."""
    text = str(error)
    unexpected = re.match(r"(\w+)\.__init__\(\) got an unexpected keyword argument '(\w+)'",
                          text)
    if unexpected and unexpected.group(1) in _CONFIG_CLASSES:
        class_name, keyword = unexpected.groups()
        names = [f.name for f in fields(_CONFIG_CLASSES[class_name])]
        close = difflib.get_close_matches(keyword, names, n=1)
        hint = f"Did you mean {close[0]!r}? " if close else ""
        return f"{class_name} has no field {keyword!r}. {hint}Its fields are: {', '.join(names)}."

    missing = re.match(r"(\w+)\.__init__\(\) missing \d+ required (?:positional |keyword-only )?"
                       r"arguments?: (.+)", text)
    if missing and missing.group(1) in _CONFIG_CLASSES:
        class_name, listed = missing.groups()
        absent = re.findall(r"'(\w+)'", listed)
        return (f"{class_name}(...) is missing the required field"
                f"{'s' if len(absent) > 1 else ''} {', '.join(absent)}. Add "
                f"{', '.join(f'{name}=...' for name in absent)} (see configs/ for examples).")
    return None


def _import_problem(error: ImportError) -> Optional[str]:
    """Describe a name missing from a loaded module and list the names it has, or return None."""
    match = re.match(r"cannot import name '(\w+)' from '([\w.]+)'", str(error))
    module = sys.modules.get(match.group(2)) if match else None
    if module is None:
        return None
    name, module_name = match.groups()
    available = sorted(getattr(module, "__all__", None)
                       or (n for n in vars(module) if not n.startswith("_")))
    close = difflib.get_close_matches(name, available, n=1)
    hint = f"Did you mean {close[0]!r}? " if close else ""
    return (f"{module_name} has no name {name!r}. {hint}Available: "
            f"{', '.join(available)}.")


def _execute_module(path: Path):
    module_name = f"unas_config_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"Cannot load {path} as a Python module; a config file must end in .py.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except ConfigError:
        del sys.modules[module_name]
        raise
    except SyntaxError as error:
        del sys.modules[module_name]
        raise ConfigError(
            f"The config file {path} has a syntax error on line {error.lineno}: {error.msg}. "
            "Fix that line; a config file must be valid Python."
        ) from error
    except Exception as error:
        del sys.modules[module_name]
        problem = None
        if isinstance(error, TypeError):
            problem = _constructor_problem(error)
        elif isinstance(error, ImportError):
            problem = _import_problem(error)
        where = _line_in(path, error)
        fix = "" if problem else f" Fix the config file{' at that line' if where else ''}."
        detail = str(problem or error).rstrip(".")
        raise ConfigError(
            f"The config file {path} raised {type(error).__name__}{where} while loading: "
            f"{detail}.{fix}"
        ) from error
    return module


def load_config(path: str | Path) -> RunConfig:
    """Execute a config file and return its validated contents.

    Raises:
        ConfigError: the file is missing, raises on import, lacks a required name, or has an
            invalid field.
    """
    path = Path(path).expanduser().resolve()
    if path.is_dir():
        raise ConfigError(
            f"Config path {path} is a folder. Pass the path of a Python config file, "
            f"e.g. configs/cnn_digits_quick.py."
        )
    if not path.is_file():
        raise ConfigError(
            f"Config file {path} not found. Pass the path of a Python config file, "
            f"e.g. configs/cnn_digits_quick.py."
        )

    module = _execute_module(path)

    for name, expected in (("training_config", TrainingConfig),
                           ("search_config", AgingEvoConfig),
                           ("bound_config", BoundConfig)):
        _check_type(str(path), name, getattr(module, name, None), expected)

    from search_algorithms import AgingEvoSearch

    algorithm = getattr(module, "search_algorithm", AgingEvoSearch)
    if algorithm is not AgingEvoSearch:
        raise ConfigError(
            f"search_algorithm in {path} is {algorithm!r}, but only AgingEvoSearch is available. "
            "Remove the line or set search_algorithm = AgingEvoSearch."
        )

    run = RunConfig(path=path, training=module.training_config, search=module.search_config,
                    bounds=module.bound_config, search_algorithm=algorithm)
    validate_run_config(run)
    _register_module_for_pickling(module)
    return run


def check_training_factories(training: TrainingConfig) -> None:
    """Call the optimizer and callbacks factories once and check what they return.

    A broken factory would otherwise fail every candidate on the workers, one by one, after
    Ray has started.

    Raises:
        ConfigError: a factory raises or returns the wrong kind of object.
    """
    import keras

    optimizer = _call_factory("optimizer", training.optimizer,
                              "a new Keras optimizer, e.g. lambda: keras.optimizers.Adam(0.01)")
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise ConfigError(
            f"training_config.optimizer() returned {_describe_value(optimizer)}, "
            "but it must return a new Keras optimizer. Write e.g. "
            "optimizer=lambda: keras.optimizers.Adam(0.01)."
        )

    callbacks = _call_factory("callbacks", training.callbacks, "a list of Keras callbacks")
    if not isinstance(callbacks, (list, tuple)) or not all(
            isinstance(callback, keras.callbacks.Callback) for callback in callbacks):
        raise ConfigError(
            f"training_config.callbacks() returned {_describe_value(callbacks)}, but it must "
            "return a list of "
            "keras.callbacks.Callback objects. Write e.g. callbacks=lambda: [] or "
            "callbacks=lambda: [keras.callbacks.ReduceLROnPlateau()]."
        )


def _call_factory(field_name: str, factory: Callable[[], Any], expected: str) -> Any:
    try:
        return factory()
    except Exception as error:
        raise ConfigError(
            f"Calling training_config.{field_name}() raised {type(error).__name__}: {error}. "
            f"It must take no arguments and return {expected}."
        ) from error


def check_bounds_reachable(bounds: BoundConfig, input_shape: tuple[int, ...]) -> None:
    """Raise `ConfigError` for a bound that no candidate can meet on this input shape.

    Every network keeps its int8 input tensor in RAM while the first operator runs, so peak
    memory usage is at least one byte per input element.
    """
    input_bytes = math.prod(input_shape)
    if bounds.peak_mem_bound is not None and bounds.peak_mem_bound < input_bytes:
        raise ConfigError(
            f"bound_config.peak_mem_bound is {bounds.peak_mem_bound:,} bytes, but the int8 "
            f"input tensor of shape {tuple(input_shape)} alone takes {input_bytes:,} bytes, so "
            f"no candidate can meet the bound. Set it above {input_bytes:,} bytes, or to None."
        )


def _register_module_for_pickling(module) -> None:
    # Ray workers cannot import a config file by its module name, so the functions and classes
    # defined in it (optimizer and callback factories, custom callbacks) must travel by value.
    # Ray serialises task arguments with its own copy of cloudpickle, not the cloudpickle
    # package, so the module is registered with both.
    import cloudpickle
    import ray.cloudpickle

    cloudpickle.register_pickle_by_value(module)
    ray.cloudpickle.register_pickle_by_value(module)
