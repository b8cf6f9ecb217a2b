"""The run folder: an append-only JSON Lines journal of evaluated candidates, and run metadata.

Layout of ``<output-dir>/<name>/``:

- ``run.json``: format version, run name, creation time and the resolved config
  (`config.RunConfig.describe`), written once when the run is created.
- ``config.py``: a copy of the config file the run was created with.
- ``journal.jsonl``: one JSON object per evaluated candidate (completed or failed), appended
  and flushed to disk as each candidate finishes. See docs/journal.md for the fields.
- ``in_flight.json``: the candidates being evaluated right now, replaced atomically on every
  change, so that a resumed run proposes them again.
- ``pareto.csv``: the Pareto front, written when the search stops.

Nothing here is pickled: reading a run never executes code.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Optional

from errors import JournalError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
JOURNAL_FILE = "journal.jsonl"
RUN_FILE = "run.json"
IN_FLIGHT_FILE = "in_flight.json"
CONFIG_COPY_FILE = "config.py"


def utc_now() -> str:
    """Return the current time as an ISO 8601 string in UTC."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _write_atomically(path: Path, text: str) -> None:
    # Write to a temporary file in the same folder, then rename: a reader never sees half a file.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_journal(path: Path) -> list[dict]:
    """Read a journal file and return its records in the order they were written.

    A last line without its newline is what a crash in the middle of a write leaves; it is
    dropped with a warning. Any other malformed line is a `JournalError`.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    except OSError as error:
        raise JournalError(f"Cannot read the journal {path}: {error}.") from error

    lines = text.split("\n")
    complete_lines, last = lines[:-1], lines[-1]
    if last.strip():
        logger.warning("Dropped a half-written last line of %s (%d characters): the run was "
                       "interrupted while writing it.", path, len(last))

    records = []
    for number, line in enumerate(complete_lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise JournalError(
                f"Line {number} of {path} is not valid JSON ({error.msg}). The journal is "
                "corrupt: restore it from a backup or start a new run with another --name."
            ) from error
        if not isinstance(record, dict) or "id" not in record or "status" not in record:
            raise JournalError(
                f"Line {number} of {path} is not a candidate record (expected an object with "
                f"'id' and 'status'). Is this a journal written by this tool?"
            )
        records.append(record)
    return records


class RunDirectory:
    """One run's folder: creates it, checks that a resume matches, and appends records."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def journal_path(self) -> Path:
        return self.path / JOURNAL_FILE

    def exists(self) -> bool:
        return (self.path / RUN_FILE).is_file()

    def create(self, name: str, description: dict, config_file: Optional[Path]) -> None:
        """Create the folder and its metadata files; raise `JournalError` if not writable."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            if config_file is not None:
                shutil.copyfile(config_file, self.path / CONFIG_COPY_FILE)
            metadata = {"format_version": FORMAT_VERSION, "name": name, "created_at": utc_now(),
                        "config": description}
            _write_atomically(self.path / RUN_FILE, json.dumps(metadata, indent=2) + "\n")
            self.journal_path.touch()
        except OSError as error:
            raise JournalError(
                f"Cannot write the run folder {self.path}: {error}. Choose a writable "
                "--output-dir."
            ) from error

    def metadata(self) -> dict:
        """Return the contents of run.json."""
        path = self.path / RUN_FILE
        try:
            metadata = json.loads(path.read_text())
        except FileNotFoundError as error:
            raise JournalError(
                f"{path} not found: {self.path} is not a run folder of this tool."
            ) from error
        except (OSError, json.JSONDecodeError) as error:
            raise JournalError(f"Cannot read {path}: {error}.") from error
        version = metadata.get("format_version")
        if version != FORMAT_VERSION:
            raise JournalError(
                f"{path} has format_version {version!r}, but this version of the tool reads "
                f"version {FORMAT_VERSION}."
            )
        return metadata

    def check_compatible(self, description: dict, force: bool = False) -> None:
        """Refuse to resume with a different search space or dataset unless ``force``."""
        stored = self.metadata()["config"]
        differences = [key for key in ("search_space", "dataset")
                       if stored.get(key) != description.get(key)]
        if not differences:
            return
        detail = "; ".join(f"{key}: stored {stored.get(key)!r}, now {description.get(key)!r}"
                           for key in differences)
        if force:
            logger.warning("Resuming %s although the config changed (%s).", self.path, detail)
            return
        raise JournalError(
            f"The run in {self.path} was created with a different config ({detail}). Resume with "
            "the original config, choose another --name, or pass --force to resume anyway."
        )

    def records(self) -> list[dict]:
        return read_journal(self.journal_path)

    def append(self, record: dict) -> None:
        """Append one record and flush it to disk before returning."""
        line = json.dumps(record, sort_keys=True, allow_nan=False) + "\n"
        with open(self.journal_path, "a") as file:
            file.write(line)
            file.flush()
            os.fsync(file.fileno())

    def save_in_flight(self, proposals: Iterable[dict]) -> None:
        _write_atomically(self.path / IN_FLIGHT_FILE,
                          json.dumps(list(proposals), sort_keys=True) + "\n")

    def load_in_flight(self) -> list[dict]:
        path = self.path / IN_FLIGHT_FILE
        try:
            proposals = json.loads(path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, json.JSONDecodeError) as error:
            logger.warning("Ignored %s (%s): the candidates that were in flight will not be "
                           "proposed again.", path, error)
            return []
        return proposals if isinstance(proposals, list) else []


def import_records(source: Path) -> list[dict]:
    """Read the records of another run, given its folder or its journal file (``--load-from``)."""
    source = Path(source).expanduser()
    journal = source / JOURNAL_FILE if source.is_dir() else source
    if not journal.is_file():
        raise JournalError(
            f"--load-from {source}: no journal found (expected a run folder containing "
            f"{JOURNAL_FILE}, or the journal file itself)."
        )
    return read_journal(journal)


def json_safe(value: Any) -> Any:
    """Return ``value`` with NaN and infinities replaced by None (JSON has neither)."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value
