"""Independent tests of `ArchSpec` / `StageSpec` / `BlockSpec` and `round_width` (issue 2, point 2)."""

from __future__ import annotations

import copy
import dataclasses
import json
import math

import pytest

from autox3d_tf.arch import (
    ATTENTIONS,
    BLOCK_KERNELS,
    BLOCK_TYPES,
    SPACE_NAME,
    ArchSpec,
    BlockSpec,
    SpecError,
    StageSpec,
    X3D_VARIANTS,
    round_width,
    x3d_spec,
)
from tests.helpers.reference import require

VARIANTS = ["XS", "S", "M", "L", "XL"]
NON_SKIP_TYPES = ["3x3x3", "1x3x3", "5x3x3", "2+1d", "3x5x5"]


def hand_made_spec() -> ArchSpec:
    """Every block type, skip blocks, SE and none, several expansions, non-default strides."""
    return ArchSpec(
        name="hand_made",
        stages=(
            StageSpec(
                width=16,
                stride=2,
                blocks=(
                    BlockSpec("3x3x3", 2.25, "se"),
                    BlockSpec("skip"),
                    BlockSpec("1x3x3", 1.5, "none"),
                ),
            ),
            StageSpec(
                width=40,
                stride=1,
                blocks=(
                    BlockSpec("5x3x3", 3.0, "se"),
                    BlockSpec("2+1d", 4.0, "none"),
                    BlockSpec("skip"),
                    BlockSpec("3x5x5", 2.25, "se"),
                ),
            ),
            StageSpec(width=72, blocks=(BlockSpec("2+1d", 1.5, "se"), BlockSpec("skip"), BlockSpec("skip"))),
        ),
        input_frames=8,
        input_size=128,
        stem_width=16,
        stem_temporal_kernel=3,
        head_width=160,
        head_hidden=0,
        notes="every block type",
    )


def good_dict() -> dict:
    return hand_made_spec().to_dict()


# --------------------------------------------------------------------------------------------
# The space's vocabulary (docs/ARCHITECTURE.md, section 6)
# --------------------------------------------------------------------------------------------


def test_space_vocabulary():
    assert SPACE_NAME == "autox3d-v1"
    assert set(BLOCK_TYPES) == {*NON_SKIP_TYPES, "p3d-b", "p3d-c", "2+1d-d2", "1x5x5", "skip"}  # + pseudo-3D (test_pseudo3d), E3D
    assert set(ATTENTIONS) == {"none", "se"}
    assert BLOCK_KERNELS["3x3x3"] == ((3, 3, 3),)
    assert BLOCK_KERNELS["1x3x3"] == ((1, 3, 3),)
    assert BLOCK_KERNELS["5x3x3"] == ((5, 3, 3),)
    assert BLOCK_KERNELS["2+1d"] == ((1, 3, 3), (3, 1, 1))  # spatial then temporal
    assert BLOCK_KERNELS["3x5x5"] == ((3, 5, 5),)
    assert BlockSpec("skip").is_skip and BlockSpec("skip").kernels == ()


def test_block_defaults_and_inner_width():
    block = BlockSpec()
    assert (block.type, block.expansion, block.attention) == ("3x3x3", 2.25, "none")
    assert block.inner_width(24) == 54  # int(2.25 * 24)
    assert block.inner_width(192) == 432
    assert BlockSpec(expansion=1.5).inner_width(40) == 60
    assert BlockSpec(expansion=2.25).inner_width(30) == 67  # int(67.5): truncation as X3D
    assert isinstance(BlockSpec(expansion=3).expansion, float)


def test_stage_depth_excludes_skips():
    spec = hand_made_spec()
    assert spec.depths == (2, 3, 1)
    assert spec.widths == (16, 40, 72)
    assert spec.total_stride == 2 * 2 * 1 * 2


def test_specs_are_frozen_and_hashable():
    spec = hand_made_spec()
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.stages[0].width = 8  # type: ignore[misc]
    assert hash(spec) == hash(ArchSpec.from_json(spec.to_json()))
    assert isinstance(spec.stages, tuple) and isinstance(spec.stages[0].blocks, tuple)


def test_lists_are_normalised_to_tuples():
    spec = ArchSpec(name="lists", stages=[StageSpec(width=8, blocks=[BlockSpec()])])
    assert isinstance(spec.stages, tuple) and isinstance(spec.stages[0].blocks, tuple)
    assert spec == ArchSpec(name="lists", stages=(StageSpec(width=8, blocks=(BlockSpec(),)),))


