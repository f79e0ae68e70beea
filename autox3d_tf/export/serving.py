"""A stand-in for TF Serving over an exported SavedModel: its REST JSON API and its gRPC
``PredictionService.Predict``, for tests and local use (the model server binary is not
installable everywhere; the real server loads the same SavedModel).

    python -m autox3d_tf.export.serving export/saved_model/1 --model_name x3d --port 8501 --grpc_port 8500
    curl -d '{"instances": [...]}' localhost:8501/v1/models/x3d:predict

JSON semantics follow https://www.tensorflow.org/tfx/serving/api_rest :

- row format ``{"instances": [...]}``: one list element per example; an element is the value of
  the only input, or an object ``{input_name: value}``; answered ``{"predictions": [...]}``, one
  element per example (an object ``{output_name: value}`` when there are several outputs);
- columnar format ``{"inputs": value}`` or ``{"inputs": {name: value}}`` (batch dimension
  included); answered ``{"outputs": value}`` or ``{"outputs": {name: value}}``;
- optional ``"signature_name"`` (default ``serving_default``); ``{"b64": ...}`` for binary
  strings; errors as ``{"error": "..."}`` with HTTP 400;
- values must be of the input's type, as TF Serving checks them: JSON integers for an integer input
  (``0.7``, ``"7"`` or ``true`` for the uint8 ``frames`` is a 400, never truncated to 0), numbers for
  a floating one; metadata names dtypes as TF Serving does (``DT_FLOAT``, ``DT_UINT8``).

The REST server keeps a deep listen backlog, bounds each request's socket reads by a timeout and
answers every request (a bad or short ``Content-Length``, JSON nested too deeply, a server fault),
so what a client sees is what it would see from TF Serving under the same load.

TensorFlow-only (loads a TensorFlow SavedModel).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Mapping

import numpy as np
import tensorflow as tf

__all__ = ["ServingError", "Predictor", "rest_predict", "RestServer", "grpc_predict", "start_grpc_server", "main"]

DEFAULT_SIGNATURE = "serving_default"


class ServingError(ValueError):
    """A bad request (HTTP 400 / gRPC INVALID_ARGUMENT)."""


class Predictor:
    """A loaded SavedModel: ``predict({name: array}, signature_name) -> {name: array}``."""

    def __init__(self, export_dir: str | os.PathLike, model_name: str = "model", version: int = 1):
        self.export_dir = os.fspath(export_dir)
        self.loaded = tf.saved_model.load(self.export_dir)
        self.model_name = model_name
        self.version = int(version)
        self._lock = threading.Lock()

    def signature(self, name: str | None):
        name = name or DEFAULT_SIGNATURE
        if name not in self.loaded.signatures:
            raise ServingError(f"Serving signature name: \"{name}\" not found in signature def")
        return self.loaded.signatures[name]

    def input_specs(self, name: str | None = None) -> dict[str, tf.TensorSpec]:
        return dict(self.signature(name).structured_input_signature[1])

    def output_specs(self, name: str | None = None) -> dict[str, tf.TensorSpec]:
        return dict(self.signature(name).structured_outputs)

    def predict(self, inputs: Mapping[str, Any], signature_name: str | None = None) -> dict[str, np.ndarray]:
        fn = self.signature(signature_name)
        specs = self.input_specs(signature_name)
        missing = set(specs) - set(inputs)
        extra = set(inputs) - set(specs)
        if missing or extra:
            raise ServingError(f"inputs {sorted(inputs)} do not match the signature's {sorted(specs)}")
        tensors = {name: _to_tensor(value, specs[name], name) for name, value in inputs.items()}
        try:
            out = fn(**tensors)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as err:
            raise ServingError(str(err).splitlines()[0]) from None
        return {k: v.numpy() for k, v in out.items()}

    def metadata(self) -> dict:
        """``GET /v1/models/<name>/metadata``-like description of the signatures."""

        def spec(s: tf.TensorSpec) -> dict:
            return {"dtype": _dtype_name(s.dtype), "tensor_shape": {"dim": [
                {"size": str(-1 if d is None else d)} for d in s.shape]}, "name": s.name or ""}

        return {"model_spec": {"name": self.model_name, "version": str(self.version)},
                "metadata": {"signature_def": {"signature_def": {
                    name: {"inputs": {k: spec(v) for k, v in self.input_specs(name).items()},
                           "outputs": {k: spec(v) for k, v in self.output_specs(name).items()},
                           "method_name": "tensorflow/serving/predict"}
                    for name in self.loaded.signatures}}}}


def _decode_b64(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"b64"}:
            return base64.b64decode(value["b64"])
        raise ServingError(f"unexpected object in a tensor value: {sorted(value)}")
    if isinstance(value, list):
        return [_decode_b64(v) for v in value]
    return value


def _check_json_numbers(array: np.ndarray, spec: tf.TensorSpec, name: str) -> np.ndarray:
    """``array`` (of JSON values, dtype object) as int64 / float64; TF Serving's type rules: an
    integer input takes only JSON integers, a floating one integers and decimals (never booleans or
    strings, which NumPy would silently cast)."""
    allowed: tuple[type, ...] = (int,) if spec.dtype.is_integer else (int, float)
    kinds = set(map(type, array.ravel().tolist()))
    bad = [k for k in kinds if k not in allowed or k is bool]
    if bad:
        what = "a nested list of unequal lengths" if list in bad else "/".join(sorted(k.__name__ for k in bad))
        raise ServingError(f"input {name!r}: JSON value of type {what} is not of expected type "
                           f"{_dtype_name(spec.dtype)}")
    try:
        return array.astype(np.int64 if spec.dtype.is_integer else np.float64)
    except (OverflowError, ValueError, TypeError):
        raise ServingError(f"input {name!r}: values outside the range of {spec.dtype.name}") from None


def _to_tensor(value: Any, spec: tf.TensorSpec, name: str) -> tf.Tensor:
    """JSON value -> tensor of the signature's dtype; out-of-range / malformed values are errors."""
    if isinstance(value, (np.ndarray, tf.Tensor)):
        array = np.asarray(value)
    elif spec.dtype == tf.string:
        array = np.asarray(_decode_b64(value), dtype=object)
    else:
        try:
            array = np.asarray(value, dtype=object)
        except (ValueError, TypeError, RecursionError):
            raise ServingError(f"input {name!r}: not a rectangular array of numbers") from None
        if spec.dtype.is_bool:
            if set(map(type, array.ravel().tolist())) - {bool}:
                raise ServingError(f"input {name!r}: JSON value is not of expected type DT_BOOL")
            array = array.astype(bool)
        else:
            array = _check_json_numbers(array, spec, name)
    if spec.dtype.is_integer:
        info = np.iinfo(spec.dtype.as_numpy_dtype)
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise ServingError(f"input {name!r}: values outside the range of {spec.dtype.name}")
    if array.ndim != len(spec.shape) or not spec.shape.is_compatible_with(array.shape):
        raise ServingError(f"input {name!r}: shape {list(array.shape)} does not match {spec.shape}")
    return tf.constant(array, dtype=spec.dtype)


