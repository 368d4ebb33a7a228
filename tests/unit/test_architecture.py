"""The layering in STYLE.md, enforced: the pure core imports no MLflow, Typer or FastAPI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "innflow"
CORE = [
    "config", "data", "features", "models", "evaluation", "plots", "provenance", "errors",
    "business", "audit", "explain", "assessment", "tuning", "comparison", "report",
]  # fmt: skip
FORBIDDEN_IN_CORE = {
    "mlflow",
    "typer",
    "fastapi",
    "rich",
    "innflow.tracking",
    "innflow.workflows",
    "innflow.cli",
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", CORE)
def test_core_module_stays_pure(module: str) -> None:
    imported = _imports(SRC / f"{module}.py")
    bad = {
        name
        for name in imported
        if name.split(".")[0] in FORBIDDEN_IN_CORE or name in FORBIDDEN_IN_CORE
    }
    assert not bad, f"{module}.py imports {bad}"


@pytest.mark.parametrize("path", sorted((SRC / "monitoring").glob("*.py")), ids=lambda p: p.name)
def test_monitoring_package_stays_pure(path: Path) -> None:
    imported = _imports(path)
    assert not {
        n
        for n in imported
        if n.split(".")[0] in FORBIDDEN_IN_CORE
        or n in FORBIDDEN_IN_CORE
        or n.startswith(("innflow.tracking", "innflow.workflows", "innflow.cli"))
    }


def test_only_tracking_imports_mlflow() -> None:
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path.parent.name != "tracking"
        and any(n.split(".")[0] == "mlflow" for n in _imports(path))
    ]
    assert offenders == []


def test_cli_help_does_not_import_mlflow_or_sklearn() -> None:
    code = (
        "import sys, innflow.cli; "
        "print(sorted(m for m in ('mlflow', 'sklearn', 'pandas') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_cli_and_serving_do_not_import_each_other() -> None:
    for path in (SRC / "cli").glob("*.py"):
        assert not [n for n in _imports(path) if n.startswith("innflow.serving")], path.name
    for path in (SRC / "serving").glob("*.py"):
        assert not [n for n in _imports(path) if n.startswith("innflow.cli")], path.name