# --------------------------------------------------------------------------------------------
# JSON round trip
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_x3d_spec_json_round_trip(variant, tmp_path):
    spec = x3d_spec(variant)
    text = spec.to_json()
    assert json.loads(text) == spec.to_dict()  # real JSON
    assert ArchSpec.from_json(text) == spec
    assert ArchSpec.from_json(spec.to_json(indent=None)) == spec
    assert ArchSpec.from_dict(json.loads(text)) == spec
    path = tmp_path / f"{variant}.json"
    spec.save(str(path))
    loaded = ArchSpec.load(str(path))
    assert loaded == spec
    assert loaded.to_json() == text  # stable serialisation


def test_hand_made_spec_json_round_trip(tmp_path):
    spec = hand_made_spec()
    loaded = ArchSpec.from_json(spec.to_json())
    assert loaded == spec
    assert loaded.notes == "every block type"
    assert [b.type for s in loaded.stages for b in s.blocks] == [b.type for s in spec.stages for b in s.blocks]
    assert [s.stride for s in loaded.stages] == [2, 1, 2]
    assert loaded.head_hidden == 0 and loaded.stem_temporal_kernel == 3
    spec.save(str(tmp_path / "spec.json"))
    assert ArchSpec.load(str(tmp_path / "spec.json")) == spec
    # A second round trip is the identity on the text.
    assert ArchSpec.from_json(loaded.to_json()).to_json() == spec.to_json()


def test_every_block_type_and_attention_round_trips():
    for block_type in NON_SKIP_TYPES:
        for attention in ATTENTIONS:
            for expansion in (1.5, 2.25, 3.0, 4.0):
                block = BlockSpec(block_type, expansion, attention)
                assert BlockSpec.from_dict(json.loads(json.dumps(block.to_dict()))) == block


def test_minimal_json_uses_defaults():
    text = json.dumps({"name": "tiny", "stages": [{"width": 8, "blocks": [{}]}]})
    spec = ArchSpec.from_json(text)
    assert spec.stages[0].stride == 2
    assert spec.stages[0].blocks[0] == BlockSpec("3x3x3", 2.25, "none")
    assert (spec.input_frames, spec.input_size, spec.stem_width, spec.head_width, spec.head_hidden) == (
        16,
        224,
        24,
        432,
        2048,
    )
    assert spec.space == SPACE_NAME


def test_skip_block_with_non_default_fields_round_trips():
    spec = ArchSpec(
        name="skip_fields",
        stages=(StageSpec(width=8, blocks=(BlockSpec(), BlockSpec("skip", 3.0, "se"))),),
    )
    loaded = ArchSpec.from_json(spec.to_json())
    assert loaded == spec and hash(loaded) == hash(spec)
    assert BlockSpec("skip", 3.0, "se") == BlockSpec("skip")  # a skip's other fields carry no meaning


def test_replace_revalidates():
    spec = x3d_spec("S")
    assert spec.replace(input_frames=8).input_frames == 8
    with pytest.raises(SpecError, match="input_frames"):
        spec.replace(input_frames=0)


# --------------------------------------------------------------------------------------------
# Validation: a clear SpecError (a ValueError) naming the problem
# --------------------------------------------------------------------------------------------


def test_spec_error_is_a_value_error():
    assert issubclass(SpecError, ValueError)


@pytest.mark.parametrize(
    "kwargs,words",
    [
        (dict(type="4x4x4"), ["type", "4x4x4", "3x3x3"]),
        (dict(type="SKIP"), ["type", "SKIP"]),
        (dict(attention="cbam"), ["attention", "cbam"]),
        (dict(attention="SE"), ["attention"]),
        (dict(expansion=0), ["expansion"]),
        (dict(expansion=-2.25), ["expansion"]),
        (dict(expansion=float("nan")), ["expansion"]),
        (dict(expansion=float("inf")), ["expansion"]),
        (dict(expansion="2.25"), ["expansion"]),
        (dict(expansion=True), ["expansion"]),
    ],
)
def test_bad_block_fields(kwargs, words):
    with pytest.raises(SpecError) as err:
        BlockSpec(**kwargs)
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize(
    "kwargs,words",
    [
        (dict(width=0), ["width", "positive"]),
        (dict(width=-8), ["width"]),
        (dict(width=24.0), ["width"]),
        (dict(width=True), ["width"]),
        (dict(stride=0), ["stride"]),
        (dict(blocks=()), ["block"]),
        (dict(blocks=(BlockSpec("skip"), BlockSpec())), ["skip", "first"]),
        (dict(blocks=({"type": "3x3x3"},)), ["block 0", "BlockSpec"]),
    ],
)
def test_bad_stage_fields(kwargs, words):
    base = dict(width=24, blocks=(BlockSpec(),), stride=2)
    with pytest.raises(SpecError) as err:
        StageSpec(**{**base, **kwargs})
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize(
    "kwargs,words",
    [
        (dict(stages=()), ["stage"]),
        (dict(space="autox3d-v2"), ["space", "autox3d-v2", "autox3d-v1"]),
        (dict(name=""), ["name"]),
        (dict(input_frames=0), ["input_frames"]),
        (dict(input_size=-1), ["input_size"]),
        (dict(stem_width=0), ["stem_width"]),
        (dict(head_width=0), ["head_width"]),
        (dict(head_hidden=-1), ["head_hidden"]),
        (dict(stem_temporal_kernel=4), ["stem_temporal_kernel"]),
        (dict(stages=("stage",)), ["stage 0", "StageSpec"]),
    ],
)
def test_bad_spec_fields(kwargs, words):
    with pytest.raises(SpecError) as err:
        hand_made_spec().replace(**kwargs)
    for word in words:
        assert word in str(err.value)


