"""The DVC version of a run's data, and the DVC stage and experiment it ran under.

Read from DVC's own files (a ``.dvc`` file beside the data or above it, or the ``dvc.lock``
of the stage that produced it) and from the variables DVC sets for a stage's command
(``DVC_ROOT``, ``DVC_STAGE``; ``DVC_EXP_NAME``, ``DVC_EXP_BASELINE_REV`` under `dvc exp run`).
Plain YAML reads: innflow does not need DVC installed to record or compare them.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from innflow.reproducibility.reproduction import Check

MD5_TAG = "innflow.dvc.data_md5"
SOURCE_TAG = "innflow.dvc.data_source"
# DVC's variable -> innflow's tag
ENVIRONMENT_TAGS = {
    "DVC_STAGE": "innflow.dvc.stage",
    "DVC_EXP_NAME": "innflow.dvc.experiment",
    "DVC_EXP_BASELINE_REV": "innflow.dvc.baseline_rev",
}


@dataclass(frozen=True)
class DataVersion:
    """What DVC recorded for a data file: its md5 (``...dir`` for a tracked folder) and
    where (``data/x.parquet.dvc``, or ``dvc.lock:stage``), relative to the DVC project.
    """

    md5: str
    source: str
    plain_file: Path | None  # the data file, when DVC hashes it as plain md5 of its bytes

    @cached_property
    def workspace_md5(self) -> str | None:
        """The file's md5 now (read on demand: a run's tags need only DVC's record)."""
        return None if self.plain_file is None else _file_md5(self.plain_file)


def project_root(start: Path) -> Path | None:
    """The DVC project holding ``start``: ``DVC_ROOT`` when DVC runs the command, else the
    nearest directory above with a ``.dvc`` folder.
    """
    if root := os.environ.get("DVC_ROOT"):
        return Path(root).resolve()
    for folder in (start, *start.parents):
        if (folder / ".dvc").is_dir():
            return folder
    return None


def _read(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _entry(outs: Any, base: Path, covered: list[Path]) -> tuple[dict, Path] | None:
    """The out in ``outs`` (paths relative to ``base``) that is the data file or a folder
    holding it.
    """
    for out in outs if isinstance(outs, list) else []:
        if isinstance(out, dict) and "path" in out and out.get("md5"):
            target = (base / str(out["path"])).resolve()
            if target in covered:
                return out, target
    return None


def data_version(path: str | Path) -> DataVersion | None:
    """DVC's version of ``path``, or None when no DVC file in its project tracks it."""
    data = Path(path).resolve()
    root = project_root(data.parent)
    if root is None:
        return None
    covered = [data, *(p for p in data.parents if root in p.parents)]  # inside the project
    found: tuple[dict, Path, str] | None = None
    for target in covered:  # the data file's own .dvc file first, then its folders'
        pointer = target.with_name(target.name + ".dvc")
        if pointer.is_file() and (
            hit := _entry(_read(pointer).get("outs"), pointer.parent, [target])
        ):
            found = (*hit, str(pointer.relative_to(root)))
            break
    if found is None:
        lock = root / "dvc.lock"
        for stage, body in (_read(lock).get("stages") or {}).items():
            if isinstance(body, dict) and (hit := _entry(body.get("outs"), root, covered)):
                found = (*hit, f"dvc.lock:{stage}")
                break
    if found is None:
        return None
    out, target, source = found
    plain = out.get("hash") == "md5" and target == data and data.is_file()
    return DataVersion(str(out["md5"]), source, data if plain else None)


def _file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tags(data_path: str | Path) -> dict[str, str]:
    """The run tags: the data's DVC version when DVC tracks it, and the stage and
    experiment when DVC runs the command. Empty outside DVC.
    """
    found: dict[str, str] = {
        tag: os.environ[name] for name, tag in ENVIRONMENT_TAGS.items() if os.environ.get(name)
    }
    if (version := data_version(data_path)) is not None:
        found[MD5_TAG] = version.md5
        found[SOURCE_TAG] = version.source
    return found


def version_check(recorded: dict[str, str], data_path: str | Path) -> Check | None:
    """For `reproduce`: the DVC data version the run recorded against what DVC's files say
    now (and, for a plainly hashed file, the file's own md5). Reported, never decisive: the
    data's sha256 is the decisive check. None for a run made outside DVC.
    """
    then = recorded.get(MD5_TAG)
    if not then:
        return None
    version = data_version(data_path)
    if version is None:
        now = "(not tracked by DVC now)"
    elif version.workspace_md5 not in (None, version.md5):
        now = f"{version.md5} ({version.source}; the file itself: {version.workspace_md5})"
    else:
        now = version.md5
    return Check(f"DVC data version ({data_path})", then, now, decisive=False, kind="dvc")
