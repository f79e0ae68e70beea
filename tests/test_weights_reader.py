"""The torch-free checkpoint reader: formats, dtypes, views, and refusal of malicious pickles."""

from __future__ import annotations

import collections
import io
import os
import pickle
import sys
import zipfile

import numpy as np
import pytest

from autox3d_tf.weights.torch_reader import (
    CheckpointError,
    UnsafeCheckpointError,
    is_torch_checkpoint,
    load_torch_checkpoint,
)
from tests.helpers.reference import require


def _sample_state():
    torch = require("torch")
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(4, 6, generator=gen)
    return collections.OrderedDict(
        conv=torch.randn(8, 3, 1, 3, 3, generator=gen),
        transposed=base.t(),  # non-contiguous view
        sliced=base[1:3, 2:5],  # view with an offset into a shared storage
        half=torch.randn(5, generator=gen).half(),
        bfloat=torch.randn(5, generator=gen).bfloat16(),
        double=torch.randn(2, 2, generator=gen).double(),
        long=torch.arange(7),
        flag=torch.tensor([True, False]),
        scalar=torch.tensor(3.5),
        empty=torch.zeros(0, 4),
        param=torch.nn.Parameter(torch.ones(3)),
    )


def _expected(t) -> np.ndarray:
    torch = require("torch")
    t = t.detach()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.numpy()


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_reads_what_torch_saves(tmp_path, zip_format):
    torch = require("torch")
    state = _sample_state()
    path = tmp_path / "ck.pth"
    torch.save(
        {"model_state": state, "epoch": 7, "cfg": "a: 1", "meta": [1, 2.5, None, (True, "x")]},
        path,
        _use_new_zipfile_serialization=zip_format,
    )
    assert is_torch_checkpoint(str(path))
    ck = load_torch_checkpoint(path)
    assert ck["epoch"] == 7 and ck["cfg"] == "a: 1" and ck["meta"] == [1, 2.5, None, (True, "x")]
    loaded = ck["model_state"]
    assert isinstance(loaded, collections.OrderedDict)
    assert list(loaded) == list(state)
    for key, tensor in state.items():
        want = _expected(tensor)
        got = loaded[key]
        assert isinstance(got, np.ndarray), key
        assert got.shape == want.shape and got.dtype == want.dtype, key
        np.testing.assert_array_equal(got, want, err_msg=key)


def test_reads_a_real_state_dict_without_torch_at_runtime(tmp_path):
    torch = require("torch")
    module = torch.nn.Sequential(torch.nn.Conv3d(3, 4, 3), torch.nn.BatchNorm3d(4))
    path = tmp_path / "sd.pyth"
    torch.save(module.state_dict(), path)
    sd = load_torch_checkpoint(path)
    assert sorted(sd) == sorted(module.state_dict())
    np.testing.assert_array_equal(sd["0.weight"], module[0].weight.detach().numpy())
    assert sd["1.num_batches_tracked"].dtype == np.int64


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def _trap_system(monkeypatch) -> list:
    """Replaces os.system (and posix.system, the name a pickle uses) by a recorder."""
    calls: list = []
    fake = lambda cmd: calls.append(cmd) or 0  # noqa: E731
    monkeypatch.setattr(os, "system", fake)
    if os.name == "posix":
        monkeypatch.setattr("posix.system", fake)
    return calls


def _zip_checkpoint(path, payload: bytes) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", payload)
        zf.writestr("archive/version", "3\n")


def test_refuses_os_system_in_zip_checkpoint(tmp_path, monkeypatch):
    payload = pickle.dumps({"model_state": _Evil()}, protocol=2)
    # The pickle really references os.system (posix.system) ...
    assert b"system" in payload
    calls = _trap_system(monkeypatch)
    path = tmp_path / "evil.pyth"
    _zip_checkpoint(path, payload)
    with pytest.raises(UnsafeCheckpointError, match=r"system.*not a tensor"):
        load_torch_checkpoint(path)
    assert calls == []  # ... and nothing ran


def test_refuses_os_system_in_legacy_checkpoint(tmp_path, monkeypatch):
    buf = io.BytesIO()
    for obj in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}, {"model_state": _Evil()}):
        pickle.dump(obj, buf, protocol=2)
    calls = _trap_system(monkeypatch)
    path = tmp_path / "evil_legacy.pth"
    path.write_bytes(buf.getvalue())
    with pytest.raises(UnsafeCheckpointError):
        load_torch_checkpoint(path)
    assert calls == []


@pytest.mark.parametrize(
    "target",
    [("builtins", "eval"), ("subprocess", "Popen"), ("torch", "load"), ("numpy.core.multiarray", "_reconstruct")],
)
def test_refuses_any_other_global(tmp_path, target):
    module, name = target
    payload = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b")R."
    path = tmp_path / "g.pyth"
    _zip_checkpoint(path, payload)
    with pytest.raises(UnsafeCheckpointError, match=f"{module}.{name}"):
        load_torch_checkpoint(path)


def test_clear_errors_for_bad_files(tmp_path):
    torch = require("torch")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_torch_checkpoint(tmp_path / "nope.pyth")
    text = tmp_path / "notes.pyth"
    text.write_text("hello")
    assert not is_torch_checkpoint(str(text))
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        load_torch_checkpoint(text)
    other_zip = tmp_path / "other.pyth"
    with zipfile.ZipFile(other_zip, "w") as zf:
        zf.writestr("readme.txt", "x")
    with pytest.raises(CheckpointError, match="data.pkl"):
        load_torch_checkpoint(other_zip)

    good = tmp_path / "good.pyth"
    torch.save({"w": torch.randn(64, 64)}, good)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.pyth"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_torch_checkpoint(truncated)

    legacy = tmp_path / "legacy.pth"
    torch.save({"w": torch.randn(64, 64)}, legacy, _use_new_zipfile_serialization=False)
    data = legacy.read_bytes()
    cut = tmp_path / "legacy_cut.pth"
    cut.write_bytes(data[:-100])
    with pytest.raises(CheckpointError, match="truncated"):
        load_torch_checkpoint(cut)


def test_reader_does_not_import_torch(tmp_path):
    torch = require("torch")
    path = tmp_path / "ck.pyth"
    torch.save({"model_state": {"a": torch.ones(2)}}, path)
    import subprocess

    code = (
        "import sys; from autox3d_tf.weights.torch_reader import load_torch_checkpoint as f; "
        f"ck = f({str(path)!r}); assert 'torch' not in sys.modules, 'torch imported'; print(ck['model_state']['a'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "[1. 1.]" in out.stdout


@pytest.mark.parametrize(
    "build",
    [
        b"}X\x07\x00\x00\x00__doc__X\x01\x00\x00\x00xsb.",  # BUILD with a dict state
        b"N}X\x0c\x00\x00\x00__defaults__)s\x86b.",  # BUILD with a slot state (setattr)
    ],
    ids=["dict-state", "slot-state"],
)
def test_refuses_attribute_writes_on_allowed_objects(tmp_path, build):
    from autox3d_tf.weights import torch_reader

    for target in (b"torch._utils\n_rebuild_tensor_v2\n", b"torch\nFloatStorage\n", b"collections\nOrderedDict\n"):
        path = tmp_path / "b.pyth"
        _zip_checkpoint(path, b"\x80\x02c" + target + build)
        with pytest.raises(CheckpointError):
            load_torch_checkpoint(path)
    assert torch_reader._rebuild_tensor_v2.__defaults__ == (False, None, None)
