"""Bad input at every entry point of the `autox3d` command (issue 15): each case is one clear line on
stderr naming the problem and the file (never a traceback), the rest of the work goes on, and
``--json`` output is strict JSON on stdout alone. The commands run in this process (``main(argv)``)
except where the process itself is the point (a closed pipe, the start-up lines)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from autox3d_tf.cli.main import main
from autox3d_tf.workflows.json_output import dumps, json_mode, print_json, strict
from tests.helpers.videos import write_raw_h264, write_video


def strict_json(text: str):
    """Parses ``text`` as RFC 8259 JSON: NaN / Infinity are errors."""
    def refuse(token):
        raise ValueError(f"non-JSON constant {token}")
    return json.loads(text, parse_constant=refuse)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A video, broken inputs, and X3D_XS weights: good, with a NaN, and garbage."""
    from autox3d_tf.weights.convert import _atomic_save_weights
    from autox3d_tf.zoo import X3D_XS

    folder = tmp_path_factory.mktemp("robust")
    out = {"dir": folder, "video": write_video(folder / "clip.mp4", frames=40, size=(64, 48))}
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "text.mp4").write_text("not a video\n")
    os.mkfifo(folder / "pipe.mp4")
    out["good"] = str(folder / "good.weights.h5")
    model = X3D_XS(weights=None, input_shape=(4, 182, 182, 3))
    _atomic_save_weights(model, out["good"])
    out["nan"] = str(folder / "nan.weights.h5")
    with open(out["good"], "rb") as src, open(out["nan"], "wb") as dst:
        dst.write(src.read())
    with h5py.File(out["nan"], "r+") as fh:
        names = []
        fh.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) and o.ndim == 2 else None)
        data = fh[names[-1]][()]
        data.flat[0] = np.inf
        fh[names[-1]][...] = data
        out["nan_tensor"] = names[-1]
    out["garbage"] = str(folder / "garbage.weights.h5")
    with open(out["garbage"], "wb") as fh:
        fh.write(os.urandom(10_000))
    return out


def test_strict_json_helpers(capsys):
    assert strict({"a": [1.0, float("nan"), float("inf")], "b": np.float32(2.5)}) == {"a": [1.0, None, None], "b": 2.5}
    assert strict_json(dumps({"x": float("-inf")})) == {"x": None}
    with json_mode(True):
        print("progress bar 3/10")
        print_json({"ok": True})
    out, err = capsys.readouterr()
    assert strict_json(out) == {"ok": True} and "progress bar" in err


# -- predict ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_predict_json_with_bad_videos_mixed_in(files, capsys):
    """Empty, non-video, FIFO and missing files among good ones (a video and a raw .h264 stream):
    one line each on stderr, the good ones predicted, strict JSON on stdout."""
    d = files["dir"]
    raw = write_raw_h264(d / "raw.h264")
    videos = [files["video"], str(d / "empty.mp4"), str(d / "text.mp4"), str(d / "pipe.mp4"), str(d / "none.mp4"), raw]
    code, out, err = run(capsys, "predict", *videos, "--model", "X3D_XS", "--weights", files["good"], "--json")
    assert code == 1
    result = strict_json(out)
    by_video = {r["video"]: r for r in result["results"]}
    assert by_video[files["video"]]["predictions"] and by_video[raw]["predictions"]
    for bad, why in [("empty.mp4", "empty file"), ("text.mp4", "not a readable video"),
                     ("pipe.mp4", "not a regular file"), ("none.mp4", "file not found")]:
        assert why in by_video[str(d / bad)]["error"]
    lines = err.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith("autox3d predict: ") for line in lines), err


def test_predict_refuses_nonfinite_weights_naming_the_tensor(files, capsys):
    code, out, err = run(capsys, "predict", files["video"], "--model", "X3D_XS", "--weights", files["nan"], "--json")
    line = one_line(err)
    assert code == 2 and out == "" and files["nan"] in line and files["nan_tensor"] in line and "NaN or Inf" in line


