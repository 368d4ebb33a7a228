"""The Open Inference Protocol (KServe V2, as Triton, MLServer and Seldon Core 2 speak it):
metadata from the model's own input rules, and an infer request's tensors into the batch
every other endpoint checks, or a 4xx naming the input.

Every input is one column: shape ``[rows]`` or ``[rows, 1]``. Numbers come as any INT,
UINT or FP tensor (a NaN is a null, which is how a numpy client sends one); text and dates
as BYTES. Tensors are JSON ``data`` or, with the binary tensor data extension (Triton's
clients use it by default), raw little-endian bytes after the JSON header. No HTTP here.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from innflow.serving.core import LoadedModel, Prediction
from innflow.serving.parsing import Batch, RequestError

HEADER_LENGTH = "inference-header-content-length"  # the binary extension's HTTP header

_FIXED = {  # datatype -> numpy dtype of its raw little-endian bytes
    "BOOL": "?", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
}  # fmt: skip
DATATYPES = (*_FIXED, "BYTES")
NUMBERS = frozenset(d for d in _FIXED if d != "BOOL")
# What a column of each kind takes: the contract's types, then a signature's.
_ACCEPTED = {
    "integer": NUMBERS, "number": NUMBERS, "text": {"BYTES"}, "date": {"BYTES"},
    "long": NUMBERS, "double": NUMBERS, "float": NUMBERS, "string": {"BYTES"},
    "boolean": {"BOOL"}, "datetime": {"BYTES"},
}  # fmt: skip
_DECLARED = {"number": "FP64", "text": "BYTES", "date": "BYTES", "long": "INT64",
             "integer": "INT64", "double": "FP64", "float": "FP32", "string": "BYTES",
             "boolean": "BOOL", "datetime": "BYTES"}  # fmt: skip


@dataclass(frozen=True)
class Infer:
    """An infer request read: the batch, its id, the outputs asked for (None: all), and
    whether the client wants them as binary tensors.
    """

    batch: Batch
    id: str | None
    outputs: list[str] | None
    binary: set[str]


def _type_of(model: LoadedModel, column: str) -> tuple[str, bool]:
    """A column's type name (the contract's or the signature's) and whether it is nullable."""
    if model.general is not None:
        spec = next(c for c in model.general.schema.columns if c.name == column)
        return spec.type, not spec.required
    rule = model.contract.columns[column]
    return rule.type, rule.nullable


def inputs(model: LoadedModel) -> list[dict[str, Any]]:
    """The model's inputs as V2 tensor metadata: one ``[-1]`` tensor per column. A nullable
    integer is declared FP64 (NaN carries its null); any INT, UINT or FP tensor is taken.
    """
    declared = []
    for column in model.columns:
        kind, nullable = _type_of(model, column)
        datatype = "FP64" if kind == "integer" and nullable else _DECLARED[kind]
        declared.append({"name": column, "datatype": datatype, "shape": [-1]})
    return declared


def outputs(model: LoadedModel) -> list[dict[str, Any]]:
    """What infer answers: a regression's ``prediction``, a binary model's ``probability``
    (of the positive class) and ``likely_cancel`` (at its threshold); a general model's
    outputs by what its pyfunc returns.
    """
    numbers = model.regression if model.general is None else not model.general.probabilities
    if numbers:
        return [{"name": "prediction", "datatype": "FP64", "shape": [-1]}]
    return [{"name": "probability", "datatype": "FP64", "shape": [-1]},
            {"name": "likely_cancel", "datatype": "BOOL", "shape": [-1]}]  # fmt: skip


def model_metadata(name: str, model: LoadedModel, versions: list[str]) -> dict[str, Any]:
    """``GET /v2/models/{name}[/versions/{v}]``."""
    return {
        "name": name,
        "versions": versions,
        "platform": "innflow" if model.general is None else "mlflow_pyfunc",
        "inputs": inputs(model),
        "outputs": outputs(model),
    }


