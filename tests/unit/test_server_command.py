"""`innflow server`: the mlflow command line and the refusals, without starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from innflow.errors import ConfigError
from innflow.workflows.server import (
    KNOWN_DEFAULT_ADMIN_PASSWORD,
    ServerSettings,
    auth_config,
    command,
    environment,
    store_uri,
)


def test_command_names_store_proxy_and_listener() -> None:
    argv = command(
        ServerSettings(
            backend_store_uri="postgresql://u:p@db:5432/mlflow",
            artifacts_destination="s3://bucket/artifacts",
            host="0.0.0.0",
            port=5001,
            workers=3,
            allowed_hosts="mlflow,mlflow:5000",
        )
    )
    assert argv[1:4] == ["-m", "mlflow", "server"]
    pairs = dict(zip(argv[4::2], argv[5::2], strict=False))
    assert "--backend-store-uri" not in argv  # in the environment: argv is public in `ps`
    assert not [a for a in argv if "u:p@" in a]
    assert argv[argv.index("--artifacts-destination") + 1] == "s3://bucket/artifacts"
    assert "--serve-artifacts" in argv
    assert argv[argv.index("--port") + 1] == "5001" and argv[argv.index("--workers") + 1] == "3"
    assert argv[argv.index("--allowed-hosts") + 1] == "mlflow,mlflow:5000"
    assert "--app-name" not in argv and pairs


def test_auth_adds_the_basic_auth_app() -> None:
    argv = command(ServerSettings(auth=True))
    assert argv[argv.index("--app-name") + 1] == "basic-auth"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("postgresql://h/db", "postgresql+psycopg2://h/db"),
        ("postgres://h/db", "postgresql+psycopg2://h/db"),
        ("postgresql+psycopg2://h/db", "postgresql+psycopg2://h/db"),
        ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
    ],
)
def test_store_uri_names_the_locked_driver(uri: str, expected: str) -> None:
    assert store_uri(uri) == expected


@pytest.mark.parametrize(
    "settings",
    [
        ServerSettings(workers=0),
        ServerSettings(port=0),
        ServerSettings(backend_store_uri="file:./x"),
    ],
)
def test_bad_settings_are_refused(settings: ServerSettings) -> None:
    with pytest.raises(ConfigError):
        command(settings)


def test_auth_refuses_missing_and_default_admin_password() -> None:
    with pytest.raises(ConfigError, match="MLFLOW_AUTH_ADMIN_PASSWORD"):
        auth_config(ServerSettings(auth=True), {})
    with pytest.raises(ConfigError, match="default admin password"):
        auth_config(
            ServerSettings(auth=True), {"MLFLOW_AUTH_ADMIN_PASSWORD": KNOWN_DEFAULT_ADMIN_PASSWORD}
        )
    allowed = ServerSettings(auth=True, allow_default_admin_password=True)
    env = {"MLFLOW_AUTH_ADMIN_PASSWORD": KNOWN_DEFAULT_ADMIN_PASSWORD}
    with pytest.raises(ConfigError, match="MLFLOW_FLASK_SERVER_SECRET_KEY"):
        auth_config(allowed, env)
    assert "admin_username = admin" in auth_config(
        allowed, {**env, "MLFLOW_FLASK_SERVER_SECRET_KEY": "k"}
    )


def test_auth_config_keeps_the_password_out_of_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", "s3cret-admin-pw")
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_USERNAME", "root-of-mlflow")
    monkeypatch.setenv("MLFLOW_FLASK_SERVER_SECRET_KEY", "csrf-key")
    settings = ServerSettings(
        backend_store_uri="postgresql://u@h/mlflow", auth=True, auth_database_uri=None
    )
    env = environment(settings, tmp_path / "conf")
    text = Path(env["MLFLOW_AUTH_CONFIG_PATH"]).read_text()
    assert "s3cret-admin-pw" not in text
    assert "database_uri = postgresql+psycopg2://u@h/mlflow" in text
    assert "admin_username = root-of-mlflow" in text
    assert Path(env["MLFLOW_AUTH_CONFIG_PATH"]).stat().st_mode & 0o777 == 0o600


def test_the_backend_store_uri_reaches_mlflow_through_the_environment(tmp_path: Path) -> None:
    settings = ServerSettings(backend_store_uri="postgresql://u:pw-in-env@db/mlflow")
    env = environment(settings, tmp_path / "conf")
    assert env["MLFLOW_BACKEND_STORE_URI"] == "postgresql+psycopg2://u:pw-in-env@db/mlflow"
    assert not [a for a in command(settings) if "pw-in-env" in a]


def test_mlflow_job_runner_is_off_unless_the_team_turns_it_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", raising=False)
    assert environment(ServerSettings(), tmp_path)["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    monkeypatch.setenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "true")
    assert environment(ServerSettings(), tmp_path)["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "true"


def test_no_auth_writes_no_config(tmp_path: Path) -> None:
    environment(ServerSettings(), tmp_path / "conf")
    assert not (tmp_path / "conf").exists()


def test_a_password_on_the_command_line_is_warned_about_and_never_echoed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import sys

    from innflow.cli import main

    for argv_uri, env_uri, warned in (
        ("file://u:argv-secret@x/store", None, True),
        (None, "file://u:env-secret@x/store", False),
    ):
        argv = ["innflow", "server"] + (["--backend-store-uri", argv_uri] if argv_uri else [])
        monkeypatch.setattr(sys, "argv", argv)
        if env_uri:
            monkeypatch.setenv("INNFLOW_BACKEND_STORE_URI", env_uri)
        with pytest.raises(SystemExit) as exited:
            main()  # the file store is refused before anything starts
        assert exited.value.code == 2
        stderr = capsys.readouterr().err
        assert ("warning: --backend-store-uri holds a password" in stderr) is warned
        assert "secret" not in stderr
