"""Secrets never logged: URI passwords masked, the uncommitted diff scanned and redacted."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from innflow import redaction
from innflow.reproducibility import provenance

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://bob:Sup3rSecret@mlflow:5000", "http://bob:***@mlflow:5000"),
        ("postgresql+psycopg2://u:p%40ss@db:5432/mlflow", "postgresql+psycopg2://u:***@db:5432/mlflow"),
        ("postgresql://u:p@ss@db/mlflow", "postgresql://u:***@db/mlflow"),
        ("https://minio:9000", "https://minio:9000"),
        ("postgresql://mlflow@db/mlflow", "postgresql://mlflow@db/mlflow"),
        ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
        ("server http://a:b@h:1 cannot be reached", "server http://a:***@h:1 cannot be reached"),
        ('{"uri": "http://a:b@h", "x": "s3://k:s@e/b"}', '{"uri": "http://a:***@h", "x": "s3://k:***@e/b"}'),
        ("http://host:5000/path?u=a@b", "http://host:5000/path?u=a@b"),
    ],
)  # fmt: skip
def test_uri_credentials_masks_passwords_only(text: str, expected: str) -> None:
    assert redaction.uri_credentials(text) == expected


@pytest.mark.parametrize(
    ("path", "credential"),
    [(".env", True), ("deploy/.env.production", True), ("certs/server.pem", True),
     ("home/.netrc", True), (".pgpass", True), ("basic_auth.ini", True), ("credentials", True),
     ("src/innflow/config.py", False), ("environment.yml", False), (".envrc.md", False)],
)  # fmt: skip
def test_credential_files_by_name(path: str, credential: bool) -> None:
    assert redaction.is_credential_file(path) is credential


def _diff(path: str, *added: str) -> str:
    body = "".join(f"+{line}\n" for line in added)
    return (
        f"diff --git a/{path} b/{path}\nindex 3f78685..de23001 100644\n--- a/{path}\n"
        f"+++ b/{path}\n@@ -1,1 +1,{len(added) + 1} @@\n context = 1\n{body}"
    )


def test_a_file_with_a_secret_is_redacted_and_the_detector_named() -> None:
    clean = _diff("src/a.py", "x = compute(1)")
    leaky = _diff("deploy/run.sh", f"export AWS_SECRET_ACCESS_KEY={AWS_SECRET}", "echo ok")
    text, paths = redaction.redact_diff(clean + leaky)
    assert paths == ("deploy/run.sh",)
    assert AWS_SECRET not in text and "echo ok" not in text
    assert "diff --git a/deploy/run.sh b/deploy/run.sh" in text
    assert "# innflow redacted this file's changes: " in text and "Secret Keyword" in text
    assert clean in text  # other files are logged as they are


def test_removed_and_context_lines_are_scanned_too() -> None:
    diff = (
        "diff --git a/conf.py b/conf.py\n--- a/conf.py\n+++ b/conf.py\n@@ -1,2 +1,1 @@\n"
        ' DB = "postgresql://bob:Sup3rSecret@db/mlflow"\n-old = 1\n'
    )
    text, paths = redaction.redact_diff(diff)
    assert paths == ("conf.py",) and "Sup3rSecret" not in text


def test_a_clean_diff_is_unchanged() -> None:
    diff = _diff("src/a.py", "x = compute(1)", "def f():", "    return x")
    assert redaction.redact_diff(diff) == (diff, ())


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git checkout standing in for innflow's source, with one commit."""
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "t@example.com")
    _git(tmp_path, "config", "user.name", "t")
    (tmp_path / "train.sh").write_text("echo train\n")
    (tmp_path / ".env").write_text("A=1\n")
    _git(tmp_path, "add", "train.sh", ".env")
    _git(tmp_path, "commit", "-q", "-m", "start")
    monkeypatch.setattr(provenance, "source_root", lambda: tmp_path)
    return tmp_path


def test_code_state_logs_no_secret_and_says_which_file_was_redacted(checkout: Path) -> None:
    (checkout / "train.sh").write_text(f"export AWS_SECRET_ACCESS_KEY={AWS_SECRET}\necho train\n")
    (checkout / ".env").write_text("MLFLOW_TRACKING_PASSWORD=hunter2-but-longer\n")  # tracked
    (checkout / "server.pem").write_text("-----BEGIN RSA PRIVATE KEY-----\n")  # untracked
    (checkout / "notes.txt").write_text("hello\n")
    state = provenance.code_state()
    assert state.dirty
    assert AWS_SECRET not in state.diff and "hunter2" not in state.diff
    assert ".env" not in state.diff and "server.pem" not in state.diff
    assert "# untracked: notes.txt" in state.diff
    assert state.redacted == ("train.sh",)
    assert state.tags()[provenance.DIFF_REDACTED_TAG] == "train.sh"
    assert state.diff_sha256 == provenance.hashlib.sha256(state.diff.encode()).hexdigest()


def test_a_clean_change_is_logged_whole_with_no_redaction_tag(checkout: Path) -> None:
    (checkout / "train.sh").write_text("echo train --fast\n")
    state = provenance.code_state()
    assert "+echo train --fast" in state.diff
    assert provenance.DIFF_REDACTED_TAG not in state.tags()


def test_every_credential_file_pattern_is_git_ignored() -> None:
    ignored = (Path(__file__).resolve().parents[2] / ".gitignore").read_text().splitlines()
    assert [p for p in redaction.CREDENTIAL_FILES if p not in ignored] == []
