"""The Open Inference Protocol (KServe V2) beside MLflow's: the same checks, numbers,
routing and metrics; a client nobody here wrote (Triton's) against a real `innflow serve`.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from innflow.serving.app import create_app
from innflow.serving.routing import Router, Variant
from innflow.serving.settings import ServiceSettings as Settings

NAME = "hotel-booking-cancellation"


def _tensors(frame: pd.DataFrame, metadata: dict) -> list[dict]:
    """The frame as V2 JSON tensors, typed as the model's metadata declares."""
    out = []
    for spec in metadata["inputs"]:
        values = frame[spec["name"]]
        data = values.astype(object).where(values.notna(), None).tolist()
        out.append({"name": spec["name"], "datatype": spec["datatype"],
                    "shape": [len(frame)], "data": data})  # fmt: skip
    return out


@pytest.fixture
def v2(registered):
    model, bookings, version, _ = registered
    client = TestClient(create_app(model, Settings(max_body_bytes=200_000)))
    return client, model, bookings, version


def test_metadata_health_and_infer_give_the_mlflow_protocols_numbers(v2) -> None:
    client, model, bookings, version = v2
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").status_code == 200
    assert client.get("/v2").json()["extensions"] == ["binary_tensor_data"]
    metadata = client.get(f"/v2/models/{NAME}").json()
    assert metadata["name"] == NAME and metadata["versions"] == [version]
    assert [i["name"] for i in metadata["inputs"]] == model.columns
    declared = {i["name"]: i["datatype"] for i in metadata["inputs"]}
    assert declared["hotel"] == "BYTES" and declared["lead_time"] == "INT64"
    assert declared["adr"] == "FP64"
    assert [o["name"] for o in metadata["outputs"]] == ["probability", "likely_cancel"]
    assert client.get(f"/v2/models/{NAME}/versions/{version}").json()["inputs"] == metadata[
        "inputs"]  # fmt: skip
    assert client.get(f"/v2/models/{NAME}/ready").json()["ready"] is True

    body = {"id": "r-1", "inputs": _tensors(bookings, metadata)}
    answered = client.post(f"/v2/models/{NAME}/infer", json=body)
    assert answered.status_code == 200, answered.text
    result = answered.json()
    assert result["id"] == "r-1" and result["model_name"] == NAME
    assert result["model_version"] == version
    outputs = {o["name"]: o for o in result["outputs"]}
    assert outputs["probability"]["datatype"] == "FP64"
    assert outputs["probability"]["shape"] == [len(bookings)]
    expected = model.pipeline.predict_proba(bookings)[:, 1]
    assert np.array_equal(np.asarray(outputs["probability"]["data"]), expected)
    assert outputs["likely_cancel"]["data"] == (expected >= model.threshold).tolist()
    records = json.loads(bookings.to_json(orient="records"))
    mlflow_way = client.post("/invocations", json={"dataframe_records": records}).json()
    assert np.array_equal(np.asarray(mlflow_way["predictions"])[:, 1], expected)
    # [rows, 1] columns, one output asked for, the version named
    column = [{**t, "shape": [len(bookings), 1], "data": [[v] for v in t["data"]]}
              for t in body["inputs"]]  # fmt: skip
    one = client.post(f"/v2/models/{NAME}/versions/{version}/infer",
                      json={"inputs": column, "outputs": [{"name": "probability"}]})  # fmt: skip
    assert one.status_code == 200, one.text
    assert [o["name"] for o in one.json()["outputs"]] == ["probability"]
    metrics = client.get("/metrics").text
    assert 'innflow_requests_total{endpoint="infer",status="200"} 2.0' in metrics


def test_binary_tensors_in_and_out(v2) -> None:
    client, model, bookings, _ = v2
    metadata = client.get(f"/v2/models/{NAME}").json()
    header: dict = {"inputs": [], "outputs": [{"name": "probability",
                                                "parameters": {"binary_data": True}}]}  # fmt: skip
    tail = b""
    for spec in metadata["inputs"]:
        values = bookings[spec["name"]]
        if spec["datatype"] == "BYTES":
            raw = b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)
        else:
            raw = values.to_numpy(dtype="float64").tobytes()
        header["inputs"].append({"name": spec["name"], "datatype": "FP64" if spec["datatype"]
                                 != "BYTES" else "BYTES", "shape": [len(bookings)],
                                 "parameters": {"binary_data_size": len(raw)}})  # fmt: skip
        tail += raw
    head = json.dumps(header).encode()
    answered = client.post(
        f"/v2/models/{NAME}/infer", content=head + tail,
        headers={"Inference-Header-Content-Length": str(len(head)),
                 "Content-Type": "application/octet-stream"},
    )  # fmt: skip
    assert answered.status_code == 200, answered.text
    length = int(answered.headers["Inference-Header-Content-Length"])
    result = json.loads(answered.content[:length])
    (output,) = result["outputs"]
    assert output["parameters"]["binary_data_size"] == 8 * len(bookings)
    values = np.frombuffer(answered.content[length:], dtype="<f8")
    assert np.array_equal(values, model.pipeline.predict_proba(bookings)[:, 1])