def _dtype_name(dtype: tf.DType) -> str:
    """TensorFlow's ``DataType`` enum name, as TF Serving's metadata writes it (``DT_FLOAT``)."""
    from tensorflow.core.framework import types_pb2

    return types_pb2.DataType.Name(dtype.as_datatype_enum)


def _jsonable(array: np.ndarray, name: str) -> Any:
    if array.dtype == object or array.dtype.kind == "S":
        def text(v):
            if name.endswith("_bytes"):
                return {"b64": base64.b64encode(v).decode("ascii")}
            return v.decode("utf-8") if isinstance(v, bytes) else v
        return np.vectorize(text, otypes=[object])(array).tolist() if array.size else array.tolist()
    return array.tolist()


def rest_predict(predictor: Predictor, body: Mapping[str, Any] | str | bytes) -> dict:
    """Answers one TF Serving REST ``:predict`` request body (see the module docstring)."""
    if isinstance(body, (str, bytes)):
        try:
            body = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ServingError(f"JSON Parse error: {err}") from None
        except RecursionError:
            raise ServingError("JSON Parse error: the document is nested too deeply") from None
    if not isinstance(body, Mapping):
        raise ServingError("the request must be a JSON object")
    signature = body.get("signature_name")
    names = list(predictor.input_specs(signature))
    if ("instances" in body) == ("inputs" in body):
        raise ServingError('the request needs exactly one of "instances" (row format) or "inputs" (columnar)')
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise ServingError('"instances" must be a non-empty list')
        if all(isinstance(i, Mapping) and not set(i) == {"b64"} for i in instances):
            keys = set(instances[0])
            if any(set(i) != keys for i in instances):
                raise ServingError("every instance must name the same inputs")
            inputs = {k: [i[k] for i in instances] for k in keys}
        elif len(names) == 1:
            inputs = {names[0]: instances}
        else:
            raise ServingError(f"the signature has inputs {names}: instances must be objects naming them")
        outputs = predictor.predict(inputs, signature)
        batch = len(instances)
        for k, v in outputs.items():
            if v.ndim == 0 or v.shape[0] != batch:
                raise ServingError(f"output {k!r} has no batch dimension of size {batch}: use the columnar format")
        if len(outputs) == 1:
            (k, v), = outputs.items()
            return {"predictions": _jsonable(v, k)}
        columns = {k: _jsonable(v, k) for k, v in outputs.items()}
        return {"predictions": [{k: columns[k][i] for k in columns} for i in range(batch)]}
    value = body["inputs"]
    inputs = dict(value) if isinstance(value, Mapping) and not set(value) == {"b64"} else None
    if inputs is None:
        if len(names) != 1:
            raise ServingError(f"the signature has inputs {names}: \"inputs\" must be an object naming them")
        inputs = {names[0]: value}
    outputs = predictor.predict(inputs, signature)
    if len(outputs) == 1:
        (k, v), = outputs.items()
        return {"outputs": _jsonable(v, k)}
    return {"outputs": {k: _jsonable(v, k) for k, v in outputs.items()}}


