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
- ``.lock``: an empty file that the driver locks with an exclusive `fcntl.flock` while it runs
  the search. The operating system releases the lock when the process dies, even by SIGKILL.

``run.json`` is written last when a run is created, so a folder without it is an unfinished
creation that the next run simply creates again. Nothing here is pickled: reading a run never
executes code.
"""
from __future__ import annotations

import fcntl
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
LOCK_FILE = ".lock"

#: Values of a record's ``status``.
RECORD_STATUSES = ("completed", "failed")


def utc_now() -> str:
    """Return the current time as an ISO 8601 string in UTC."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _fsync_directory(path: Path) -> None:
    # A new or renamed file survives a power loss only once its folder entry is on disk too.
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


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
    _fsync_directory(path.parent)


def _record_line(record: dict) -> str:
    return json.dumps(record, sort_keys=True, allow_nan=False) + "\n"


def read_journal(path: Path) -> list[dict]:
    """Read a journal file and return its records in the order they were written.

    A last line without its newline is what a crash in the middle of a write leaves; it is
    dropped with a warning. Any other malformed line is a `JournalError`.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except UnicodeDecodeError as error:
        raise JournalError(
            f"The journal {path} is not UTF-8 text (byte {error.start} is invalid). It is "
            "corrupt or not a journal: restore it from a backup or start a new run with "
            "another --name."
        ) from error
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


def check_records(records: list[dict], source: Path) -> None:
    """Raise `JournalError` unless the records can seed or resume a search.

    Checks what the search loop relies on: unique non-negative integer ids, a known status,
    an architecture object, and the objectives of every completed candidate.
    """
    first_index: dict[int, int] = {}
    for index, record in enumerate(records, start=1):
        candidate_id = record.get("id")
        where = f"Record {index} of {source}"
        if not isinstance(candidate_id, int) or isinstance(candidate_id, bool) \
                or candidate_id < 0:
            raise JournalError(f"{where} has id {candidate_id!r}, expected a non-negative "
                               "integer. Is this a journal written by this tool?")
        if candidate_id in first_index:
            raise JournalError(
                f"{where} repeats candidate id {candidate_id} of record "
                f"{first_index[candidate_id]}, but ids must be unique. The journal was edited "
                "or merged by hand: remove the duplicate line."
            )
        first_index[candidate_id] = index
        if record.get("status") not in RECORD_STATUSES:
            raise JournalError(f"{where} (candidate {candidate_id}) has status "
                               f"{record.get('status')!r}, expected one of {RECORD_STATUSES}.")
        if not isinstance(record.get("architecture"), dict):
            raise JournalError(f"{where} (candidate {candidate_id}) has no architecture object. "
                               "Is this a journal written by this tool?")
        if record["status"] == "completed" and not isinstance(record.get("objectives"), dict):
            raise JournalError(f"{where} (candidate {candidate_id}) is completed but has no "
                               "objectives object. Is this a journal written by this tool?")


def check_architectures(records: list[dict], search_space: Any,
                        input_shape: tuple[int, ...], source: Path) -> None:
    """Raise `JournalError` unless every record's architecture is valid in ``search_space``.

    Records of another search space would otherwise stop the search later, when aging
    evolution picks one as a parent.
    """
    for record in records:
        try:
            architecture = search_space.architecture_from_dict(record["architecture"])
            search_space.validate(architecture, input_shape)
        except (ValueError, TypeError, KeyError) as error:
            raise JournalError(
                f"Candidate {record['id']} in {source} is not a valid architecture of the "
                f"{search_space.name} search space for inputs of shape {tuple(input_shape)}: "
                f"{str(error).rstrip('.')}. Use a journal written with the same search space "
                "and dataset."
            ) from error


class RunDirectory:
    """One run's folder: creates it, checks that a resume matches, and appends records."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock_handle: Optional[int] = None

    @property
    def journal_path(self) -> Path:
        return self.path / JOURNAL_FILE

    def exists(self) -> bool:
        return (self.path / RUN_FILE).is_file()

    def create(self, name: str, description: dict, config_file: Optional[Path],
               records: Iterable[dict] = ()) -> None:
        """Create the folder, its journal (holding ``records``) and its metadata files.

        run.json is written last, so a crash part-way leaves a folder that `exists` does not
        count as a run, and the next attempt creates it again with the same records.

        Raises:
            JournalError: the folder or one of its files cannot be written.
        """
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            if config_file is not None:
                shutil.copyfile(config_file, self.path / CONFIG_COPY_FILE)
            _write_atomically(self.journal_path, "".join(_record_line(r) for r in records))
            metadata = {"format_version": FORMAT_VERSION, "name": name, "created_at": utc_now(),
                        "config": description}
            _write_atomically(self.path / RUN_FILE, json.dumps(metadata, indent=2) + "\n")
        except OSError as error:
            raise JournalError(
                f"Cannot write the run folder {self.path}: {error}. Choose a writable "
                "--output-dir."
            ) from error

    def lock(self) -> None:
        """Take the run's lock for this process, creating the folder if needed.

        Raises:
            JournalError: another process holds the lock, or the folder is not writable.
        """
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            handle = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise JournalError(
                f"Cannot write the run folder {self.path}: {error}. Choose a writable "
                "--output-dir."
            ) from error
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            os.close(handle)
            raise JournalError(
                f"The run in {self.path} is in use by another driver process. Wait for it to "
                "finish, or choose another --name."
            ) from error
        self._lock_handle = handle

    def unlock(self) -> None:
        """Release the lock taken by `lock` (closing the file releases the flock)."""
        if self._lock_handle is not None:
            os.close(self._lock_handle)
            self._lock_handle = None

    def metadata(self) -> dict:
        """Read run.json, check its format version and return its contents."""
        path = self.path / RUN_FILE
        try:
            metadata = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as error:
            raise JournalError(
                f"{path} not found: {self.path} is not a run folder of this tool."
            ) from error
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise JournalError(f"Cannot read {path}: {error}. It is corrupt or not written by "
                               "this tool: choose another --name.") from error
        if not isinstance(metadata, dict):
            raise JournalError(f"{path} contains a JSON {type(metadata).__name__}, expected the "
                               "object that driver.py writes. Choose another --name.")
        version = metadata.get("format_version")
        if version != FORMAT_VERSION:
            raise JournalError(
                f"{path} has format_version {version!r}, but this version of the tool reads "
                f"version {FORMAT_VERSION}. Use the version of driver.py that created the run, "
                "or choose another --name."
            )
        if not isinstance(metadata.get("config"), dict):
            raise JournalError(f"{path} has no 'config' object, so the run's settings are "
                               "unknown. Choose another --name.")
        return metadata

    def check_compatible(self, description: dict, force: bool = False) -> None:
        """Reject a resume with a different search space or dataset unless ``force``."""
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

    def discard_torn_tail(self) -> None:
        """Cut a half-written last line off the journal before records are appended again.

        Without this, the next record would be glued to the fragment and the journal would
        contain a corrupt line in the middle. The fragment's candidate is still listed in
        in_flight.json, so it is proposed again.
        """
        try:
            with open(self.journal_path, "rb+") as file:
                content = file.read()
                if not content or content.endswith(b"\n"):
                    return
                keep = content.rfind(b"\n") + 1
                file.truncate(keep)
                file.flush()
                os.fsync(file.fileno())
        except FileNotFoundError:
            return
        except OSError as error:
            raise JournalError(f"Cannot repair the journal {self.journal_path}: {error}.") \
                from error
        logger.warning("Removed a half-written last line (%d bytes) from %s; its candidate will "
                       "be proposed again.", len(content) - keep, self.journal_path)

    def append(self, record: dict) -> None:
        """Append one record and flush it to disk before returning.

        The newline is the last byte written, so a crash part-way leaves a prefix without a
        newline, which `read_journal` drops and `discard_torn_tail` removes.
        """
        line = _record_line(record).encode("utf-8")
        with open(self.journal_path, "ab") as file:
            file.write(line)
            file.flush()
            os.fsync(file.fileno())

    def save_in_flight(self, proposals: Iterable[dict]) -> None:
        _write_atomically(self.path / IN_FLIGHT_FILE,
                          json.dumps(list(proposals), sort_keys=True) + "\n")

    def load_in_flight(self) -> list[dict]:
        """Return the proposals that were in flight when the run last stopped.

        An unreadable file loses only the chance to re-propose those candidates, so it is
        logged and ignored rather than stopping the resume.
        """
        path = self.path / IN_FLIGHT_FILE
        try:
            proposals = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            logger.warning("Ignored %s (%s): the candidates that were in flight will not be "
                           "proposed again.", path, error)
            return []
        if not isinstance(proposals, list) or not all(
                isinstance(proposal, dict) and isinstance(proposal.get("id"), int)
                and isinstance(proposal.get("architecture"), dict) for proposal in proposals):
            logger.warning("Ignored %s: expected a list of proposals with 'id' and "
                           "'architecture'. The candidates that were in flight will not be "
                           "proposed again.", path)
            return []
        return proposals


def import_records(source: Path) -> list[dict]:
    """Read the records of another run, given its folder or its journal file (``--load-from``).

    The records are renumbered with rounds 1, 2, ... in journal order, because a round is a
    record's position in its journal.
    """
    source = Path(source).expanduser()
    journal = source / JOURNAL_FILE if source.is_dir() else source
    if not journal.is_file():
        raise JournalError(
            f"--load-from {source}: no journal found (expected a run folder containing "
            f"{JOURNAL_FILE}, or the journal file itself)."
        )
    records = read_journal(journal)
    check_records(records, journal)
    return [dict(record, round=position) for position, record in enumerate(records, start=1)]


def json_safe(value: Any) -> Any:
    """Return ``value`` with NaN and infinities replaced by None (JSON has neither)."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value
