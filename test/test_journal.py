"""The run folder: journal appends, crash leftovers, compatibility checks, in-flight state."""
import json
import logging

import pytest

from errors import JournalError
from search_state.journal import RunDirectory, import_records, read_journal

DESCRIPTION = {"search_space": {"name": "cnn", "arguments": {}},
               "dataset": {"class": "Digits", "name": "digits", "data_dir": None}}


def make_run(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.create("run", DESCRIPTION, config_file=None)
    return run


def test_append_then_read_round_trip(tmp_path):
    run = make_run(tmp_path)
    records = [{"id": i, "status": "completed", "objectives": {"val_error": 0.1 * i}}
               for i in range(3)]
    for record in records:
        run.append(record)
    assert run.records() == records


def test_half_written_last_line_dropped_with_warning(tmp_path, caplog):
    run = make_run(tmp_path)
    run.append({"id": 0, "status": "completed"})
    with open(run.journal_path, "a") as file:
        file.write('{"id": 1, "status": "compl')
    with caplog.at_level(logging.WARNING):
        records = run.records()
    assert [r["id"] for r in records] == [0]
    assert "half-written" in caplog.text


def test_corrupt_middle_line_is_an_error(tmp_path):
    run = make_run(tmp_path)
    run.journal_path.write_text('{"id": 0, "status": "completed"}\nnot json\n'
                                '{"id": 1, "status": "completed"}\n')
    with pytest.raises(JournalError, match="Line 2 .* not valid JSON"):
        run.records()


def test_foreign_json_lines_rejected(tmp_path):
    journal = tmp_path / "journal.jsonl"
    journal.write_text('{"event": "something else"}\n')
    with pytest.raises(JournalError, match="not a candidate record"):
        read_journal(journal)


def test_resume_with_other_search_space_rejected(tmp_path):
    run = make_run(tmp_path)
    changed = dict(DESCRIPTION, search_space={"name": "mlp", "arguments": {}})
    with pytest.raises(JournalError, match="different config"):
        run.check_compatible(changed)


def test_resume_with_other_search_space_forced(tmp_path):
    run = make_run(tmp_path)
    changed = dict(DESCRIPTION, search_space={"name": "mlp", "arguments": {}})
    run.check_compatible(changed, force=True)


def test_run_json_of_unknown_version_rejected(tmp_path):
    run = make_run(tmp_path)
    metadata = json.loads((run.path / "run.json").read_text())
    metadata["format_version"] = 99
    (run.path / "run.json").write_text(json.dumps(metadata))
    with pytest.raises(JournalError, match="format_version 99"):
        run.metadata()


def test_in_flight_round_trip(tmp_path):
    run = make_run(tmp_path)
    proposals = [{"id": 4, "architecture": {}}, {"id": 5, "architecture": {}}]
    run.save_in_flight(proposals)
    assert run.load_in_flight() == proposals


def test_unwritable_output_dir_is_an_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    run = RunDirectory(blocker / "run")
    with pytest.raises(JournalError, match="Cannot write the run folder"):
        run.create("run", DESCRIPTION, config_file=None)


def test_import_records_needs_a_journal(tmp_path):
    with pytest.raises(JournalError, match="no journal found"):
        import_records(tmp_path)


def test_append_rejects_nan(tmp_path):
    run = make_run(tmp_path)
    with pytest.raises(ValueError):
        run.append({"id": 0, "status": "completed", "objectives": {"val_error": float("nan")}})
