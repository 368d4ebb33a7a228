"""A notebook run records no URI password: not in the tag that notes a notebook's own
`mlflow.set_tracking_uri(...)` (kept in the notebook's run), nor in what the CLI prints.
"""

from __future__ import annotations

import json

REPOINTING = """# %%
import mlflow

# %% tags=["parameters"]
alpha = 1

# %%
mlflow.set_tracking_uri("http://bob:Sup3rSecret@elsewhere:5000")
mlflow.log_metric("alpha", alpha)
"""


def test_a_requested_tracking_uri_is_tagged_without_its_password(workdir, cli) -> None:
    notebook = workdir.path / "repointing.py"
    notebook.write_text(REPOINTING)
    result = cli("notebook", "run", str(notebook), "--json")
    assert result.code == 0, result.stderr
    assert "Sup3rSecret" not in result.stdout + result.stderr
    import mlflow

    run = mlflow.get_run(json.loads(result.stdout)["run_id"])
    tag = run.data.tags["innflow.notebook.requested_tracking_uri"]
    assert tag == "http://bob:***@elsewhere:5000"
    assert run.data.metrics == {"alpha": 1.0}
