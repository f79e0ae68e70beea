"""`autox3d predict` on the real clips of ../shared/data/videos, with bad files mixed in.

The weights are a random pytorchvideo X3D-XS converted from a checkpoint the test writes (the
official ones cannot be downloaded here), so the labels are meaningless; what is checked is the
pipeline: every video is predicted, probabilities match pytorchvideo's model on the same clip
normalised the reference way, and bad files give one-line errors without stopping the others.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from tests.helpers.checkpoints import reference_logits, reference_model, save_pytorchvideo_checkpoint

VIDEOS = pathlib.Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "videos"


def _videos() -> list[pathlib.Path]:
    if not VIDEOS.is_dir():
        pytest.skip(f"real test videos not found at {VIDEOS.resolve()} (../shared/data/videos)")
    files = sorted(VIDEOS.glob("*.mp4"))
    if not files:
        pytest.skip(f"no .mp4 files in {VIDEOS.resolve()}")
    return files


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    videos = _videos()
    folder = tmp_path_factory.mktemp("predict")
    ref = reference_model("XS", seed=41)
    # Larger classifier weights so that the softmax is not flat and the ranking is meaningful.
    import torch

    with torch.no_grad():
        ref.blocks[5].proj.weight.mul_(30.0)
    ckpt = folder / "X3D_XS.pyth"
    save_pytorchvideo_checkpoint(ref, ckpt)
    not_video = folder / "notes.mp4"
    not_video.write_text("this is not a video\n")
    truncated = folder / "truncated.mp4"
    data = (VIDEOS / "demo.mp4").read_bytes() if (VIDEOS / "demo.mp4").exists() else videos[0].read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    return {"videos": videos, "ckpt": ckpt, "not_video": not_video, "truncated": truncated, "dir": folder}


def _reference_probs(clip_uint8: np.ndarray) -> np.ndarray:
    """pytorchvideo's X3D-XS at the test crop, on the clip normalised as the reference does."""
    import torch

    ref = reference_model("XS", seed=41)
    with torch.no_grad():
        ref.blocks[5].proj.weight.mul_(30.0)
    from tests.helpers.reference import build_reference_x3d

    at_test_crop = build_reference_x3d("XS", crop=182)
    at_test_crop.load_state_dict(ref.state_dict())
    x = torch.from_numpy(clip_uint8).float() / 255.0  # T, H, W, C
    x = (x - 0.45) / 0.225
    x = x.permute(3, 0, 1, 2)[None]  # B, C, T, H, W
    logits = reference_logits(at_test_crop, x.numpy())[0].astype(np.float64)
    return np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()


def test_predict_every_real_video_and_survive_bad_files(setup, capsys):
    from autox3d_tf.cli.main import main
    from autox3d_tf.data.decode import load_clip

    videos = [str(v) for v in setup["videos"]]
    missing = str(setup["dir"] / "missing.mp4")
    argv = ["predict", videos[0], missing, str(setup["not_video"]), *videos[1:], str(setup["truncated"])]
    argv += ["--model", "X3D_XS", "--weights", str(setup["ckpt"]), "--top", "3", "--json"]
    status = main(argv)
    captured = capsys.readouterr()
    assert status == 1  # some files failed
    report = json.loads(captured.out)
    by_video = {r["video"]: r for r in report["results"]}
    assert [r["video"] for r in report["results"]] == argv[1 : 1 + len(videos) + 3]

    errors = [line for line in captured.err.splitlines() if line.startswith("autox3d predict:")]
    assert len(errors) == 3, captured.err
    for bad in (missing, str(setup["not_video"]), str(setup["truncated"])):
        assert "error" in by_video[bad]
        assert sum(bad in line for line in errors) == 1, (bad, errors)
        assert "\n" not in by_video[bad]["error"]

    for video in videos:
        preds = by_video[video]["predictions"]
        assert len(preds) == 3
        probs = [p["probability"] for p in preds]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-5
        assert all(isinstance(p["label"], str) and 0 <= p["index"] < 400 for p in preds)

    # The first video's probabilities equal pytorchvideo's on the same decoded clip.
    clip = load_clip(videos[0], 4, 12, 182, short_side=182)
    expected = _reference_probs(clip)
    top = by_video[videos[0]]["predictions"]
    assert [p["index"] for p in top] == [int(i) for i in np.argsort(-expected)[:3]]
    np.testing.assert_allclose([p["probability"] for p in top], np.sort(expected)[::-1][:3], rtol=1e-3, atol=1e-6)


def test_predict_text_output(setup, capsys):
    from autox3d_tf.cli.main import main

    video = str(setup["videos"][0])
    assert main(["predict", video, "--model", "X3D_XS", "--weights", str(setup["ckpt"]), "--top", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == video and lines[1].lstrip().startswith("1. ") and lines[2].lstrip().startswith("2. ")


def test_predict_reports_unusable_weights(setup, capsys):
    from autox3d_tf.cli.main import main

    status = main(["predict", str(setup["videos"][0]), "--model", "X3D_XL"])
    assert status == 2
    assert "X3D_XL has no pretrained weights" in capsys.readouterr().err