def test_bad_requests_get_a_4xx_naming_the_input(v2) -> None:
    client, _, bookings, _ = v2
    metadata = client.get(f"/v2/models/{NAME}").json()
    good = _tensors(bookings.head(3), metadata)

    def infer(inputs: list[dict], path: str = f"/v2/models/{NAME}/infer"):
        return client.post(path, json={"inputs": inputs})

    def replaced(name: str, **change) -> list[dict]:
        return [{**t, **change} if t["name"] == name else t for t in good]

    cases = {
        "datatype": (replaced("lead_time", datatype="BYTES", data=["1", "2", "3"]), "lead_time"),
        "shape": (replaced("adults", shape=[3, 2]), "adults"),
        "count": (replaced("adults", shape=[4]), "adults"),
        "unknown": (
            [*good, {"name": "vists", "datatype": "INT64", "shape": [3], "data": [1]}],
            "vists",
        ),
        "rows": (replaced("adults", shape=[2], data=[1, 2]), "adults"),
        "bad datatype": (replaced("adults", datatype="INT65"), "adults"),
        "value type": (replaced("adults", data=[1, "two", 3]), "adults"),
        "missing": ([t for t in good if t["name"] != "hotel"], "hotel"),
    }
    for case, (inputs, field) in cases.items():
        refused = infer(inputs)
        assert refused.status_code == 400, case
        body = refused.json()
        assert field in body["error"] or body["errors"][0]["field"] == field, (case, body)
        assert body["errors"][0]["field"] == field, (case, body)
    domain = infer(replaced("adults", data=[2, -2, 1]))
    assert domain.status_code == 400
    assert domain.json()["errors"] == [{"row": 1, "field": "adults", "problem": "value negative"}]
    assert infer(good, "/v2/models/other/infer").status_code == 404
    assert infer(good, f"/v2/models/{NAME}/versions/999/infer").status_code == 404
    assert client.get("/v2/models/other").status_code == 404
    assert client.post(f"/v2/models/{NAME}/infer", content=b"{").status_code == 400
    assert client.post(f"/v2/models/{NAME}/infer", json={"inputs": []}).status_code == 400
    lying = client.post(f"/v2/models/{NAME}/infer", content=b'{"inputs": []}',
                        headers={"Inference-Header-Content-Length": "999"})  # fmt: skip
    assert lying.status_code == 400 and "Inference-Header-Content-Length" in lying.json()["error"]
    unknown_output = client.post(f"/v2/models/{NAME}/infer",
                                 json={"inputs": good, "outputs": [{"name": "nope"}]})  # fmt: skip
    assert unknown_output.status_code == 400 and "nope" in unknown_output.json()["error"]
    odd = client.post(f"/v2/models/{NAME}/infer", json={"inputs": good, "parameters": [1]})
    assert odd.status_code == 200  # parameters that are not an object: none given, no 500


def test_routing_and_versions_behind_the_v2_routes(registry) -> None:
    from innflow.serving.loading import load

    model, bookings, version, _ = registry
    staging = load(f"models:/{NAME}@staging")
    router = Router([Variant("production", model, 50), Variant("staging", staging, 50)])
    client = TestClient(create_app(router))
    metadata = client.get(f"/v2/models/{NAME}").json()
    assert metadata["versions"] == [version, staging.version]
    body = {"inputs": _tensors(bookings.head(5), metadata)}
    other = client.post(f"/v2/models/{NAME}/versions/{staging.version}/infer", json=body)
    assert other.status_code == 200 and other.headers["X-Variant"] == "staging"
    expected = staging.pipeline.predict_proba(bookings.head(5))[:, 1]
    assert np.array_equal(np.asarray(other.json()["outputs"][0]["data"]), expected)
    chosen = {
        client.post(f"/v2/models/{NAME}/infer", json=body,
                    headers={"x-routing-key": f"guest-{i}"}).headers["X-Variant"]
        for i in range(30)
    }  # fmt: skip
    assert chosen == {"production", "staging"}


@pytest.mark.slow
def test_tritons_own_client_against_innflow_serve(registered) -> None:
    httpclient = pytest.importorskip("tritonclient.http")
    model, bookings, version, path = registered
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{path / 'mlflow.db'}"}
    command = [str(Path(sys.executable).parent / "innflow"), "serve", "--port", str(port),
               "--host", "127.0.0.1", "--model-uri", f"models:/{NAME}@production"]  # fmt: skip
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=5)
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "innflow serve did not start in 90 s"
                time.sleep(0.5)
        client = httpclient.InferenceServerClient(f"127.0.0.1:{port}")
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready(NAME)
        metadata = client.get_model_metadata(NAME)
        assert [i["name"] for i in metadata["inputs"]] == model.columns
        expected = model.pipeline.predict_proba(bookings)[:, 1]
        for binary in (True, False):
            inputs = []
            for spec in metadata["inputs"]:
                values = bookings[spec["name"]]
                array = (values.to_numpy(dtype=object) if spec["datatype"] == "BYTES"
                         else values.to_numpy(dtype="float64" if spec["datatype"] == "FP64"
                                              else "int64")).reshape(-1, 1)  # fmt: skip
                tensor = httpclient.InferInput(spec["name"], list(array.shape), spec["datatype"])
                tensor.set_data_from_numpy(array, binary_data=binary)
                inputs.append(tensor)
            asked = [httpclient.InferRequestedOutput(n, binary_data=binary)
                     for n in ("probability", "likely_cancel")]  # fmt: skip
            result = client.infer(NAME, inputs, outputs=asked, request_id="t-1")
            assert np.array_equal(result.as_numpy("probability"), expected), binary
            assert result.as_numpy("likely_cancel").tolist() == (
                expected >= model.threshold).tolist()  # fmt: skip
            assert result.get_response()["model_version"] == version
        bad = httpclient.InferInput("adults", [2, 2], "INT64")
        bad.set_data_from_numpy(np.ones((2, 2), dtype="int64"))
        from tritonclient.utils import InferenceServerException

        with pytest.raises(InferenceServerException, match="adults"):
            client.infer(NAME, [bad])
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.stderr.close()