def _set(data: dict, path: tuple, value) -> dict:
    data = copy.deepcopy(data)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


def _delete(data: dict, path: tuple) -> dict:
    data = copy.deepcopy(data)
    target = data
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return data


BAD_JSON_CASES = [
    # (name, data, words the message must contain)
    ("unknown block type", _set(good_dict(), ("stages", 1, "blocks", 0, "type"), "7x7x7"), ["stages[1]", "blocks[0]", "7x7x7"]),
    ("zero width", _set(good_dict(), ("stages", 2, "width"), 0), ["stages[2]", "width"]),
    ("negative width", _set(good_dict(), ("stages", 0, "width"), -16), ["stages[0]", "width"]),
    ("float width", _set(good_dict(), ("stages", 0, "width"), 16.5), ["stages[0]", "width"]),
    ("skip first", _set(good_dict(), ("stages", 1, "blocks", 0), {"type": "skip"}), ["stages[1]", "skip"]),
    ("bad attention", _set(good_dict(), ("stages", 0, "blocks", 2, "attention"), "eca"), ["blocks[2]", "attention", "eca"]),
    ("zero expansion", _set(good_dict(), ("stages", 0, "blocks", 0, "expansion"), 0), ["blocks[0]", "expansion"]),
    ("negative expansion", _set(good_dict(), ("stages", 1, "blocks", 3, "expansion"), -1.0), ["blocks[3]", "expansion"]),
    ("unknown spec field", _set(good_dict(), ("depth_factor",), 2.2), ["unknown", "depth_factor"]),
    ("unknown stage field", _set(good_dict(), ("stages", 0, "depth"), 3), ["stages[0]", "unknown", "depth"]),
    ("unknown block field", _set(good_dict(), ("stages", 0, "blocks", 0, "kernel"), [3, 3, 3]), ["blocks[0]", "unknown", "kernel"]),
    ("missing stages", _delete(good_dict(), ("stages",)), ["missing", "stages"]),
    ("missing name", _delete(good_dict(), ("name",)), ["missing", "name"]),
    ("missing stage width", _delete(good_dict(), ("stages", 1, "width")), ["stages[1]", "missing", "width"]),
    ("missing stage blocks", _delete(good_dict(), ("stages", 0, "blocks")), ["stages[0]", "missing", "blocks"]),
    ("empty stages", _set(good_dict(), ("stages",), []), ["stage"]),
    ("empty blocks", _set(good_dict(), ("stages", 0, "blocks"), []), ["stages[0]", "block"]),
    ("stages not a list", _set(good_dict(), ("stages",), {"width": 8}), ["stages", "list"]),
    ("blocks not a list", _set(good_dict(), ("stages", 0, "blocks"), "3x3x3"), ["blocks", "list"]),
    ("block not an object", _set(good_dict(), ("stages", 0, "blocks", 0), "3x3x3"), ["blocks[0]", "object"]),
    ("bad space", _set(good_dict(), ("space",), "x3d"), ["space", "x3d"]),
    ("string frames", _set(good_dict(), ("input_frames",), "16"), ["input_frames"]),
    ("null stride", _set(good_dict(), ("stages", 0, "stride"), None), ["stride"]),
]


@pytest.mark.parametrize("data,words", [pytest.param(d, w, id=n) for n, d, w in BAD_JSON_CASES])
def test_bad_json_fields(data, words):
    with pytest.raises(SpecError) as err:
        ArchSpec.from_json(json.dumps(data))
    message = str(err.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


@pytest.mark.parametrize("text", ["", "{", "[1, 2]", "null", '"spec"'])
def test_not_a_json_object(text):
    with pytest.raises(SpecError):
        ArchSpec.from_json(text)


def test_load_reports_bad_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_set(good_dict(), ("space",), "nope")))
    with pytest.raises(SpecError, match="space"):
        ArchSpec.load(str(path))


