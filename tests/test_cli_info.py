"""`autox3d info`: params, GMACs, input spec, per-stage table; clear errors."""

from __future__ import annotations

import json

import pytest

from autox3d_tf.cli.main import main


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(["info", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_info_json_x3d_xs(capsys) -> None:
    rc, out, err = _run(capsys, "x3d_xs", "--json")
    assert rc == 0, err
    info = json.loads(out)
    assert info["model"] == "X3D_XS"
    assert info["params"] == 3_794_274
    assert info["macs"] == 626_146_112
    assert info["gmacs"] == pytest.approx(0.626, abs=5e-4)
    assert info["input_shape"] == [4, 160, 160, 3]
    assert info["input"]["frames"] == 4 and info["input"]["sampling_rate"] == 12
    assert info["input"]["test_crop"] == 182
    assert info["input"]["mean"] == [0.45] * 3 and info["input"]["std"] == [0.225] * 3
    stages = {s["stage"]: s for s in info["stages"]}
    assert list(stages) == ["stem", "stage1", "stage2", "stage3", "stage4", "head", "predictions"]
    assert [stages[f"stage{i}"]["blocks"] for i in range(1, 5)] == [3, 5, 11, 7]
    assert [stages[f"stage{i}"]["width"] for i in range(1, 5)] == [24, 48, 96, 192]
    assert stages["stem"]["output_shape"] == [4, 80, 80, 24]
    assert stages["stage4"]["output_shape"] == [4, 5, 5, 192]
    assert sum(s["params"] for s in info["stages"]) == info["params"]
    assert sum(s["macs"] for s in info["stages"]) == info["macs"]


def test_info_text_and_test_crop(capsys) -> None:
    rc, out, err = _run(capsys, "X3D_XS", "--crop", "test")
    assert rc == 0, err
    assert "3,794,274" in out
    assert "0.867" in out  # fvcore on pytorchvideo at 182
    assert "4 x 182 x 182 x 3" in out
    for word in ("stage", "blocks", "width", "params", "GMACs", "stage4", "4 x 6 x 6 x 192", "mean", "std"):
        assert word in out


def test_info_input_shape(capsys) -> None:
    rc, out, err = _run(capsys, "X3D_XS", "--json", "--input-shape", "8", "160", "160")
    assert rc == 0, err
    info = json.loads(out)
    assert info["input_shape"] == [8, 160, 160, 3]
    # Everything but the layers after global pooling (SE excitation, head dense, classifier)
    # scales with the clip length.
    pooled = 432 * 2048 + 2048 * 400
    assert 2 * (626_146_112 - pooled) + pooled - 200_000 < info["macs"] < 2 * 626_146_112 - pooled


def test_info_unknown_model_is_one_clear_line(capsys) -> None:
    rc, out, err = _run(capsys, "X3D_XXL")
    assert rc == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "X3D_XXL" in lines[0] and "X3D_XS" in lines[0] and "Valid models" in lines[0]


def test_info_bad_input_shape(capsys) -> None:
    rc, _, err = _run(capsys, "X3D_XS", "--input-shape", "4", "16", "16")
    assert rc == 2
    assert "input_shape" in err and len(err.strip().splitlines()) == 1
