"""Every command against every way the tracking store fails: down when the command starts,
wrong credentials (401), a user without the permission (403). Each is one line on stderr
and exit 2 (never 1, which CI and schedulers read as "the reproduction differs"), nothing
is half-written, and a READ user's training is refused before any fitting.

Against an authenticated server the approver of an alias move is the authenticated user;
under the documented permission setup (INNFLOW_AUTH_DEFAULT_PERMISSION=NO_PERMISSIONS,
READ on the registered model) a READ user can neither register nor promote.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from mlflow.tracking import MlflowClient

from tests.conftest import SAMPLE
from tests.e2e.conftest import FAST, S3, Postgres, TrackingServer, free_port

pytestmark = pytest.mark.slow

MODEL = "e2e-store-failures"
EXPERIMENT = "e2e-store-failures"
GATE = [
    "registry.gate.min_roc_auc=0.6", "registry.gate.slice_floor_roc_auc=0.4",
    "registry.gate.max_ece=0.5", "registry.gate.margin=1.0",
]  # fmt: skip
NAMES = [f"registry.model_name={MODEL}", f"tracking.experiment={EXPERIMENT}"]
NO_RUN = "0" * 32
# A client has the server's URL only, never the artifact store's endpoint or keys.
CLIENT_SECRETS = ("MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def _set(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def _commands(data: Path, run_id: str) -> dict[str, list[str]]:
    """The CLI commands under test, each with arguments that would otherwise work."""
    train = _set([f"data.path={data}", "model.kind=logreg", *FAST["logreg"], *GATE, *NAMES])
    names = _set(NAMES)
    return {
        "train": ["train", *train],
        "tune": ["tune", "--trials", "1", *train],
        "pipeline": ["pipeline", *train],
        "register": ["register", run_id, *names],
        "register --name": ["register", run_id, "--name", f"{MODEL}-own", *names],
        "gate": ["gate", "1", *train],
        "promote": ["promote", "1", "--to", "production", "--force", *names],
        "rollback": ["rollback", *names],
        "models": ["models", *names],
        "history": ["history", *names],
        "compare": ["compare", run_id],
        "compare --experiment": ["compare", "--experiment", EXPERIMENT],
        "monitor": ["monitor", "--batch", str(data), "--model-uri", f"models:/{MODEL}@production"],
        "reproduce": ["reproduce", run_id],
        "runs cleanup": ["runs", "cleanup"],
    }


def _one_line_exit_2(name: str, result, *needles: str) -> str:
    """Exit 2, no traceback, exactly one `error:` line and it is the last line."""
    assert result.code == 2, f"{name}: exit {result.code}\n{result.stderr[-2000:]}"
    assert "Traceback" not in result.stderr, f"{name}:\n{result.stderr[-3000:]}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], f"{name}:\n{result.stderr[-2000:]}"
    for needle in needles:
        assert needle in errors[0].lower(), f"{name}: {errors[0]}"
    if name in ("train", "tune", "pipeline"):
        assert "fitting" not in result.stderr, f"{name} fitted before the store refused it"
    return errors[0]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "bookings.parquet"
    shutil.copy(SAMPLE, data)
    monkeypatch.chdir(tmp_path)
    for name in (*CLIENT_SECRETS, "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    # Fail fast: the point is the message and the exit code, not MLflow's retry schedule.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    return data


def test_server_down_when_the_command_starts(data_dir: Path, monkeypatch, cli) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    for name, argv in _commands(data_dir, NO_RUN).items():
        _one_line_exit_2(name, cli(*argv), "cannot be reached")


# --- an authenticated server under the documented permission setup --------------------


class Team:
    """The auth server, its users' passwords, and what the admin made on it."""

    def __init__(self, server: TrackingServer, passwords: dict[str, str]) -> None:
        self.server, self.passwords = server, passwords
        self.admin_run = ""

    def login(self, monkeypatch: pytest.MonkeyPatch, user: str, password: str | None = None):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", self.server.url)
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password or self.passwords[user])

    def admin_client(self, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
        self.login(monkeypatch, "admin")
        return MlflowClient(self.server.url)


@pytest.fixture(scope="module")
def team(postgres: Postgres, s3: S3, tmp_path_factory) -> Iterator[Team]:
    """The server with users ``admin`` and ``reader`` (READ on the registered model only),
    INNFLOW_AUTH_DEFAULT_PERMISSION=NO_PERMISSIONS; the admin's pipeline put version 1 on
    staging and the admin promoted it to production.
    """
    from innflow import config
    from innflow.workflows.pipeline import pipeline
    from innflow.workflows.registry import move_alias

    root = tmp_path_factory.mktemp("store-failures")
    passwords = {name: secrets.token_urlsafe(16) for name in ("admin", "reader")}
    server = TrackingServer(
        postgres.create_database("mlflow_store_failures"), s3, root, "store-failures",
        auth=True,
        extra_env={"MLFLOW_AUTH_ADMIN_USERNAME": "admin",
                   "MLFLOW_AUTH_ADMIN_PASSWORD": passwords["admin"],
                   "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
                   "INNFLOW_AUTH_DEFAULT_PERMISSION": "NO_PERMISSIONS"},
    )  # fmt: skip
    server.start()
    team = Team(server, passwords)
    data = root / "bookings.parquet"
    shutil.copy(SAMPLE, data)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(root)
            for name in CLIENT_SECRETS:
                patch.delenv(name, raising=False)
            client = team.admin_client(patch)
            overrides = [f"data.path={data}", "model.kind=logreg", *GATE, *NAMES]
            resolved = config.load(None, overrides)
            staged = pipeline(resolved, 1)
            assert staged.staged and staged.version == "1"
            team.admin_run = staged.run_id
            move_alias(resolved, "1", "production", "", "first release")
            from innflow.tracking import MONITORING_EXPERIMENT

            client.create_experiment(MONITORING_EXPERIMENT)
            admin = ("admin", passwords["admin"])
            created = requests.post(
                f"{server.url}/api/2.0/mlflow/users/create", auth=admin, timeout=30,
                json={"username": "reader", "password": passwords["reader"]},
            )  # fmt: skip
            assert created.status_code == 200, created.text
            granted = requests.post(
                f"{server.url}/api/3.0/mlflow/users/permissions/grant", auth=admin, timeout=30,
                json={"username": "reader", "resource_type": "registered_model",
                      "resource_id": MODEL, "permission": "READ"},
            )  # fmt: skip
            assert granted.status_code == 200, granted.text
        yield team
    finally:
        server.stop()


def _registry_state(client: MlflowClient) -> tuple:
    """What a refused command must leave as it was: versions with their tags, aliases,
    registered models, every run's status.
    """
    versions = sorted(
        (v.version, tuple(sorted(v.tags.items())))
        for v in client.search_model_versions(f"name = '{MODEL}'")
    )
    models = sorted(m.name for m in client.search_registered_models())
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = sorted((r.info.run_id, r.info.status) for r in client.search_runs(experiments))
    return versions, dict(client.get_registered_model(MODEL).aliases), models, runs


def test_wrong_password_is_one_line_exit_2_for_every_command(
    team: Team, data_dir: Path, monkeypatch, cli
) -> None:
    before = _registry_state(team.admin_client(monkeypatch))
    team.login(monkeypatch, "reader", "not-the-password")
    for name, argv in _commands(data_dir, team.admin_run).items():
        _one_line_exit_2(name, cli(*argv), "refused the credentials of user 'reader'")
    assert _registry_state(team.admin_client(monkeypatch)) == before


def test_read_user_can_neither_register_nor_promote_nor_train(
    team: Team, data_dir: Path, monkeypatch, cli
) -> None:
    before = _registry_state(team.admin_client(monkeypatch))
    team.login(monkeypatch, "reader")
    commands = _commands(data_dir, team.admin_run)
    # READ on the model is what serving and `models` need: allowed.
    assert cli(*commands.pop("models")).code == 0
    # Finds nothing of its own to end; visible runs only.
    assert cli(*commands.pop("runs cleanup")).code == 0
    for name, argv in commands.items():
        _one_line_exit_2(name, cli(*argv), "permission denied for user 'reader'")
    assert _registry_state(team.admin_client(monkeypatch)) == before


def test_the_approver_is_the_authenticated_user(team: Team, data_dir: Path, monkeypatch, cli):
    client = team.admin_client(monkeypatch)
    other = cli("promote", "1", "--to", "staging", "--approved-by", "the-cto", *_set(NAMES))
    _one_line_exit_2("promote as someone else", other, "is not the authenticated user 'admin'")

    done = cli("promote", "1", "--to", "staging", "--reason", "re-stage", *_set(NAMES))
    assert done.code == 0, done.stderr
    assert "(by admin)" in done.stdout
    same = cli("promote", "1", "--to", "staging", "--approved-by", "admin", *_set(NAMES))
    assert same.code == 0, same.stderr

    from innflow.tracking import AUDIT_EXPERIMENT

    audit = client.get_experiment_by_name(AUDIT_EXPERIMENT).experiment_id
    records = client.search_runs([audit])
    assert len(records) == 4  # pipeline staging, production, and the two re-stagings
    for record in records:
        assert record.info.user_id == "admin"
        assert record.data.tags["mlflow.user"] == "admin"
        assert record.data.tags["innflow.move.who"] == "admin"
        assert record.data.tags["innflow.move.identity"] == "authenticated"
    tags = client.get_model_version(MODEL, "1").tags
    assert tags["innflow.approved_by"] == "admin"
    assert tags["innflow.approval_identity"] == "authenticated"
