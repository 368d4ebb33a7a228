"""What a result depends on besides the config: code, locked environment, machine.

Recorded as tags on every run and compared by `innflow reproduce`. Reads git and the
installed distributions; never writes anything.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from innflow import redaction

KEY_LIBRARIES = (
    "mlflow", "scikit-learn", "lightgbm", "xgboost-cpu", "numpy", "scipy", "pandas", "pyarrow",
    "skops",
)  # fmt: skip


def predictions_sha256(proba: np.ndarray) -> str:
    """sha256 of float64 little-endian probabilities: equal hashes mean bit-identical scores."""
    return hashlib.sha256(np.ascontiguousarray(proba, dtype="<f8").tobytes()).hexdigest()


def source_root() -> Path:
    """The checkout that holds the innflow package (where uv.lock and git live)."""
    return Path(__file__).resolve().parents[3]


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=source_root(), capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


@dataclass(frozen=True)
class CodeState:
    """The git commit of the innflow source and any uncommitted change to it."""

    commit: str
    dirty: bool
    diff: str
    redacted: tuple[str, ...] = ()

    @property
    def diff_sha256(self) -> str:
        """Fingerprint of the uncommitted change as logged ('' when clean). Of the redacted
        text: a hash of the original would let anyone who reads the run test guesses of a
        redacted secret against it.
        """
        return hashlib.sha256(self.diff.encode()).hexdigest() if self.diff else ""

    def tags(self) -> dict[str, str]:
        """The code state as run tags: what train records and reproduce/pipeline compare."""
        tags = {
            "innflow.git_commit": self.commit,
            "innflow.git_dirty": str(self.dirty).lower(),
            "innflow.git_diff_sha256": self.diff_sha256,
        }
        if self.redacted:
            tags[DIFF_REDACTED_TAG] = ",".join(self.redacted)
        return tags


DIFF_REDACTED_TAG = "innflow.diff_redacted"


def code_state() -> CodeState:
    """Commit and uncommitted diff (tracked files; untracked files listed by name), as it
    may be logged: credential files (`.env`, `*.pem`...) left out, and the changes of any
    file where detect-secrets finds a secret redacted.
    """
    commit = (_git("rev-parse", "HEAD") or "unknown").strip()
    status = _git("status", "--porcelain") or ""
    excluded = [f":(exclude,glob)**/{pattern}" for pattern in redaction.CREDENTIAL_FILES]
    diff, redacted = redaction.redact_diff(_git("diff", "HEAD", "--", ".", *excluded) or "")
    untracked = [line[3:] for line in status.splitlines() if line.startswith("??")]
    diff += "".join(
        f"# untracked: {name}\n" for name in untracked if not redaction.is_credential_file(name)
    )
    return CodeState(commit=commit, dirty=bool(status.strip()), diff=diff, redacted=redacted)


def lockfile_sha256() -> str:
    """sha256 of uv.lock next to the source, or 'missing'."""
    lock = source_root() / "uv.lock"
    return hashlib.sha256(lock.read_bytes()).hexdigest() if lock.exists() else "missing"


MODEL_PYPROJECT = """\
# The environment this model was trained in: innflow's uv.lock beside this file, restored by
# `uv sync --frozen --no-dev` (what `mlflow models serve --env-manager uv` runs). A virtual
# project: the innflow package itself is not installed, its code rides in the model (code/).
[project]
name = "{name}"
version = "{version}"
requires-python = "{python}"
dependencies = []

[tool.uv]
package = false
"""


def model_environment() -> dict[str, str]:
    """``uv.lock`` and a ``pyproject.toml`` to put in a logged model, so MLflow rebuilds the
    locked environment from the model alone; empty without a lock (an installed innflow)
    or with MLflow's ``MLFLOW_LOG_UV_FILES=false``.

    `uv sync --frozen` builds a lock's root package when its source is editable, and a model
    holds no source to build (its code rides in code/): the copy marks the root virtual.
    Every other line is innflow's lock.
    """
    import os
    import tomllib

    lock, project = source_root() / "uv.lock", source_root() / "pyproject.toml"
    if os.environ.get("MLFLOW_LOG_UV_FILES", "true").lower() in ("false", "0") or not (
        lock.is_file() and project.is_file()
    ):
        return {}
    meta = tomllib.loads(project.read_text())["project"]
    text = lock.read_text()
    root = (
        f'name = "{meta["name"]}"\nversion = "{meta["version"]}"\nsource = {{ editable = "." }}\n'
    )
    if text.count(root) != 1:
        return {}  # not the lock this code expects: MLflow falls back to requirements.txt
    text = text.replace(root, root.replace('editable = "."', 'virtual = "."'))
    pyproject = MODEL_PYPROJECT.format(
        name=meta["name"], version=meta["version"], python=meta["requires-python"]
    )
    return {"uv.lock": text, "pyproject.toml": pyproject}


def installed_distributions() -> str:
    """`name==version` of every installed distribution, sorted: the environment as run."""
    names = {f"{(d.metadata['Name'] or '').lower()}=={d.version}" for d in metadata.distributions()}
    return "\n".join(sorted(n for n in names if not n.startswith("=="))) + "\n"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def blas_kernel() -> str:
    """BLAS implementation, version and CPU kernel in use (decides logreg's last bits)."""
    from threadpoolctl import threadpool_info

    found = [
        f"{i.get('internal_api')} {i.get('version')} {i.get('architecture', '')}".strip()
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]
    return "; ".join(sorted(set(found))) or "none loaded"


def environment_tags() -> dict[str, str]:
    """Interpreter, platform, CPU, BLAS kernel and key library versions."""
    tags = {
        "innflow.python": platform.python_version(),
        "innflow.platform": platform.platform(),
        "innflow.machine": platform.machine(),
        "innflow.cpu": _cpu_model(),
        "innflow.blas": blas_kernel(),
        "innflow.uv_lock_sha256": lockfile_sha256(),
        "innflow.env_sha256": hashlib.sha256(installed_distributions().encode()).hexdigest(),
    }
    tags.update({f"innflow.lib.{name}": _version(name) for name in KEY_LIBRARIES})
    return tags


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def output_sha256(output: object) -> str:
    """sha256 of any model output, deterministic: numbers as float64 little-endian bytes
    with their shape (and a frame's column names), anything else as its text.
    """
    import pandas as pd

    digest = hashlib.sha256()
    if isinstance(output, pd.DataFrame):
        digest.update(repr(list(output.columns)).encode())
    array = np.asarray(output)
    digest.update(repr(array.shape).encode())
    if array.dtype.kind in "biuf":
        digest.update(np.ascontiguousarray(array, dtype="<f8").tobytes())
    else:
        digest.update(repr(array.tolist()).encode())
    return digest.hexdigest()