# --------------------------------------------------------------------------------------------
# round_width: X3D's rule, values computed by hand
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,expected",
    [
        # X3D stage widths: 12 * 2 -> 24, doubling.
        ((12, 2.0), 24),
        ((24, 2.0), 48),
        ((48, 2.0), 96),
        ((96, 2.0), 192),
        # XL, width factor 2.9: 34.8 -> int(38.8) = 38 -> 32 (32 >= 31.32, no bump).
        ((12, 2.9), 32),
        ((24, 2.9), 72),  # 69.6 -> int(73.6) = 73 -> 72
        ((48, 2.9), 136),  # 139.2 -> int(143.2) = 143 -> 136 (>= 125.3)
        ((96, 2.9), 280),  # 278.4 -> int(282.4) = 282 -> 280
        ((192, 2.9), 560),  # 556.8 -> int(560.8) = 560
        # SE widths (ratio 1/16 of the inner width).
        ((54, 0.0625), 8),  # 3.375 -> 0 -> min width 8
        ((108, 0.0625), 8),  # 6.75 -> int(10.75) = 10 -> 8
        ((216, 0.0625), 16),  # 13.5 -> int(17.5) = 17 -> 16
        ((432, 0.0625), 32),  # 27 -> int(31) = 31 -> 24 < 0.9 * 27 = 24.3 -> bump to 32
        # Plain rounding and the 10% rule.
        ((19,), 24),  # nearest multiple 16 < 17.1 -> 24
        ((20,), 24),  # int(24) = 24
        ((27,), 32),  # 24 < 24.3 -> 32
        ((99,), 96),  # 96 >= 89.1
        ((100,), 104),
        ((1,), 8),  # minimum
        ((12, 0.5), 8),  # 6 -> int(10) = 10 -> 8
        ((50, 1.0, 8, 16), 48),  # divisor 16: int(58) = 58 -> 48 >= 45
        ((7, 1.0, 4, 4), 8),  # divisor 4: int(9) = 9 -> 8
        ((2, 1.0, 4, 4), 4),  # min width 4
    ],
)
def test_round_width_by_hand(args, expected):
    assert round_width(*args) == expected
    assert isinstance(round_width(*args), int)


def test_round_width_matches_pytorchvideo():
    require("torch")
    utils = require("pytorchvideo.layers.utils")
    for width in range(1, 600, 3):
        for multiplier in (0.0625, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.25, 2.9):
            assert round_width(width, multiplier) == utils.round_width(width, multiplier), (width, multiplier)


# --------------------------------------------------------------------------------------------
# X3D specs (docs/ARCHITECTURE.md, section 4)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant,frames,crop,widths,depths,stem,head",
    [
        ("XS", 4, 160, (24, 48, 96, 192), (3, 5, 11, 7), 24, 432),
        ("S", 13, 160, (24, 48, 96, 192), (3, 5, 11, 7), 24, 432),
        ("M", 16, 224, (24, 48, 96, 192), (3, 5, 11, 7), 24, 432),
        ("L", 16, 312, (24, 48, 96, 192), (5, 10, 25, 15), 24, 432),
        ("XL", 16, 312, (32, 72, 136, 280), (5, 10, 25, 15), 32, 630),
    ],
)
def test_x3d_specs(variant, frames, crop, widths, depths, stem, head):
    spec = x3d_spec(variant)
    assert spec.name == f"x3d_{variant.lower()}"
    assert (spec.input_frames, spec.input_size) == (frames, crop)
    assert spec.widths == widths
    assert spec.depths == depths
    assert spec.stem_width == stem and spec.stem_temporal_kernel == 5
    assert spec.head_width == head and spec.head_hidden == 2048
    assert spec.space == SPACE_NAME
    for stage in spec.stages:
        assert stage.stride == 2
        for i, block in enumerate(stage.blocks):
            assert block.type == "3x3x3" and block.expansion == 2.25
            assert block.attention == ("se" if i % 2 == 0 else "none")
    v = X3D_VARIANTS[variant]
    assert [int(math.ceil(v.depth_factor * d)) for d in (1, 2, 5, 3)] == list(depths)
    assert x3d_spec(variant.lower()) == spec


def test_x3d_spec_unknown_variant():
    with pytest.raises(ValueError, match="XS"):
        x3d_spec("XXL")
