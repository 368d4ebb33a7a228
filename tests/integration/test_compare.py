from __future__ import annotations

import json

from innflow import config
from innflow.reproducibility import comparison
from innflow.workflows.train import train


def test_compare_reports_exactly_the_differing_params(workdir, cli) -> None:
    a = train(config.load(None, workdir.overrides("lightgbm", "model.params.num_leaves=8")), 1)
    b = train(
        config.load(None, workdir.overrides("lightgbm", "model.params.num_leaves=16", "seed=7")), 1
    )
    result = cli("compare", a.run_id, b.run_id, "--json", "--html", str(workdir.path / "c.html"))
    assert result.code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["runs"] == [a.run_id, b.run_id]
    assert set(payload["params_differ"]) == {"model.params.num_leaves", "seed"}
    assert payload["params_differ"]["model.params.num_leaves"] == {a.run_id: "8", b.run_id: "16"}
    assert {"innflow.config_sha256", "innflow.predictions_sha256"} <= set(
        payload["fingerprints_differ"]
    )
    assert "innflow.data_sha256" not in payload["fingerprints_differ"]
    assert payload["metrics"]["test_roc_auc"][a.run_id] == a.metrics["test_roc_auc"]
    page = (workdir.path / "c.html").read_text()
    assert "Params that differ" in page and page.count("data:image/png;base64") == 8


def test_top_runs_by_metric(workdir, cli) -> None:
    runs = [
        train(config.load(None, workdir.overrides("lightgbm", f"model.params.num_leaves={n}")), 1)
        for n in (4, 8, 31)
    ]
    result = cli(
        "compare",
        "--experiment",
        "hotel-cancellation",
        "--top",
        "2",
        "--metric",
        "test_log_loss",
        "--ascending",
        "--json",
    )
    assert result.code == 0, result.stderr
    chosen = json.loads(result.stdout)["runs"]
    best_two = sorted(runs, key=lambda r: r.metrics["test_log_loss"])[:2]
    assert chosen == [r.run_id for r in best_two]


def test_compare_errors_exit_2(workdir, cli) -> None:
    train(config.load(None, workdir.overrides()), 1)
    missing_metric = cli("compare", "--experiment", "hotel-cancellation", "--metric", "nope")
    assert missing_metric.code == 2 and "metric 'nope'" in missing_metric.stderr
    unknown = cli("compare", "0123456789abcdef0123456789abcdef")
    assert unknown.code == 2 and "no run with id" in unknown.stderr
    no_experiment = cli("compare", "--experiment", "nowhere")
    assert no_experiment.code == 2 and "no experiment named 'nowhere'" in no_experiment.stderr


def test_identical_runs_differ_in_nothing_but_names() -> None:
    run = comparison.RunSummary(
        "a", "x", {"p": "1"}, {"test_roc_auc": 0.8}, {"innflow.data_sha256": "d"}
    )
    twin = comparison.RunSummary(
        "b", "y", {"p": "1"}, {"test_roc_auc": 0.8}, {"innflow.data_sha256": "d"}
    )
    result = comparison.compare([run, twin])
    assert result.params == {} and result.fingerprints == {}
    assert result.metrics == {"test_roc_auc": {"a": 0.8, "b": 0.8}}
