"""Weights that would give a wrong answer or a broken cache (issue 15, items 3, 4, 6, 8): NaN / Inf
tensors are an error at conversion and load, the cache never keeps a bad download, the first good
download's sha256 is recorded and a different later file refused, and a killed conversion's
temporary files are cleaned."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from autox3d_tf.weights import NonFiniteWeightsError, WeightsHashError, convert_checkpoint, registry
from autox3d_tf.weights.loading import load_keras_weights
from tests.helpers.checkpoints import reference_model, save_pytorchvideo_checkpoint
from tests.helpers.videos import write_video

NAN_KEY = "blocks.1.res_blocks.0.branch2.conv_a.weight"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Good, NaN, Inf, 10-class and second-good X3D_XS checkpoints, a converted file and a video."""
    import torch

    folder = tmp_path_factory.mktemp("ckpts")
    out = {}
    ref = reference_model("XS", seed=3)
    save_pytorchvideo_checkpoint(ref, folder / "good.pyth")
    out["good"] = folder / "good.pyth"
    for name, value in (("nan", float("nan")), ("inf", float("inf"))):
        state = {k: v.clone() for k, v in ref.state_dict().items()}
        state[NAN_KEY].view(-1)[0] = value
        torch.save({"model_state": state}, str(folder / f"{name}.pyth"))
        out[name] = folder / f"{name}.pyth"
    save_pytorchvideo_checkpoint(reference_model("XS", seed=3, num_classes=10), folder / "ten.pyth")
    out["ten"] = folder / "ten.pyth"
    save_pytorchvideo_checkpoint(reference_model("XS", seed=4), folder / "other.pyth")
    out["other"] = folder / "other.pyth"
    out["h5"] = folder / "good.weights.h5"
    convert_checkpoint(out["good"], out["h5"], "X3D_XS")
    out["video"] = write_video(folder / "clip.mp4", frames=60, size=(96, 72))
    return out


def cli(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autox3d_tf.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def test_nonfinite_checkpoint_is_a_conversion_error_naming_the_tensor(files, tmp_path):
    for kind in ("nan", "inf"):
        with pytest.raises(NonFiniteWeightsError, match=NAN_KEY) as err:
            convert_checkpoint(files[kind], tmp_path / "x.weights.h5", "X3D_XS")
        assert err.value.tensors == [NAN_KEY]
    assert list(tmp_path.iterdir()) == []


def test_nonfinite_keras_file_is_a_load_error(files, tmp_path):
    from autox3d_tf.zoo import X3D_XS

    bad = tmp_path / "nan.weights.h5"
    bad.write_bytes(files["h5"].read_bytes())
    with h5py.File(bad, "r+") as fh:
        names = []
        fh.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) and o.ndim == 2 else None)
        data = fh[names[0]][()]
        data[0, 0] = np.nan
        fh[names[0]][...] = data
    model = X3D_XS(weights=None)
    with pytest.raises(NonFiniteWeightsError, match="NaN or Inf") as err:
        load_keras_weights(model, bad)
    assert err.value.tensors == [names[0]] and str(bad) in str(err.value)
    with pytest.raises(NonFiniteWeightsError):
        X3D_XS(weights=str(bad))


def test_garbage_keras_file_names_the_file(tmp_path):
    from autox3d_tf.zoo import X3D_XS

    junk = tmp_path / "junk.weights.h5"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(ValueError, match="junk.weights.h5: not a readable Keras"):
        X3D_XS(weights=str(junk))


