"""Which files a notebook's kernel read: the audit-hook watch and the fingerprints."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from innflow.reproducibility import lineage

WATCHED = """
import os, pickle, sys
from pathlib import Path
from innflow.reproducibility.lineage import watch_reads
watch_reads(Path(sys.argv[1]), skipped=("store",))
open("store/model.pkl", "rb").read()                   # the artifact store: not data
Path("bookings.csv").read_text()                      # data: read
open("bookings.csv").read()                           # twice: recorded once
pickle.dump([1], open("model.pkl", "wb"))              # written by the notebook itself...
pickle.load(open("model.pkl", "rb"))                   # ...so not data when read back
os.makedirs(".git", exist_ok=True); open(".git/HEAD", "w").write("x"); open(".git/HEAD").read()
Path("helper.py").write_text("X = 1"); open("helper.py").read()
open(sys.executable, "rb").close()                     # the interpreter: outside the project
import json, email.mime.text                           # imports read .py/.pyc files
"""


def test_the_kernel_watch_keeps_data_files_read_but_not_written(tmp_path: Path) -> None:
    (tmp_path / "bookings.csv").write_text("lead_time\n3\n")
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "model.pkl").write_bytes(b"model")
    log = tmp_path / "reads.tsv"
    done = subprocess.run(
        [sys.executable, "-c", WATCHED, str(log)], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert lineage.files_read(log) == [(tmp_path / "bookings.csv").resolve()]
    assert log.read_text().count("bookings.csv") == 1


def test_parameters_that_name_files_and_the_fingerprints(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes(b"a")
    (tmp_path / "sub").mkdir()
    named = lineage.files_named(["a.csv", "sub", "absent.csv", "", "not\na path", "3"], tmp_path)
    assert named == [tmp_path / "a.csv"]
    outside = tmp_path / "sub" / "b.csv"
    outside.write_bytes(b"bb")
    files = lineage.fingerprint([tmp_path / "a.csv", outside, tmp_path / "a.csv"], tmp_path)
    assert [(f.path, f.size) for f in files] == [("a.csv", 1), ("sub/b.csv", 2)]
    assert files[0].sha256 == hashlib.sha256(b"a").hexdigest()
    assert lineage.combined_sha256(files[:1]) == files[0].sha256  # as a training run records
    assert lineage.combined_sha256(files) == lineage.combined_sha256(files[::-1])
    assert lineage.from_json(lineage.to_json(files)) == files


def test_candidates_are_project_files_that_are_not_code_or_stores(tmp_path: Path) -> None:
    project, roots = str(tmp_path), lineage._skipped_roots()
    assert lineage.is_candidate(str(tmp_path / "data" / "x.parquet"), project, roots)
    for skipped in ("mlruns/1/a/artifacts/model.pkl", ".git/HEAD", "src/x.py", "mlflow.db",
                    ".venv/lib/x.txt"):  # fmt: skip
        assert not lineage.is_candidate(str(tmp_path / skipped), project, roots), skipped
    assert not lineage.is_candidate("/etc/hosts", project, roots)