def _json(body: bytes) -> Any:
    """The request's JSON; NaN and Infinity taken as Triton's clients write them (numpy's
    NaN of a null in an FP tensor), which strict JSON parsers refuse.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise RequestError(400, f"the infer request is not valid JSON: {e}") from e


def read(body: bytes, header_length: str | None, models: list[LoadedModel]) -> Infer:
    """An infer request (JSON, or JSON then binary tensors) as a batch of columns, each
    input checked against the type its column has in any served model (``models``).
    """
    tail = b""
    if header_length is not None:
        try:
            length = int(header_length)
        except ValueError:
            length = -1
        if not 0 < length <= len(body):
            raise RequestError(
                400, f"Inference-Header-Content-Length {header_length!r} is not a length "
                f"within the body's {len(body)} bytes",
            )  # fmt: skip
        body, tail = body[:length], body[length:]
    request = _json(body)
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise RequestError(400, "an infer request is an object with a list of 'inputs'")
    if not request["inputs"]:
        raise RequestError(400, "'inputs' is empty: one tensor per input column")
    types: dict[str, str] = {}
    for model in models:
        for column in model.columns:
            types.setdefault(column, _type_of(model, column)[0])
    columns: dict[str, list[Any] | np.ndarray] = {}
    rows: int | None = None
    offset = 0
    for position, tensor in enumerate(request["inputs"]):
        name, values, used = _tensor(position, tensor, types, tail, offset)
        offset += used
        if name in columns:
            raise RequestError(400, f"input {name!r} is given twice", _at(name, "given twice"))
        if rows is not None and len(values) != rows:
            raise RequestError(
                400, f"input {name!r} has {len(values)} rows, the inputs before it {rows}",
                _at(name, f"shape: {len(values)} rows, expected {rows}"),
            )  # fmt: skip
        rows = len(values)
        columns[name] = values
    if offset != len(tail):
        raise RequestError(400, f"{len(tail) - offset} bytes of binary data follow no input")
    asked, binary = _asked(request)
    request_id = request.get("id")
    return Infer(
        Batch(columns, rows or 0),
        str(request_id) if request_id is not None else None,
        asked,
        binary,
    )


def _at(name: str, problem: str) -> list[dict[str, Any]]:
    return [{"row": None, "field": name, "problem": problem}]


def _tensor(
    position: int, tensor: Any, types: dict[str, str], tail: bytes, offset: int
) -> tuple[str, list[Any] | np.ndarray, int]:
    """One input tensor: (its column, its values, the binary bytes it used)."""
    if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
        raise RequestError(400, f"inputs[{position}] needs a 'name'")
    name = tensor["name"]
    if name not in types:
        known = ", ".join(sorted(types))
        raise RequestError(
            400, f"unknown input {name!r}: the model takes {known}", _at(name, "unknown input")
        )
    datatype, shape = tensor.get("datatype"), tensor.get("shape")
    if datatype not in DATATYPES:
        raise RequestError(400, f"input {name!r}: datatype {datatype!r} is not a V2 datatype",
                           _at(name, f"datatype {datatype!r} unknown"))  # fmt: skip
    accepted = _ACCEPTED[types[name]]
    if datatype not in accepted:
        wanted = next(iter(accepted)) if len(accepted) == 1 else "an INT, UINT or FP datatype"
        raise RequestError(
            400, f"input {name!r}: datatype {datatype} for a {types[name]} column; send {wanted}",
            _at(name, f"datatype {datatype}, expected {wanted}"),
        )  # fmt: skip
    if (
        not isinstance(shape, list)
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        or not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1))
    ):
        raise RequestError(
            400, f"input {name!r}: shape {shape!r}; a column is [rows] or [rows, 1]",
            _at(name, f"shape {shape!r}, expected [rows] or [rows, 1]"),
        )  # fmt: skip
    count = shape[0]
    size = _parameters(tensor).get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size < 0 or offset + size > len(tail):
            raise RequestError(400, f"input {name!r}: binary_data_size {size!r} runs past the "
                               "body", _at(name, "binary_data_size past the body"))  # fmt: skip
        chunk = tail[offset : offset + size]
        values = _binary(name, datatype, chunk, count)
        return name, values, size
    if "data" not in tensor:
        raise RequestError(400, f"input {name!r} has no 'data'", _at(name, "no data"))
    data = tensor["data"]
    if not isinstance(data, list):
        raise RequestError(400, f"input {name!r}: 'data' must be a list", _at(name, "not a list"))
    if data and all(isinstance(v, list) for v in data):  # [[v], [v], ...]: rows of one
        if not all(len(v) == 1 for v in data):
            raise RequestError(400, f"input {name!r}: rows of one value each, as its shape says",
                               _at(name, "rows of more than one value"))  # fmt: skip
        data = [v[0] for v in data]
    if len(data) != count:
        raise RequestError(
            400, f"input {name!r}: shape says {count} values, data has {len(data)}",
            _at(name, f"shape {shape} but {len(data)} values"),
        )  # fmt: skip
    for row, value in enumerate(data):
        if not _fits(datatype, value):
            raise RequestError(
                400, f"input {name!r} row {row}: {value!r} is not {datatype}",
                [{"row": row, "field": name, "problem": f"not {datatype}"}],
            )  # fmt: skip
    return name, data, 0


def _fits(datatype: str, value: Any) -> bool:
    """Whether a JSON value is of the tensor's datatype (null: the column's rules judge)."""
    if value is None:
        return True
    if datatype == "BYTES":
        return isinstance(value, str)
    if datatype == "BOOL":
        return isinstance(value, bool)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return datatype.startswith("FP") or isinstance(value, int)


def _binary(name: str, datatype: str, chunk: bytes, count: int) -> list[Any] | np.ndarray:
    """A tensor's raw bytes: fixed-size little-endian values, or BYTES as 4-byte lengths
    each followed by its UTF-8 text.
    """
    if datatype != "BYTES":
        width = np.dtype(_FIXED[datatype]).itemsize
        if len(chunk) != width * count:
            raise RequestError(
                400, f"input {name!r}: {len(chunk)} bytes for {count} {datatype} values",
                _at(name, f"{len(chunk)} bytes, expected {width * count}"),
            )  # fmt: skip
        values = np.frombuffer(chunk, dtype=_FIXED[datatype])
        return values.tolist() if datatype == "BOOL" else values.astype("float64")
    texts: list[Any] = []
    at = 0
    while at < len(chunk):
        if at + 4 > len(chunk):
            break
        (length,) = struct.unpack_from("<I", chunk, at)
        at += 4
        if at + length > len(chunk):
            break
        try:
            texts.append(chunk[at : at + length].decode())
        except UnicodeDecodeError as e:
            raise RequestError(400, f"input {name!r} row {len(texts)}: not UTF-8 text",
                               [{"row": len(texts), "field": name,
                                 "problem": "not UTF-8"}]) from e  # fmt: skip
        at += length
    if at != len(chunk) or len(texts) != count:
        raise RequestError(
            400, f"input {name!r}: the BYTES data holds {len(texts)} values, its shape {count}",
            _at(name, "BYTES data and shape disagree"),
        )  # fmt: skip
    return texts


def _asked(request: dict[str, Any]) -> tuple[list[str] | None, set[str]]:
    """The outputs asked for (None: all) and which of them as binary tensors."""
    everything = bool(_parameters(request).get("binary_data_output"))
    wanted = request.get("outputs")
    if wanted is None:
        return None, {"*"} if everything else set()
    if not isinstance(wanted, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in wanted
    ):
        raise RequestError(400, "'outputs' must be a list of objects with a 'name'")
    binary = {o["name"] for o in wanted if everything or bool(_parameters(o).get("binary_data"))}
    return [o["name"] for o in wanted], binary


def _parameters(item: dict[str, Any]) -> dict[str, Any]:
    """An object's ``parameters`` (anything but an object counts as none given)."""
    given = item.get("parameters")
    return given if isinstance(given, dict) else {}