def test_convert_cli_refuses_nan_in_one_line_and_writes_nothing(files, tmp_path, capsys):
    from autox3d_tf.cli.main import main

    dst = tmp_path / "out.weights.h5"
    code = main(["convert", str(files["nan"]), str(dst), "--model", "X3D_XS", "--json"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and NAN_KEY in lines[0] and "NaN or Inf" in lines[0], err
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_of_a_killed_conversion_are_removed(files, tmp_path):
    # What a `kill -9` during save_weights leaves (a pid that no longer runs), and the old naming.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".tmp-{dead.stdout.strip()}-k2j3h4.weights.h5"
    stale.write_bytes(b"\0" * 1024)
    old = tmp_path / ".tmp-abc123.weights.h5"
    old.write_bytes(b"\0" * 1024)
    os.utime(old, (0, 0))
    mine = tmp_path / "keep.weights.h5"
    mine.write_bytes(b"x")
    convert_checkpoint(files["good"], tmp_path / "x3d.weights.h5", "X3D_XS")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.weights.h5", "x3d.weights.h5"]


@pytest.fixture
def home(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    monkeypatch.setenv("AUTOX3D_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AUTOX3D_WEIGHTS_MIRROR", str(mirror))
    monkeypatch.delenv(registry.ACCEPT_CHANGED_ENV, raising=False)
    return {"home": tmp_path / "home", "mirror": mirror / "X3D_XS.pyth"}


def _cached(home) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file()) if home.exists() else []


@pytest.mark.parametrize("bad", ["random", "ten", "nan"])
def test_bad_download_is_not_cached_and_a_fixed_mirror_fixes_it(files, home, bad):
    home["mirror"].write_bytes(os.urandom(50_000) if bad == "random" else files[bad].read_bytes())
    with pytest.raises(Exception) as err:
        registry.get_weights_file("X3D_XS", "kinetics400")
    assert "Nothing was cached" in str(err.value) or "nothing was cached" in str(err.value)
    assert _cached(home["home"]) == []
    home["mirror"].write_bytes(files["good"].read_bytes())  # the mirror is fixed
    path = registry.get_weights_file("X3D_XS", "kinetics400")
    assert path.exists()
    assert _cached(home["home"]) == ["checkpoints/X3D_XS.pyth", "known_hashes.json",
                                     "weights/x3d_xs_kinetics400.weights.h5"]


def test_first_good_download_is_recorded_and_a_different_file_refused(files, home, monkeypatch):
    home["mirror"].write_bytes(files["good"].read_bytes())
    registry.get_weights_file("X3D_XS", "kinetics400")
    assert registry.known_hashes() == {"X3D_XS.pyth": registry.sha256_file(files["good"])}
    for p in (home["home"] / "weights").iterdir():
        p.unlink()
    (home["home"] / "checkpoints" / "X3D_XS.pyth").unlink()
    home["mirror"].write_bytes(files["other"].read_bytes())  # same shapes, other weights
    with pytest.raises(WeightsHashError, match=registry.ACCEPT_CHANGED_ENV):
        registry.get_weights_file("X3D_XS", "kinetics400")
    assert _cached(home["home"]) == ["known_hashes.json"]
    monkeypatch.setenv(registry.ACCEPT_CHANGED_ENV, "1")
    registry.get_weights_file("X3D_XS", "kinetics400")
    assert registry.known_hashes() == {"X3D_XS.pyth": registry.sha256_file(files["other"])}


@pytest.mark.slow
def test_predict_json_on_first_use_is_only_json(files, home):
    """The first `predict --json` downloads and converts: stdout is still one JSON document, every
    number finite; the progress bar and logs go to stderr."""
    home["mirror"].write_bytes(files["good"].read_bytes())
    env = {"AUTOX3D_HOME": str(home["home"]), "AUTOX3D_WEIGHTS_MIRROR": home["mirror"].parent.as_uri()}
    proc = cli("predict", str(files["video"]), "--model", "X3D_XS", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert result["results"][0]["predictions"]
    assert "E0000" not in proc.stderr and "cuInit" not in proc.stderr


def test_damaged_cached_conversion_says_how_to_clear_it(files, home):
    from autox3d_tf.zoo import X3D_XS

    home["mirror"].write_bytes(files["good"].read_bytes())
    cached = registry.get_weights_file("X3D_XS", "kinetics400")
    cached.write_bytes(os.urandom(5000))  # a disk error, a half-copied cache
    with pytest.raises(ValueError, match=f"delete it.*fetched and converted again"):
        X3D_XS(weights="kinetics400")
    cached.unlink()
    assert X3D_XS(weights="kinetics400") is not None
