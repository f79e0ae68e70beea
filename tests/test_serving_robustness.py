"""The serving stand-in answers every request, as TF Serving would (issue 15, items 5 and 9): strict
JSON types for typed inputs, TF Serving's dtype names, a listen backlog and request timeouts that
hold under 50 concurrent clients, bad Content-Length and deeply nested JSON answered with a 400."""

from __future__ import annotations

import http.client
import json
import socket
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from autox3d_tf.export.serving import Predictor, RestServer, ServingError, main, rest_predict

SHAPE = (2, 4, 4, 3)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> str:
    """A tiny SavedModel with the video signature's input: uint8 ``frames``; its outputs are the
    mean pixel value per example (so a truncated input shows) and a float copy of it."""

    class Tiny(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, *SHAPE], tf.uint8, name="frames")])
        def serve(self, frames):
            mean = tf.reduce_mean(tf.cast(frames, tf.float32), axis=[1, 2, 3, 4])
            return {"mean": mean, "scaled": mean / 255.0}

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
        def floats(self, x):
            return {"sum": tf.reduce_sum(x, axis=1)}

    module = Tiny()
    path = str(tmp_path_factory.mktemp("tiny") / "1")
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve, "floats": module.floats})
    return path


@pytest.fixture(scope="module")
def predictor(saved_model) -> Predictor:
    return Predictor(saved_model, model_name="tiny")


def frames(value=7) -> list:
    return np.full(SHAPE, value, dtype=np.int64).tolist()


def test_integer_input_takes_integers(predictor):
    out = rest_predict(predictor, json.dumps({"instances": [frames(7), frames(9)]}))
    assert [p["mean"] for p in out["predictions"]] == [7.0, 9.0]


@pytest.mark.parametrize("bad", [0.7, 1.0, "7", True, None, [1, 2]])
def test_uint8_input_rejects_non_integer_json(predictor, bad):
    value = frames(7)
    value[1][2][3][0] = bad  # one bad element among integers, as a client bug would send
    with pytest.raises(ServingError, match="frames"):
        rest_predict(predictor, json.dumps({"instances": [value]}))
    with pytest.raises(ServingError, match="frames"):
        rest_predict(predictor, json.dumps({"inputs": {"frames": [value]}}))


def test_all_float_frames_are_rejected_not_truncated(predictor):
    normalised = (np.random.default_rng(0).random(SHAPE)).tolist()  # [0, 1] floats: black frames if truncated
    with pytest.raises(ServingError, match="not of expected type DT_UINT8"):
        rest_predict(predictor, {"instances": [normalised]})


@pytest.mark.parametrize("bad", ["1.5", True, {"b64": "AA=="}])
def test_float_input_rejects_strings_and_booleans(predictor, bad):
    with pytest.raises(ServingError, match="'x'"):
        rest_predict(predictor, {"signature_name": "floats", "instances": [[1, 2.5, bad]]})
    assert rest_predict(predictor, {"signature_name": "floats", "instances": [[1, 2.5, 3]]}) == {"predictions": [6.5]}


def test_metadata_uses_tf_serving_dtype_names(predictor):
    sigs = predictor.metadata()["metadata"]["signature_def"]["signature_def"]
    assert sigs["serving_default"]["inputs"]["frames"]["dtype"] == "DT_UINT8"
    assert sigs["serving_default"]["outputs"]["mean"]["dtype"] == "DT_FLOAT"
    assert sigs["floats"]["inputs"]["x"]["dtype"] == "DT_FLOAT"


def _raw(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Sends raw bytes and returns the whole answer (until the server closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def _post(port: int, name: str, body: bytes, headers: dict | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", f"/v1/models/{name}:predict", body=body,
                     headers={"Content-Type": "application/json", **(headers or {})})
        res = conn.getresponse()
        return res.status, json.loads(res.read())
    finally:
        conn.close()


def test_bad_content_length_is_answered(predictor):
    with RestServer(predictor, port=0, timeout=1.0) as server:
        path = b"POST /v1/models/tiny:predict HTTP/1.1\r\nHost: x\r\n"
        assert b" 400 " in _raw(server.port, path + b"Content-Length: abc\r\n\r\n{}").split(b"\r\n")[0]
        assert b" 400 " in _raw(server.port, path + b"Content-Length: -5\r\n\r\n{}").split(b"\r\n")[0]
        assert b" 411 " in _raw(server.port, path + b"\r\n").split(b"\r\n")[0]
        assert b" 413 " in _raw(server.port, path + b"Content-Length: 99999999999999\r\n\r\n").split(b"\r\n")[0]
        # Announces 1000 bytes, sends 2 and waits: answered when the timeout expires, thread freed.
        start = time.monotonic()
        answer = _raw(server.port, path + b"Content-Length: 1000\r\n\r\n{}")
        assert b" 400 " in answer.split(b"\r\n")[0] and b"shorter than its Content-Length" in answer
        assert time.monotonic() - start < 5
        status, out = _post(server.port, "tiny", json.dumps({"instances": [frames(3)]}).encode())
        assert status == 200 and out["predictions"][0]["mean"] == 3.0


def test_deeply_nested_json_is_a_400(predictor):
    with RestServer(predictor, port=0) as server:
        for depth in (100_000, 3_000, 70):
            body = b'{"instances": ' + b"[" * depth + b"1" + b"]" * depth + b"}"
            status, out = _post(server.port, "tiny", body)
            assert status == 400 and "error" in out


def test_server_main_errors_are_one_line(tmp_path, saved_model, capsys):
    assert main([str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err.strip()
    assert "missing" in err and "not a SavedModel" in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as exc:
        main([saved_model, "--port", "70000"])
    assert exc.value.code == 2 and "not a port number" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        assert main([saved_model, "--port", str(taken.getsockname()[1])]) == 1
    err = capsys.readouterr().err.strip()
    assert "cannot listen" in err and len(err.splitlines()) == 1


def load_test(predictor: Predictor, clients: int = 50, requests: int = 1000) -> dict:
    """``requests`` valid predictions from ``clients`` threads at once, one connection each, on
    loopback: failures, throughput and latency percentiles."""
    body = json.dumps({"instances": [frames(5)]}).encode()
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def client(n: int) -> None:
        barrier.wait()
        for _ in range(n):
            t0 = time.perf_counter()
            try:
                status, out = _post(server.port, "tiny", body)
                ok = status == 200 and out["predictions"][0]["mean"] == 5.0
                error = None if ok else f"{status} {out}"
            except Exception as err:  # a reset or a timeout: the failure the test is about
                error = f"{type(err).__name__}: {err}"
            with lock:
                latencies.append(time.perf_counter() - t0)
                if error:
                    failures.append(error)

    with RestServer(predictor, port=0) as server:
        per = [requests // clients + (i < requests % clients) for i in range(clients)]
        threads = [threading.Thread(target=client, args=(n,)) for n in per]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        wall = time.perf_counter() - start
    lat = np.asarray(latencies) * 1000
    return {"clients": clients, "requests": len(latencies), "failures": len(failures), "errors": failures[:5],
            "seconds": round(wall, 2), "throughput_rps": round(len(latencies) / wall, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 1), "p99_ms": round(float(np.percentile(lat, 99)), 1)}


@pytest.mark.slow
def test_load_50_concurrent_clients_1000_requests(predictor):
    figures = load_test(predictor)
    print("\nserving load test:", json.dumps(figures), file=sys.stderr)
    assert figures["requests"] == 1000
    assert figures["failures"] == 0, figures["errors"]
    assert figures["seconds"] < 60