def _datatype(values: np.ndarray) -> str:
    kind = values.dtype.kind
    if kind == "b":
        return "BOOL"
    if kind in "iu":
        return "INT64"
    if kind == "f":
        return "FP64"
    return "BYTES"


def answer(
    request: Infer, name: str, version: str, predicted: Prediction
) -> tuple[dict[str, Any], bytes]:
    """The infer response: its JSON and the binary tensors that follow it (empty when
    every output is inline).
    """
    available = {k: np.asarray(v) for k, v in predicted.columns.items()}
    chosen = request.outputs if request.outputs is not None else list(available)
    unknown = [o for o in chosen if o not in available]
    if unknown:
        raise RequestError(
            400, f"unknown output {', '.join(unknown)}: the model answers "
            f"{', '.join(available)}", _at(unknown[0], "unknown output"),
        )  # fmt: skip
    tensors, tail = [], b""
    for output in chosen:
        values = available[output]
        datatype = _datatype(values)
        tensor: dict[str, Any] = {"name": output, "datatype": datatype, "shape": [len(values)]}
        if output in request.binary or "*" in request.binary:
            raw = _raw(values, datatype)
            tensor["parameters"] = {"binary_data_size": len(raw)}
            tail += raw
        else:
            tensor["data"] = [_plain(v) for v in values.tolist()]
        tensors.append(tensor)
    body: dict[str, Any] = {"model_name": name, "model_version": version, "outputs": tensors}
    if request.id is not None:
        body["id"] = request.id
    return body, tail


def _plain(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _raw(values: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        encoded = [str(v).encode() for v in values.tolist()]
        return b"".join(struct.pack("<I", len(e)) + e for e in encoded)
    return np.ascontiguousarray(values, dtype=_FIXED[datatype]).tobytes()
