"""What innflow never writes down: passwords in URIs, and secrets in the uncommitted diff.

`uri_credentials` is the one rule for every URI innflow prints, logs, tags or serves
(tracking, backend store, S3 endpoints). `redact_diff` runs detect-secrets over a git diff
and replaces the changes of every file with a finding by a line naming the detectors.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path, PurePosixPath

# scheme://user:password@host -> scheme://user:***@host. The user info runs to the last "@"
# before the path, so a password holding an unescaped "@" is masked whole.
_USERINFO = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^\s/?#@:\"'<>\\]*):"
    r"(?P<password>[^\s/?#\"'<>\\]*)@"
)
MASK = "***"

# Files that hold credentials by convention: never in a run's diff, and in .gitignore.
CREDENTIAL_FILES = (
    ".env", ".env.*", "*.pem", "*.key", "*.p12", "*.pfx", "id_rsa*", "id_ed25519*",
    "credentials", ".netrc", ".pgpass", ".htpasswd", "basic_auth.ini",
)  # fmt: skip


def uri_credentials(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` in it masked."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)


def is_credential_file(path: str) -> bool:
    """Whether ``path`` (relative, with "/") names a file that holds credentials."""
    name = PurePosixPath(path).name
    return any(PurePosixPath(name).match(pattern) for pattern in CREDENTIAL_FILES)


def file_sections(diff: str) -> list[tuple[str, str]]:
    """A ``git diff`` cut into (path, text) per file, in order (path '' for a preamble)."""
    sections: list[tuple[str, list[str]]] = []
    for line in diff.splitlines(keepends=True):
        if line.startswith("diff --git ") or not sections:
            sections.append((_path_of(line), []))
        sections[-1][1].append(line)
    return [(path, "".join(lines)) for path, lines in sections]


def _path_of(header: str) -> str:
    if not header.startswith("diff --git "):
        return ""
    target = header.rstrip("\n").rsplit(" b/", 1)
    return target[1] if len(target) == 2 else header.removeprefix("diff --git ").strip()


def redact_diff(diff: str) -> tuple[str, tuple[str, ...]]:
    """``diff`` with the changes of each file where detect-secrets finds a secret replaced
    by one line naming the detectors; returns it and the paths redacted.

    Every line of a file's changes is scanned (added, removed and context lines all reach
    the artifact store), with detect-secrets' default plugins and filters, offline.
    """
    sections = file_sections(diff)
    findings = _scan({path: _content(text) for path, text in sections if path})
    if not findings:
        return diff, ()
    out = []
    for path, text in sections:
        if path in findings:
            header = text.splitlines(keepends=True)[0]
            detectors = ", ".join(findings[path])
            out.append(f"{header}# innflow redacted this file's changes: {detectors}\n")
        else:
            out.append(text)
    return "".join(out), tuple(p for p, _ in sections if p in findings)


def _content(section: str) -> str:
    """The text lines of a file's hunks, without their +/-/space marks (headers dropped)."""
    lines, in_hunk = [], False
    for line in section.splitlines():
        if line.startswith("@@"):
            in_hunk = True
        elif in_hunk and line[:1] in ("+", "-", " "):
            lines.append(line[1:])
    return "\n".join(lines) + "\n"


def _scan(contents: dict[str, str]) -> dict[str, list[str]]:
    """Detector names per path with a finding. Each file's changed lines go to
    detect-secrets' diff scan as added lines: its line plugins and filters, none of the
    config-file parsers its file scan tries (they skip lines of partial files). Its filters
    drop files that do not exist, so each path stands as an empty file in a temp dir.
    """
    from detect_secrets.core.scan import scan_diff
    from detect_secrets.settings import default_settings

    found: dict[str, set[str]] = {}
    with tempfile.TemporaryDirectory(prefix="innflow-diff-") as tmp, default_settings():
        stand_ins: dict[str, str] = {}
        patch = []
        for index, (path, text) in enumerate(contents.items()):
            lines = text.splitlines()
            if not lines:
                continue
            stand_in = Path(tmp) / str(index) / _scanned_as(PurePosixPath(path).name)
            stand_in.parent.mkdir()
            stand_in.touch()
            stand_ins[str(stand_in)] = path
            patch.append(f"--- a/{stand_in}\n+++ b/{stand_in}\n@@ -0,0 +1,{len(lines)} @@\n")
            patch.extend(f"+{line}\n" for line in lines)
        for secret in scan_diff("".join(patch)) if patch else ():
            found.setdefault(stand_ins[secret.filename], set()).add(secret.type)
    return {path: sorted(types) for path, types in found.items()}


def _scanned_as(name: str) -> str:
    """The name detect-secrets sees. Its keyword rule for files of no known type (shell
    scripts, Dockerfiles, Makefiles, .txt) wants quoted values and so misses
    `export AWS_SECRET_ACCESS_KEY=...`; such files are scanned as config files, where
    `key=value` and `key: value` count. Code keeps its own language's rules.
    """
    from detect_secrets.util.filetype import FileType, determine_file_type

    return f"{name}.cnf" if determine_file_type(name) is FileType.OTHER else name
