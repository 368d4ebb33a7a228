"""The files `--outputs DIR` writes for pipeline tools, and the run file `register` reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from innflow.errors import ConfigError
from innflow.workflows import outputs


def test_an_outputs_folder_that_cannot_be_written_is_refused_before_any_work(tmp_path) -> None:
    taken = tmp_path / "a-file"
    taken.write_text("")
    with pytest.raises(ConfigError, match=r"--outputs .*a-file: cannot write there"):
        outputs.prepare(taken)
    made = outputs.prepare(tmp_path / "reports" / "train")
    assert made.is_dir() and list(made.iterdir()) == []  # the probe leaves nothing behind


def test_metrics_are_json_dvc_can_read(tmp_path: Path) -> None:
    outputs.write_release_outputs({"version": "3", "gate": {"ece": float("nan")}}, tmp_path)
    written = json.loads((tmp_path / "release.json").read_text())  # strict JSON: no NaN
    assert written == {"version": "3", "gate": {"ece": None}}


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (None, "no such run file"),
        ("not json", "not a run file"),
        ("[1, 2]", "has no run_id"),
        ('{"run_id": ""}', "has no run_id"),
    ],
)
def test_a_bad_run_file_gets_one_line(tmp_path: Path, text: str | None, said: str) -> None:
    path = tmp_path / "run.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match=said):
        outputs.run_of(str(path))


def test_a_run_id_or_model_uri_passes_through(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text('{"run_id": "abc123"}')
    assert outputs.run_of(str(tmp_path / "run.json")) == "abc123"
    assert outputs.run_of("abc123") == "abc123"
    assert outputs.run_of("models:/m-1") == "models:/m-1"
