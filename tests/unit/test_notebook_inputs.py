"""What `innflow notebook run` reads before any kernel or run exists: parameters, notebook
files, and how a failing cell is described."""

from __future__ import annotations

from pathlib import Path

import jupytext
import pytest
from papermill import PapermillExecutionError

from innflow.errors import ConfigError
from innflow.workflows.notebook import _describe, _param_text, parse_parameters, read_notebook

SOURCE = """# %% tags=["parameters"]
n = 1

# %%
print(n)
"""


def test_parameters_are_read_as_yaml_values() -> None:
    assert parse_parameters(["n=40", "rate=0.5", "path=data/x.parquet", "keys=[a, b]", "z="]) == {
        "n": 40, "rate": 0.5, "path": "data/x.parquet", "keys": ["a", "b"], "z": None,
    }  # fmt: skip
    for bad in ("n", "=3", "two words=1", "n=[unclosed"):
        with pytest.raises(ConfigError):
            parse_parameters([bad])


def test_params_show_strings_bare_and_the_rest_as_json() -> None:
    assert [_param_text("'lightgbm'", literal=True), _param_text("None", literal=True)] == [
        "lightgbm",
        "null",
    ]
    assert _param_text('Path("a") / "b"', literal=True) == 'Path("a") / "b"'
    assert [_param_text("x"), _param_text(40), _param_text([1, 2])] == ["x", "40", "[1, 2]"]


def test_percent_py_and_ipynb_read_as_the_same_notebook(tmp_path: Path) -> None:
    script = tmp_path / "n.py"
    script.write_text(SOURCE)
    jupytext.write(jupytext.read(script), tmp_path / "n.ipynb")
    cells = [[(c.cell_type, c.source, c.metadata.get("tags")) for c in read_notebook(p).cells]
             for p in (script, tmp_path / "n.ipynb")]  # fmt: skip
    assert cells[0] == cells[1]
    assert cells[0][0] == ("code", "n = 1", ["parameters"])


def test_failing_cell_is_param_text_around_the_line_that_raised() -> None:
    source = "\n".join(f"line_{i} = {i}" for i in range(1, 9)) + "\nboom()\nafter = 1"
    traceback = [
        "\x1b[0;31mNameError\x1b[0m  Traceback (most recent call last)",
        "Cell \x1b[0;32mIn[7], line 9\x1b[0m\n----> 9 boom()",
        "\x1b[0;31mNameError\x1b[0m: name 'boom' is not defined",
    ]
    error = PapermillExecutionError(3, 7, source, "NameError", "name 'boom' is not defined",
                                    traceback)  # fmt: skip
    text = _describe(Path("nb.py"), error)
    lines = text.splitlines()
    assert lines[0] == "notebook nb.py failed in cell In [7]:"
    assert lines[-2].strip().startswith(">") and "boom()" in lines[-2]
    assert lines[-1] == "NameError: name 'boom' is not defined"
    assert len(lines) == 6 and "after" not in text and "line_1 " not in text
