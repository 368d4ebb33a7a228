"""`innflow server`: the team's central MLflow tracking server, run as `mlflow server` with
a database for metadata and an object store behind the server's artifact proxy, optionally
with MLflow's basic-auth app. Clients then need only MLFLOW_TRACKING_URI (+ credentials).

This module decides the command line and the environment, and supervises the server;
MLflow serves. The backend store URI (password included) reaches MLflow through its
environment, never its command line, which every local user can read in `ps`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from innflow.errors import ConfigError
from innflow.redaction import uri_credentials

# Older MLflow releases shipped this admin password in basic_auth.ini and many guides still
# copy it; a server that accepts it is open to anyone who has read those guides.
KNOWN_DEFAULT_ADMIN_PASSWORD = "password1234"


@dataclass(frozen=True)
class ServerSettings:
    """Where the server keeps metadata and artifacts, where it listens, and whether it
    asks who is calling.
    """

    backend_store_uri: str = "sqlite:///mlflow.db"
    artifacts_destination: str = "./mlartifacts"
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 2
    auth: bool = False
    auth_database_uri: str | None = None
    allowed_hosts: str | None = None
    allow_default_admin_password: bool = False


def store_uri(uri: str) -> str:
    """The backend store URI with its database driver named.

    With MLflow 3.17 a bare ``postgresql://`` made the server import the psycopg 3 driver,
    which is not installed; psycopg2 is the one innflow locks.
    """
    if uri.startswith("postgresql://") or uri.startswith("postgres://"):
        return "postgresql+psycopg2://" + uri.split("://", 1)[1]
    return uri


def command(settings: ServerSettings) -> list[str]:
    """The `mlflow server` command line for ``settings``: no secret in it (the backend store
    URI is in `environment`).
    """
    if settings.workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {settings.workers}")
    if not 0 < settings.port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535, not {settings.port}")
    if store_uri(settings.backend_store_uri).startswith("file:"):
        raise ConfigError("the file store cannot hold a model registry: use a database URI")
    argv = [
        sys.executable, "-m", "mlflow", "server",
        "--artifacts-destination", settings.artifacts_destination,
        "--serve-artifacts",
        "--host", settings.host,
        "--port", str(settings.port),
        "--workers", str(settings.workers),
    ]  # fmt: skip
    if settings.allowed_hosts:
        argv += ["--allowed-hosts", settings.allowed_hosts]
    if settings.auth:
        argv += ["--app-name", "basic-auth"]
    return argv


def auth_config(settings: ServerSettings, environ: Mapping[str, str]) -> str:
    """The basic-auth app's ini file: users and permissions in ``auth_database_uri`` (by
    default the backend store's database; MLflow keeps them in their own tables).

    The admin password is deliberately not written here: MLflow reads it from
    MLFLOW_AUTH_ADMIN_PASSWORD when it creates the admin user on first start.
    """
    password = environ.get("MLFLOW_AUTH_ADMIN_PASSWORD", "")
    if not password:
        raise ConfigError(
            "--auth needs the admin password in MLFLOW_AUTH_ADMIN_PASSWORD "
            "(and the user name in MLFLOW_AUTH_ADMIN_USERNAME, default admin)"
        )
    if password == KNOWN_DEFAULT_ADMIN_PASSWORD and not settings.allow_default_admin_password:
        raise ConfigError(
            "refusing MLflow's well-known default admin password: set another "
            "MLFLOW_AUTH_ADMIN_PASSWORD (or --allow-default-admin-password for a throwaway server)"
        )
    if not environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY"):
        raise ConfigError(
            "--auth needs MLFLOW_FLASK_SERVER_SECRET_KEY (the UI's CSRF key; the same value "
            "on every server replica)"
        )
    database = store_uri(settings.auth_database_uri or settings.backend_store_uri)
    username = environ.get("MLFLOW_AUTH_ADMIN_USERNAME") or "admin"
    permission = default_permission(environ)
    return (
        "[mlflow]\n"
        f"default_permission = {permission}\n"
        f"database_uri = {database}\n"
        f"admin_username = {username}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )


DEFAULT_PERMISSIONS = ("READ", "NO_PERMISSIONS")


def default_permission(environ: Mapping[str, str]) -> str:
    """What every user may do on a resource nobody granted them anything on:
    INNFLOW_AUTH_DEFAULT_PERMISSION, READ unless set.

    READ (MLflow's default): everyone reads every run and model, and so, since any user may
    create a registered model, can register anyone's run under a new model name of their
    own (never into a model they lack EDIT on). NO_PERMISSIONS: users see only what they
    created or were granted; a user granted READ on the registered model alone can then
    neither register nor promote (see the permission setup in the docs).
    """
    chosen = environ.get("INNFLOW_AUTH_DEFAULT_PERMISSION", "READ").strip().upper() or "READ"
    if chosen not in DEFAULT_PERMISSIONS:
        allowed = ", ".join(DEFAULT_PERMISSIONS)
        raise ConfigError(f"INNFLOW_AUTH_DEFAULT_PERMISSION={chosen!r}: use one of {allowed}")
    return chosen


def environment(settings: ServerSettings, config_dir: Path) -> dict[str, str]:
    """The server's environment: ours, the backend store URI (MLflow's CLI reads
    MLFLOW_BACKEND_STORE_URI), and the auth config file (0600: it holds the auth database
    URI) when auth is on.
    """
    env = dict(os.environ)
    env["MLFLOW_BACKEND_STORE_URI"] = store_uri(settings.backend_store_uri)
    # MLflow's job runner (seven huey consumers, ~250 MB each) serves GenAI features innflow
    # does not use; a team that wants them sets the variable to true.
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    if settings.auth:
        config_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = config_dir / "basic_auth.ini"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(auth_config(settings, env))
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(path)
        env.setdefault("MLFLOW_AUTH_ADMIN_USERNAME", "admin")
    return env


def check_stores(settings: ServerSettings, environ: Mapping[str, str]) -> None:
    """Fail in one line before starting when the database or the bucket is not usable;
    `mlflow server` would otherwise die with a traceback, or start and fail every upload.
    """
    import sqlalchemy

    uri = store_uri(settings.backend_store_uri)
    if not uri.startswith("sqlite:"):
        try:
            engine = sqlalchemy.create_engine(uri, connect_args={"connect_timeout": 10})
            with engine.connect():
                pass
        except sqlalchemy.exc.SQLAlchemyError as e:
            reason = str(getattr(e, "orig", e)).strip().splitlines()[0]
            raise ConfigError(uri_credentials(f"backend store {uri} refused: {reason}")) from e
    if settings.artifacts_destination.startswith("s3://"):
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        bucket = settings.artifacts_destination.removeprefix("s3://").split("/", 1)[0]
        endpoint = environ.get("MLFLOW_S3_ENDPOINT_URL") or None
        where = uri_credentials(endpoint or "AWS")
        try:
            boto3.client("s3", endpoint_url=endpoint).head_bucket(Bucket=bucket)
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            what = "does not exist" if code in ("404", "NoSuchBucket") else f"refused ({code})"
            raise ConfigError(f"artifact bucket {bucket!r} {what} at {where}") from e
        except BotoCoreError as e:
            raise ConfigError(uri_credentials(f"artifact bucket {bucket!r}: {e}")) from e


FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def serve(settings: ServerSettings, config_dir: Path) -> int:
    """Check the stores, run `mlflow server` until it exits and return its exit code.

    SIGTERM, SIGINT and SIGHUP are passed on to it (MLflow passes them to its workers), and
    ``config_dir`` (the auth file) is removed however the server stops.
    """
    try:
        argv = command(settings)
        env = environment(settings, config_dir)
        check_stores(settings, env)
        process = subprocess.Popen(argv, env=env)

        def forward(signum: int, _frame: FrameType | None) -> None:
            if process.poll() is None:
                process.send_signal(signum)

        previous = {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
        try:
            return process.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    finally:
        shutil.rmtree(config_dir, ignore_errors=True)
