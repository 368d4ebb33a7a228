"""The DVC data version innflow records on a run, read from DVC's own files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from innflow.reproducibility import dvc


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("DVC_ROOT", *dvc.ENVIRONMENT_TAGS):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".dvc").mkdir()
    (tmp_path / "data").mkdir()
    return tmp_path


def _track(path: Path, md5: str | None = None) -> str:
    """What `dvc add` writes (DVC 3): the file's md5 in ``<file>.dvc`` beside it."""
    digest = md5 or hashlib.md5(path.read_bytes()).hexdigest()
    pointer = {"outs": [{"md5": digest, "size": path.stat().st_size, "hash": "md5",
                         "path": path.name}]}  # fmt: skip
    path.with_name(path.name + ".dvc").write_text(yaml.safe_dump(pointer))
    return digest


def test_a_file_tracked_by_its_dvc_file(project: Path) -> None:
    data = project / "data" / "bookings.parquet"
    data.write_bytes(b"version one")
    md5 = _track(data)
    found = dvc.data_version(data)
    assert found is not None
    assert (found.md5, found.source, found.workspace_md5) == (md5, "data/bookings.parquet.dvc", md5)
    assert dvc.tags(data) == {dvc.MD5_TAG: md5, dvc.SOURCE_TAG: "data/bookings.parquet.dvc"}


def test_a_folder_tracked_as_a_whole(project: Path) -> None:
    data = project / "data" / "bookings.parquet"
    data.write_bytes(b"rows")
    pointer = {"outs": [{"md5": "abc123.dir", "hash": "md5", "path": "data"}]}
    (project / "data.dvc").write_text(yaml.safe_dump(pointer))
    found = dvc.data_version(data)
    assert found is not None
    assert (found.md5, found.source, found.workspace_md5) == ("abc123.dir", "data.dvc", None)


def test_a_stage_output_in_dvc_lock(project: Path) -> None:
    data = project / "data" / "prepared.csv"
    data.write_text("a,b\n1,2\n")
    lock = {"schema": "2.0", "stages": {"prepare": {"cmd": "python prepare.py", "outs": [
        {"path": "data/prepared.csv", "hash": "md5", "md5": "f00d", "size": 8}]}}}  # fmt: skip
    (project / "dvc.lock").write_text(yaml.safe_dump(lock))
    found = dvc.data_version(data)
    assert found is not None and (found.md5, found.source) == ("f00d", "dvc.lock:prepare")


def test_outside_a_dvc_project_nothing_is_recorded(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("DVC_ROOT", raising=False)
    data = tmp_path / "bookings.parquet"
    data.write_bytes(b"x")
    assert dvc.data_version(data) is None
    assert dvc.tags(data) == {}


def test_the_stage_and_experiment_dvc_runs_the_command_under(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = project / "data" / "bookings.parquet"
    data.write_bytes(b"x")
    monkeypatch.setenv("DVC_ROOT", str(project))
    monkeypatch.setenv("DVC_STAGE", "train")
    monkeypatch.setenv("DVC_EXP_NAME", "leaves-63")
    monkeypatch.setenv("DVC_EXP_BASELINE_REV", "0" * 40)
    assert dvc.tags(data) == {
        "innflow.dvc.stage": "train",
        "innflow.dvc.experiment": "leaves-63",
        "innflow.dvc.baseline_rev": "0" * 40,
    }  # the data is not tracked: no version is claimed


def test_reproduce_says_whether_the_version_still_matches(project: Path) -> None:
    data = project / "data" / "bookings.parquet"
    data.write_bytes(b"version one")
    recorded = dvc.tags(data) | {dvc.MD5_TAG: _track(data)}
    same = dvc.version_check(recorded, data)
    assert same is not None and same.same and not same.decisive
    data.write_bytes(b"version two")  # edited, not `dvc add`ed: DVC's file still says one
    stale = dvc.version_check(recorded, data)
    assert stale is not None and not stale.same
    assert hashlib.md5(b"version two").hexdigest() in stale.now
    new = _track(data)
    moved = dvc.version_check(recorded, data)
    assert moved is not None and (moved.original, moved.now) == (recorded[dvc.MD5_TAG], new)
    assert dvc.version_check({}, data) is None  # a run made outside DVC claims nothing