class RestServer:
    """TF Serving's REST API on ``http://host:port`` for one model, in a background thread:

    ``POST /v1/models/<name>[/versions/<v>]:predict``, ``GET /v1/models/<name>`` (status) and
    ``GET /v1/models/<name>/metadata``. ``port=0`` picks a free port (see ``.port``).

    ``backlog`` is the listen queue (socketserver's default of 5 resets concurrent clients);
    ``timeout`` (seconds) bounds every socket read and write of a request, so a client that
    announces more body than it sends gets a 400 instead of holding a thread; a body over
    ``max_body`` bytes is a 413."""

    def __init__(self, predictor: Predictor, host: str = "127.0.0.1", port: int = 8501, *,
                 backlog: int = 1024, timeout: float = 30.0, max_body: int = 1 << 30):
        self.predictor = predictor
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                return

            def _send(self, code: int, payload: dict) -> None:
                data = json.dumps(payload).encode("utf-8")
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client went away (reset, broken pipe, timeout)
                    self.close_connection = True

            def _route(self) -> tuple[str | None, str]:
                path = self.path.split("?")[0]
                prefix = f"/v1/models/{outer.predictor.model_name}"
                if not path.startswith(prefix):
                    return None, path
                rest = path[len(prefix):]
                if rest.startswith("/versions/"):
                    version, _, tail = rest[len("/versions/"):].partition(":")
                    version, _, sub = version.partition("/")
                    if version != str(outer.predictor.version):
                        return None, path
                    rest = (f"/{sub}" if sub else "") + (f":{tail}" if tail else "")
                return rest, path

            def do_GET(self) -> None:  # noqa: N802
                rest, path = self._route()
                if rest == "":
                    self._send(200, {"model_version_status": [{"version": str(outer.predictor.version),
                                     "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]})
                elif rest == "/metadata":
                    self._send(200, outer.predictor.metadata())
                else:
                    self._send(404, {"error": f"Servable not found for request: {path}"})

            def do_POST(self) -> None:  # noqa: N802
                rest, path = self._route()
                if rest != ":predict":
                    self._send(404, {"error": f"Servable not found for request: {path}"})
                    return
                body = self._body()
                if body is None:
                    return
                try:
                    with outer.predictor._lock:
                        answer = rest_predict(outer.predictor, body)
                except ServingError as err:
                    self._send(400, {"error": str(err)})
                    return
                except Exception as err:  # a server fault is still an answer, never a dropped connection
                    self._send(500, {"error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"})
                    return
                self._send(200, answer)

            def _body(self) -> bytes | None:
                """The request body, or None once an error was answered (bad or missing
                Content-Length, a body larger than ``max_body`` or shorter than announced)."""
                header = self.headers.get("Content-Length")
                if header is None:
                    self._send(411, {"error": "Content-Length header required"})
                    return None
                try:
                    length = int(header)
                except ValueError:
                    length = -1
                if length < 0:
                    self._send(400, {"error": f"bad Content-Length {header!r}"})
                    return None
                if length > outer.max_body:
                    self._send(413, {"error": f"request body of {length} bytes exceeds the limit of {outer.max_body}"})
                    return None
                try:
                    body = self.rfile.read(length)
                except (TimeoutError, OSError):
                    body = b""
                if len(body) != length:
                    self._send(400, {"error": f"request body shorter than its Content-Length ({len(body)} of {length} bytes)"})
                    return None
                return body

        class Server(ThreadingHTTPServer):
            request_queue_size = backlog
            daemon_threads = True

        Handler.timeout = timeout
        self.max_body = int(max_body)
        self.httpd = Server((host, port), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}/v1/models/{predictor.model_name}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> "RestServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "RestServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def grpc_predict(predictor: Predictor, request):
    """Answers a ``tensorflow_serving.apis.predict_pb2.PredictRequest`` with a ``PredictResponse``
    (needs ``tensorflow-serving-api``)."""
    from tensorflow_serving.apis import predict_pb2

    if request.model_spec.name and request.model_spec.name != predictor.model_name:
        raise ServingError(f"Servable not found for request: Latest({request.model_spec.name})")
    inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
    outputs = predictor.predict(inputs, request.model_spec.signature_name or None)
    wanted = list(request.output_filter) or list(outputs)
    response = predict_pb2.PredictResponse()
    response.model_spec.name = predictor.model_name
    response.model_spec.version.value = predictor.version
    response.model_spec.signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    for name in wanted:
        if name not in outputs:
            raise ServingError(f"output_filter names an unknown output {name!r}")
        response.outputs[name].CopyFrom(tf.make_tensor_proto(outputs[name]))
    return response


def start_grpc_server(predictor: Predictor, port: int = 8500, host: str = "127.0.0.1"):
    """TF Serving's gRPC ``PredictionService`` (Predict only) on ``host:port``; returns
    ``(server, port)`` (``port=0`` picks a free one). Stop it with ``server.stop(None)``."""
    from concurrent import futures

    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    class Service(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):  # noqa: N802
            try:
                with predictor._lock:
                    return grpc_predict(predictor, request)
            except ServingError as err:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Service(), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    server.start()
    return server, bound


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number (0 to 65535): {text!r}")
    return port


def main(argv: list[str] | None = None) -> int:
    """``python -m autox3d_tf.export.serving EXPORT_DIR``: serves until interrupted; a missing
    SavedModel or a port that cannot be bound is one line on stderr and exit status 1."""
    import sys

    parser = argparse.ArgumentParser(prog="python -m autox3d_tf.export.serving", description=__doc__.split("\n")[0])
    parser.add_argument("export_dir", help="SavedModel folder (e.g. export/saved_model/1)")
    parser.add_argument("--model_name", default="model")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_port, default=8501, help="REST port (0: none)")
    parser.add_argument("--grpc_port", type=_port, default=0, help="gRPC port (0: none; needs tensorflow-serving-api)")
    args = parser.parse_args(argv)
    prog = parser.prog
    if not os.path.isfile(os.path.join(args.export_dir, "saved_model.pb")):
        what = "no such directory" if not os.path.isdir(args.export_dir) else "no saved_model.pb in it"
        print(f"{prog}: {args.export_dir}: not a SavedModel ({what})", file=sys.stderr)
        return 1
    version = os.path.basename(os.path.normpath(args.export_dir))
    try:
        predictor = Predictor(args.export_dir, args.model_name, int(version) if version.isdigit() else 1)
    except Exception as err:  # a damaged SavedModel: TensorFlow's message, first line
        print(f"{prog}: {args.export_dir}: cannot load the SavedModel ({str(err).splitlines()[0]})", file=sys.stderr)
        return 1
    servers = []
    try:
        if args.grpc_port:
            server, port = start_grpc_server(predictor, args.grpc_port, args.host)
            if not port:
                print(f"{prog}: cannot listen on {args.host}:{args.grpc_port} (gRPC)", file=sys.stderr)
                return 1
            servers.append(server)
            print(f"gRPC PredictionService on {args.host}:{port}", flush=True)
        if args.port:
            rest = RestServer(predictor, args.host, args.port)
    except (OSError, RuntimeError) as err:
        print(f"{prog}: cannot listen on {args.host}:{args.port} ({err})", file=sys.stderr)
        return 1
    if args.port:
        print(f"REST API on {rest.url}", flush=True)
        try:
            rest.httpd.serve_forever()
        except KeyboardInterrupt:
            pass
    elif servers:
        servers[0].wait_for_termination()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