def test_predict_garbage_weights_file_is_named(files, capsys):
    code, out, err = run(capsys, "predict", files["video"], "--model", "X3D_XS", "--weights", files["garbage"])
    line = one_line(err)
    assert code == 2 and out == "" and "garbage.weights.h5: not a readable Keras" in line


@pytest.mark.parametrize("value", ["none", "None"])
def test_predict_weights_none_is_a_clear_error(files, capsys, value):
    code, out, err = run(capsys, "predict", files["video"], "--model", "X3D_XS", "--weights", value)
    assert code == 2 and "predictions need trained weights" in one_line(err)


# -- convert ---------------------------------------------------------------------------------------

def test_convert_directory_source_and_destination(files, tmp_path, capsys):
    code, out, err = run(capsys, "convert", str(tmp_path), str(tmp_path / "x.weights.h5"), "--model", "X3D_XS")
    assert code == 1 and "is a directory" in one_line(err)
    ckpt = tmp_path / "fake.pyth"
    ckpt.write_bytes(os.urandom(2048))
    (tmp_path / "dir.weights.h5").mkdir()
    code, out, err = run(capsys, "convert", str(ckpt), str(tmp_path / "dir.weights.h5"), "--model", "X3D_XS")
    assert code == 1 and str(ckpt) in one_line(err)


def test_convert_checkpoint_declaring_gigabytes_is_refused(tmp_path, capsys):
    """A tensor that declares far more elements than its storage holds (a 4-byte storage viewed as
    128 M floats: half a gigabyte once copied) is refused before anything is allocated: what a
    checkpoint declares is bounded by what the file holds."""
    import torch

    path = tmp_path / "huge.pth"
    torch.save({"model_state": {"blocks.0.conv.conv_t.weight": torch.zeros(1).expand(1 << 27)}}, str(path))
    assert path.stat().st_size < 10_000
    code, out, err = run(capsys, "convert", str(path), str(tmp_path / "o.weights.h5"), "--model", "X3D_XS")
    assert code == 1 and "declares 134217728 elements, its storage holds 1" in one_line(err)


# -- make-synthetic, to-tfrecord ------------------------------------------------------------------

@pytest.mark.parametrize("args,why", [
    (["--fps", "0"], "fps must be positive"),
    (["--classes", "1"], "num_classes must be >= 2"),
])
def test_make_synthetic_bad_arguments(tmp_path, capsys, args, why):
    code, out, err = run(capsys, "make-synthetic", str(tmp_path / "s"), "--clips-per-class", "1", *args)
    assert code == 2 and why in one_line(err)
    assert not (tmp_path / "s").exists()


def test_make_synthetic_into_a_file(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    code, out, err = run(capsys, "make-synthetic", str(target), "--clips-per-class", "1")
    assert code == 2 and "is a file, not a folder" in one_line(err)


def test_make_synthetic_json_is_strict(tmp_path, capsys):
    code, out, err = run(capsys, "make-synthetic", str(tmp_path / "s"), "--classes", "2", "--clips-per-class", "1",
                         "--frames", "4", "--json")
    assert code == 0 and strict_json(out)["classes"]


@pytest.mark.parametrize("text,why", [
    ("", "empty annotation file"),
    ("label,youtube_id,time_start,time_end,split\n", ""),
    ("label,youtube_id,time_start,time_end,split\nclap,v0,zero,10,train\n", "train.csv:2"),
    ("label,youtube_id,time_start,time_end,split\nclap,v0,0\n", "train.csv:2"),
    ("\x00\x01\x02binary", "train.csv"),
])
def test_to_tfrecord_malformed_or_empty_csv(tmp_path, capsys, text, why):
    csv = tmp_path / "train.csv"
    csv.write_text(text)
    code, out, err = run(capsys, "to-tfrecord", str(csv), str(tmp_path / "out" / "t"), "--quiet", "--json")
    line = one_line(err)
    assert code == 1 and out == "" and line.startswith("autox3d to-tfrecord: ") and why in line
    assert not (tmp_path / "classes.json").exists()


# -- info, and the process as a whole -------------------------------------------------------------

def test_info_json_is_strict(capsys):
    code, out, err = run(capsys, "info", "X3D_XS", "--json")
    assert code == 0 and strict_json(out)


@pytest.mark.slow
def test_closed_pipe_and_startup_lines(files):
    """`autox3d predict ... | head -1`: no BrokenPipeError traceback; and no cuInit / absl start-up
    line on a machine without a GPU."""
    cmd = (f"{sys.executable} -m autox3d_tf.cli.main predict {files['video']} {files['video']} --model X3D_XS "
           f"--weights {files['good']} --top 5 | head -1")
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=300)
    assert proc.stdout.strip() == files["video"]
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
    assert "cuInit" not in proc.stderr and "E0000" not in proc.stderr, proc.stderr


