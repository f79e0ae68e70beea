"""README "Fine-tune on your own videos": every command of its block, run as written (at toy size),
from a folder of class sub-folders to a served SavedModel.

The commands are read from README.md, so the README cannot drift from what works. ``kinetics400``
resolves through the weights registry to a 400-class pytorchvideo X3D-XS with random weights that the
test puts in a local mirror (no download). Toy-size flags are appended to each command (absl keeps the
last value of a repeated flag), and the serving port is replaced by a free one."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from autox3d_tf.data.synthetic import render_clip, write_video  # noqa: E402
from tests.helpers.checkpoints import reference_model, save_pytorchvideo_checkpoint  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTION = "## Fine-tune on your own videos"
CLASSES = ("swipe_down", "swipe_up", "still")
TOY = {
    "train": ["--frames=4", "--crop=32", "--epochs=1", "--steps_per_epoch=2", "--batch_size=4", "--verbose=0"],
    "evaluate": ["--num_clips=1", "--num_crops=1", "--batch_size=4"],
    "export": ["--tflite=false"],
}


def readme_commands() -> list[list[str]]:
    """The commands of the section's bash block, continuation lines joined."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text[text.index(SECTION):]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [shlex.split(line) for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _videos(root) -> None:
    for label, name in enumerate(CLASSES):
        folder = root / "my_videos" / name
        folder.mkdir(parents=True)
        for i in range(5):
            clip = render_clip(min(label, 1), seed=100 * label + i, size=48, frames=16)
            if name == "still":
                clip = np.repeat(clip[:1], 16, axis=0)
            write_video(folder / f"{i}.mp4", clip)
    write_video(root / "new_clip.mp4", render_clip(0, seed=999, size=48, frames=16))


def _wait_for(url: str, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited: {proc.stderr.read()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"no answer from {url}")


def test_readme_block_is_the_flow_the_test_runs():
    commands = readme_commands()
    assert [c[0] for c in commands] == ["autox3d"] * 5 + ["python"]
    assert [c[1] for c in commands[:5]] == ["train", "train", "evaluate", "predict", "export"]
    assert "--weights" in " ".join(commands[0]) and "kinetics400" in commands[0]


@pytest.mark.slow
def test_readme_finetune_commands_run(tmp_path):
    _videos(tmp_path)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    save_pytorchvideo_checkpoint(reference_model("XS", seed=1), mirror / "X3D_XS.pyth")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
           "AUTOX3D_WEIGHTS_MIRROR": str(mirror), "AUTOX3D_HOME": str(tmp_path / "home"),
           "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    port = _free_port()
    outputs = {}
    for command in readme_commands():
        if command[0] == "autox3d":
            argv = [sys.executable, "-m", "autox3d_tf.cli.main", *command[1:], *TOY.get(command[1], [])]
        else:  # the serving stand-in: runs until stopped
            argv = [sys.executable if a == "python" else a for a in command]
            argv = [str(port) if a == "8501" else a for a in argv]
            server = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True)
            try:
                base = f"http://127.0.0.1:{port}/v1/models/mine"
                _wait_for(base, server)
                frames = render_clip(1, seed=5, size=48, frames=8).tolist()
                request = urllib.request.Request(f"{base}:predict", data=json.dumps({"instances": [frames]}).encode(),
                                                 headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=120) as answer:
                    prediction = json.loads(answer.read())["predictions"][0]
            finally:
                server.terminate()
                server.wait(timeout=30)
            assert set(prediction["top_k_labels"]) <= set(CLASSES)
            assert abs(sum(prediction["probabilities"]) - 1.0) < 1e-4
            continue
        proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, (command, proc.stderr[-3000:])
        outputs[command[1]] = outputs.get(command[1], []) + [proc]

    first, second = (json.loads((tmp_path / run / "run.json").read_text()) for run in ("runs/mine", "runs/mine_stage4"))
    assert first["classes"] == sorted(CLASSES) and first["augmentation"]["flip"] is False
    assert first["pretrained"]["skipped"] == ["predictions"] and first["pretrained"]["source_classes"] == 400
    assert first["validation_split"] == {"fraction": 0.2, "seed": 0} and first["unfreeze_from"] == "classifier"
    assert second["pretrained"]["skipped"] == [] and second["unfreeze_from"] == "stage4"
    metrics = json.loads((tmp_path / "runs/mine_stage4/eval/metrics.json").read_text())
    assert metrics["videos"] == 3 and metrics["subset"]["subset"] == "validation"  # 20% of 15 videos
    assert any(label in outputs["predict"][0].stdout for label in CLASSES)
    assert (tmp_path / "export/mine/saved_model/1/saved_model.pb").exists()
