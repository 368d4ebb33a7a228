from __future__ import annotations

import json
from datetime import date

import pytest
from mlflow.tracking import MlflowClient

from innflow.errors import ConfigError
from innflow.steps.backtesting import months


def test_months_are_inclusive_and_validated() -> None:
    assert months("2016-11", "2017-02") == [
        date(2016, 11, 1),
        date(2016, 12, 1),
        date(2017, 1, 1),
        date(2017, 2, 1),
    ]
    with pytest.raises(ConfigError, match="before --start"):
        months("2017-02", "2016-11")
    with pytest.raises(ConfigError, match="2016-07"):
        months("July", "2017-01")


def test_backtest_trains_on_the_past_and_tests_each_month(workdir, cli) -> None:
    sets = [a for o in workdir.overrides() for a in ("--set", o)]
    result = cli("backtest", "--start", "2017-01", "--end", "2017-03", "--json", *sets)
    assert result.code == 0, result.stderr
    payload = json.loads(result.stdout)
    table = payload["months"]
    assert [r["month"] for r in table] == ["2017-01", "2017-02", "2017-03"]
    assert all(0.5 < r["roc_auc"] <= 1 for r in table)
    train_sizes = [r["rows_train"] for r in table]
    assert train_sizes == sorted(train_sizes) and len(set(train_sizes)) == 3
    assert all(r["cost"] <= r["cost_baseline"] for r in table)
    client = MlflowClient(workdir.store)
    parent = client.get_run(payload["parent_run_id"])
    assert parent.info.status == "FINISHED" and parent.data.tags["innflow.kind"] == "backtest"
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{payload['parent_run_id']}'"
    )
    assert sorted(r.data.params["month"] for r in children) == ["2017-01", "2017-02", "2017-03"]
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "plots")} == {
        "plots/backtest.png"
    }


def test_backtest_bad_month_exits_2(workdir, cli) -> None:
    result = cli("backtest", "--start", "2017-13")
    assert result.code == 2 and "2016-07" in result.stderr
