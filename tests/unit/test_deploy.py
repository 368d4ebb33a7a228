"""deploy/: the compose stack, its secrets, Prometheus and Grafana wiring, the Dockerfile.

No Docker engine runs here: the files are checked for structure, and `docker compose
config` runs only where the compose plugin exists.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from innflow.serving.metrics import ServiceMetrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SECRETS = {
    "POSTGRES_PASSWORD": "pg-secret", "MINIO_ROOT_USER": "minio-user",
    "MINIO_ROOT_PASSWORD": "minio-secret", "MLFLOW_ADMIN_PASSWORD": "admin-secret",
    "MLFLOW_FLASK_SERVER_SECRET_KEY": "csrf-secret", "INNFLOW_SERVE_USER": "serving",
    "INNFLOW_SERVE_PASSWORD": "serve-secret", "INNFLOW_ADMIN_TOKEN": "reload-token",
    "GRAFANA_ADMIN_PASSWORD": "grafana-secret",
}  # fmt: skip


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_has_the_team_stack(compose: dict) -> None:
    services = compose["services"]
    assert set(services) >= {
        "postgres", "minio", "minio-init", "mlflow", "serve", "dashboard", "prometheus", "grafana"
    }  # fmt: skip
    assert (
        services["mlflow"]["command"][0] == "server" and "--auth" in services["mlflow"]["command"]
    )
    env = services["mlflow"]["environment"]
    assert env["INNFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg2://")
    assert env["INNFLOW_ARTIFACTS_DESTINATION"].startswith("s3://")
    assert services["serve"]["command"][:3] == [
        "serve", "--model-uri", "models:/hotel-booking-cancellation@production"
    ]  # fmt: skip
    assert services["serve"]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    # the second model (configs/adr.yaml) as its own service, scraped beside the first
    adr = services["serve-adr"]
    assert adr["command"][:3] == ["serve", "--model-uri", "models:/hotel-booking-adr@production"]
    assert adr["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert {p.split(":")[1] for p in (services["serve"]["ports"] + adr["ports"])} == {
        "8080", "8081"
    }  # fmt: skip
    scraped = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = next(j for j in scraped["scrape_configs"] if j["job_name"] == "innflow-serve")
    assert set(targets["static_configs"][0]["targets"]) == {"serve:8080", "serve-adr:8080"}
    assert services["dashboard"]["command"][0] == "dashboard"
    assert services["dashboard"]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


def test_every_secret_is_required_from_the_environment(compose: dict) -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    assert "password1234" not in text.replace("(not password1234)", "")
    for name in SECRETS:
        assert re.search(r"\$\{" + name + r":\?[^}]+\}", text), f"{name} is not required"
    for service in compose["services"].values():
        for key, value in (service.get("environment") or {}).items():
            if re.search("PASSWORD|SECRET|TOKEN", key):
                assert ":?" in str(value), f"{key} has a default or a literal value"


def test_every_published_port_is_bound_to_loopback(compose: dict) -> None:
    """No TLS in the stack and /admin/reload on the scoring port: other machines come in
    through a TLS proxy on the host, never straight to a container port.
    """
    published = {name: service.get("ports", []) for name, service in compose["services"].items()}
    assert published["dashboard"] and published["serve"]
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} to the network"


def test_the_dashboard_signs_in_with_the_mlflow_servers_users(compose: dict) -> None:
    dashboard = compose["services"]["dashboard"]
    assert dashboard["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert "INNFLOW_DASHBOARD_TOKEN" not in dashboard["environment"]
    assert dashboard["depends_on"]["mlflow"]["condition"] == "service_healthy"


def _monitor_metrics() -> set[str]:
    """The series `innflow monitor --prom` writes (its gauges, as declared)."""
    source = (ROOT / "src" / "innflow" / "monitoring" / "exposition.py").read_text()
    return set(re.findall(r'"(innflow_[a-z_]+)"', source))


def test_prometheus_scrapes_the_service_and_grafana_is_provisioned(compose: dict) -> None:
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = [t for job in prometheus["scrape_configs"] for c in job["static_configs"]
               for t in c["targets"]]  # fmt: skip
    assert targets == ["serve:8080", "serve-adr:8080", "node-exporter:9100"]
    assert prometheus["rule_files"] == ["/etc/prometheus/alerts.yml"]
    mounts = compose["services"]["prometheus"]["volumes"]
    assert "./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts
    assert "--collector.textfile" in compose["services"]["node-exporter"]["command"]
    datasource = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    dashboard = json.loads((DEPLOY / "grafana/dashboards/innflow-serving.json").read_text())
    # Every series the dashboard queries is one the service exports.
    exported = {m.name for m in ServiceMetrics().registry.collect()} | _monitor_metrics()
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"innflow_[a-z_]+", target["expr"])
    }
    assert queried
    for name in queried:
        base = re.sub(r"_(total|bucket|count|sum)$", "", name)
        assert base in exported, name
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    assert all(word in titles for word in ("traffic", "latency", "decisions", "errors", "drift"))


def test_dockerfile_is_locked_and_not_root() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^USER innflow$", text, re.M)
    syncs = re.findall(r"uv sync[^\n&]*", text)
    assert syncs and all("--frozen" in s for s in syncs)
    assert "COPY pyproject.toml uv.lock" in text
    # gcc only in the `compiler` stage (innflow compile); the default image is the runtime
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    compiler = [s for s in stages if s.startswith("runtime AS compiler")]
    assert compiler and re.search(r"apt-get install[^\n]*\bgcc\b", compiler[0])
    assert not [s for s in stages if "gcc" in s and s not in compiler]
    assert stages[-1].split()[0] == "runtime"  # the last stage, built by default


def test_services_load_compiled_code_only_from_a_read_only_cache(compose: dict) -> None:
    services = compose["services"]
    assert services["compile"]["build"]["target"] == "compiler"
    assert services["compile"]["command"][0] == "compile"
    assert "serve-cache:/cache" in services["compile"]["volumes"]
    assert services["serve"]["volumes"] == ["serve-cache:/cache:ro"]
    assert "build" not in services["serve"] or "target" not in services["serve"]["build"]


def _compose_plugin() -> str | None:
    if shutil.which("docker") is None:
        return "no docker client"
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    return None if probe.returncode == 0 else "the docker client has no compose plugin"


def test_docker_compose_config_accepts_the_file_and_requires_the_secrets() -> None:
    missing = _compose_plugin()
    if missing:
        pytest.skip(f"docker compose config not run: {missing}")
    argv = ["docker", "compose", "-f", str(DEPLOY / "compose.yaml"), "config", "--quiet"]
    ok = subprocess.run(argv, env={"PATH": "/usr/bin:/bin:/usr/local/bin", **SECRETS},
                        capture_output=True, text=True)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    without = {k: v for k, v in SECRETS.items() if k != "MLFLOW_ADMIN_PASSWORD"}
    refused = subprocess.run(argv, env={"PATH": "/usr/bin:/bin:/usr/local/bin", **without},
                             capture_output=True, text=True)  # fmt: skip
    assert refused.returncode != 0 and "MLFLOW_ADMIN_PASSWORD" in refused.stderr


KSERVE_SCHEMA = ROOT / "tests" / "data" / "kserve" / "inferenceservice-v1beta1.schema.json.gz"


def _kserve_problems(manifest: dict) -> list[str]:
    """What the Kubernetes API server would refuse or prune in an InferenceService: schema
    errors (KServe's CRD, v1beta1's openAPIV3Schema, kserve/kserve@aaac4e29
    config/crd/full/serving.kserve.io_inferenceservices.yaml) and fields the schema does
    not know, which the API server would silently drop (kubectl --validate=strict).
    """
    import gzip

    import jsonschema

    schema = json.loads(gzip.decompress(KSERVE_SCHEMA.read_bytes()))
    problems = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(manifest)
    ]

    def unknown(value: object, rule: dict, where: str) -> None:
        if rule.get("x-kubernetes-preserve-unknown-fields"):
            return
        if isinstance(value, dict) and "properties" in rule:
            for key, item in value.items():
                if key not in rule["properties"]:
                    problems.append(f"{where}/{key}: unknown field")
                else:
                    unknown(item, rule["properties"][key], f"{where}/{key}")
        elif isinstance(value, list) and "items" in rule:
            for i, item in enumerate(value):
                unknown(item, rule["items"], f"{where}/{i}")

    unknown(manifest, schema, "")
    return problems


def test_the_kserve_manifest_is_an_inference_service_kserve_accepts() -> None:
    from typer.main import get_command

    from innflow.cli import app

    manifest = yaml.safe_load((DEPLOY / "kserve" / "inference-service.yaml").read_text())
    assert _kserve_problems(manifest) == []
    assert manifest["apiVersion"] == "serving.kserve.io/v1beta1"
    (container,) = manifest["spec"]["predictor"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PROTOCOL"] == "v2"
    args = container["args"]
    serve = get_command(app).commands["serve"]  # type: ignore[attr-defined]
    options = {o for p in serve.params for o in p.opts}
    assert args[0] == "serve" and all(a in options for a in args[1:] if a.startswith("--"))
    port = int(args[args.index("--port") + 1])
    assert container["ports"][0]["containerPort"] == port
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == port
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"


def test_the_kserve_check_refuses_what_the_api_server_would() -> None:
    manifest = yaml.safe_load((DEPLOY / "kserve" / "inference-service.yaml").read_text())
    predictor = manifest["spec"]["predictor"]
    predictor["minReplicas"] = "one"
    predictor["containers"][0]["portz"] = predictor["containers"][0].pop("ports")
    del predictor["containers"][0]["name"]
    problems = _kserve_problems(manifest)
    assert any("minReplicas" in p for p in problems)
    assert any(p.endswith("containers/0/portz: unknown field") for p in problems)
    assert any("'name' is a required property" in p for p in problems)