def test_train_json_keeps_keras_progress_off_stdout(monkeypatch, tmp_path, capsys):
    """`autox3d train --json`: Keras' progress bar (printed on stdout while fitting) goes to stderr;
    stdout is the summary alone, strict JSON even when the loss diverged to NaN."""
    import types

    from autox3d_tf.training import loops
    from autox3d_tf.workflows import train as workflow

    def fake_train(data, **kwargs):
        print("1/1 ━━━━━━━━━━━━━━━━━━━━ 1s 1s/step - loss: nan")  # what model.fit prints
        return types.SimpleNamespace(
            run_dir=str(tmp_path / "run"), weights_path=str(tmp_path / "run" / "final.weights.h5"), initial_epoch=0,
            history={"loss": [float("nan")], "accuracy": [0.25]}, seconds=1.0, extra={},
            config={"strategy": "default", "precision": "float32", "spec": {"name": "X3D_XS"}})

    monkeypatch.setattr(loops, "train", fake_train)
    code = workflow.main(["autox3d train", f"--train_data={tmp_path}", f"--out_dir={tmp_path / 'run'}", "--json"])
    out, err = capsys.readouterr()
    assert code in (0, None)
    summary = strict_json(out)
    assert summary["final_metrics"] == {"loss": None, "accuracy": 0.25}
    assert "loss: nan" in err and "━" not in out


def test_convert_zip_member_declaring_more_than_the_file_is_refused(tmp_path, capsys):
    """A zip checkpoint whose storage member's header claims gigabytes (a few bytes on disk): the
    declared size is bounded by the file's before anything is read."""
    import struct
    import zipfile

    import torch

    path = tmp_path / "bomb.pth"
    torch.save({"model_state": {"blocks.0.conv.conv_t.weight": torch.zeros(4)}}, str(path))
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        member = next(n for n in zf.namelist() if n.endswith("/data/0"))
    entry = data.index(b"PK\x01\x02")  # the central directory, where zipfile reads sizes from
    while data[entry + 46:entry + 46 + struct.unpack_from("<H", data, entry + 28)[0]] != member.encode():
        entry = data.index(b"PK\x01\x02", entry + 4)
    struct.pack_into("<I", data, entry + 24, 3 << 30)  # uncompressed size: 3 GiB
    path.write_bytes(bytes(data))
    code, out, err = run(capsys, "convert", str(path), str(tmp_path / "o.weights.h5"), "--model", "X3D_XS")
    assert code == 1 and "declares 3221225472 bytes" in one_line(err)


@pytest.mark.slow
def test_to_tfrecord_json_from_a_fresh_process(tmp_path):
    """Its worker processes start TensorFlow too: no start-up line from them either, and stdout is
    the JSON report alone."""
    video = write_video(tmp_path / "v0.mp4", frames=12, size=(32, 24))
    csv = tmp_path / "train.csv"
    csv.write_text(f"label,youtube_id,time_start,time_end,split\nclap,{os.path.basename(video)[:-4]},0,10,train\n")
    proc = subprocess.run([sys.executable, "-m", "autox3d_tf.cli.main", "to-tfrecord", str(csv), str(tmp_path / "t"),
                           "--shards", "1", "--workers", "1", "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert strict_json(proc.stdout)["videos"] == 1
    assert "cuInit" not in proc.stderr and "E0000" not in proc.stderr, proc.stderr
