"""The weights registry: manifest contents, cache, mirror, hashes, and errors, end to end offline."""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
import re

import numpy as np
import pytest

from autox3d_tf.weights import (
    NoPretrainedWeightsError,
    WeightsHashError,
    available_weights,
    get_weights_entry,
    list_weights,
    register_weights,
    unregister_weights,
)
from autox3d_tf.weights import registry
from autox3d_tf.zoo import X3D_XS
from tests.helpers.checkpoints import (
    keras_logits,
    random_clip,
    reference_logits,
    reference_model,
    relative_error,
    save_pytorchvideo_checkpoint,
)

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_manifest_lists_official_x3d_checkpoints():
    for variant in ("XS", "S", "M", "L"):
        entry = get_weights_entry(f"X3D_{variant}", "kinetics400")
        assert entry.url == f"https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/X3D_{variant}.pyth"
        assert entry.file_name == f"X3D_{variant}.pyth"
        # Unknown (null) where the file could not be downloaded to hash it, else a sha256 hex digest.
        assert entry.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", entry.sha256), entry.sha256
        assert entry.num_classes == 400 and entry.layout == "pytorchvideo"
        assert entry.keras_file.endswith(".weights.h5")
        assert entry.input["mean"] == [0.45] * 3 and entry.input["std"] == [0.225] * 3
        assert entry.provenance and entry.alternates[0]["layout"] == "pyslowfast"
    assert get_weights_entry("x3d-s", "kinetics400").model == "X3D_S"
    assert available_weights("X3D_XL") == []


def test_manifest_agrees_with_zoo_configs():
    from autox3d_tf.zoo import get_model_config

    for entry in list_weights():
        config = get_model_config(entry.model)
        assert entry.input["frames"] == config.frames and entry.input["sampling_rate"] == config.sampling_rate
        assert entry.input["train_crop"] == config.train_crop and entry.input["test_crop"] == config.test_crop


def test_top_level_manifest_is_the_packaged_one():
    top = REPO / "weights" / "manifest.json"
    assert json.loads(top.read_text()) == json.loads(registry.MANIFEST_PATH.read_text())
    assert (REPO / "weights" / "README.md").exists()


@pytest.mark.parametrize("model", ["X3D_XL", "AutoX3D_S"])
def test_model_without_weights_says_what_exists(model):
    with pytest.raises(NoPretrainedWeightsError, match=r"has no pretrained weights for 'kinetics400'.*X3D_XS: kinetics400"):
        get_weights_entry(model, "kinetics400")


def test_factory_errors_before_any_download(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOX3D_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AUTOX3D_WEIGHTS_MIRROR", str(tmp_path / "empty"))
    from autox3d_tf.zoo import X3D_XL

    with pytest.raises(NoPretrainedWeightsError, match="X3D_XL has no pretrained weights"):
        X3D_XL(weights="kinetics400")
    with pytest.raises(NoPretrainedWeightsError, match="'imagenet'"):
        X3D_XS(weights="imagenet")
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").rglob("*.pyth"))


def test_mirror_url_forms(monkeypatch, tmp_path):
    entry = get_weights_entry("X3D_S", "kinetics400")
    monkeypatch.delenv("AUTOX3D_WEIGHTS_MIRROR", raising=False)
    assert registry.source_url(entry) == entry.url
    monkeypatch.setenv("AUTOX3D_WEIGHTS_MIRROR", "https://mirror.example/x3d/")
    assert registry.source_url(entry) == "https://mirror.example/x3d/X3D_S.pyth"
    monkeypatch.setenv("AUTOX3D_WEIGHTS_MIRROR", str(tmp_path))
    assert registry.source_url(entry) == tmp_path.resolve().as_uri() + "/X3D_S.pyth"
    monkeypatch.delenv("AUTOX3D_HOME", raising=False)
    assert registry.cache_dir() == pathlib.Path.home() / ".keras" / "autox3d"


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """An offline mirror holding a pytorchvideo-layout X3D_XS.pyth (random weights)."""
    folder = tmp_path_factory.mktemp("mirror")
    ref = reference_model("XS", seed=31)
    save_pytorchvideo_checkpoint(ref, folder / "X3D_XS.pyth")
    clip = random_clip("XS", seed=6)
    return {"dir": folder, "clip": clip, "logits": reference_logits(ref, clip)}


def test_kinetics400_end_to_end_offline(mirror, monkeypatch, tmp_path):
    home = tmp_path / "home"
    monkeypatch.setenv("AUTOX3D_HOME", str(home))
    monkeypatch.setenv("AUTOX3D_WEIGHTS_MIRROR", mirror["dir"].as_uri())  # file:// base URL

    model = X3D_XS(weights="kinetics400", classifier_activation=None)
    assert relative_error(mirror["logits"], keras_logits(model, mirror["clip"])) < 1e-4
    cached = home / "weights" / "x3d_xs_kinetics400.weights.h5"
    assert cached.exists() and (home / "checkpoints" / "X3D_XS.pyth").exists()
    assert not [p for p in home.rglob("*") if p.name.startswith(".")], "no temporary files left"

    # Converted once: later calls use the cache, even with the mirror gone.
    stamp = cached.stat().st_mtime_ns
    monkeypatch.setenv("AUTOX3D_WEIGHTS_MIRROR", str(tmp_path / "gone"))
    headless = X3D_XS(weights="kinetics400", include_top=False, pooling="avg")
    assert cached.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(
        headless.get_layer("head_bn").get_weights()[2], model.get_layer("head_bn").get_weights()[2]
    )
    probs = X3D_XS(weights="kinetics400", input_shape=(4, 182, 182, 3))(
        np.transpose(random_clip("XS", seed=1, crop=182), (0, 2, 3, 4, 1))
    )
    assert probs.shape == (1, 400) and abs(float(np.sum(probs)) - 1.0) < 1e-4


def test_hash_mismatch_leaves_nothing_in_cache(mirror, monkeypatch, tmp_path):
    home = tmp_path / "home"
    monkeypatch.setenv("AUTOX3D_HOME", str(home))
    monkeypatch.delenv("AUTOX3D_WEIGHTS_MIRROR", raising=False)
    base = get_weights_entry("X3D_XS", "kinetics400")
    source = (mirror["dir"] / "X3D_XS.pyth").as_uri()
    good = registry.sha256_file(mirror["dir"] / "X3D_XS.pyth")
    bad_entry = dataclasses.replace(base, dataset="testset", url=source, sha256="0" * 64, keras_file="t.weights.h5")
    register_weights(bad_entry)
    try:
        with pytest.raises(WeightsHashError, match="sha256 mismatch.*expected 0000"):
            X3D_XS(weights="testset")
        files = [p for p in home.rglob("*") if p.is_file()]
        assert files == [], files
        # With the right hash it verifies and loads.
        register_weights(dataclasses.replace(bad_entry, sha256=good))
        model = X3D_XS(weights="testset", classifier_activation=None)
        assert relative_error(mirror["logits"], keras_logits(model, mirror["clip"])) < 1e-4
        assert (home / "checkpoints" / "X3D_XS.pyth").exists()
    finally:
        unregister_weights("X3D_XS", "testset")


def test_unpinned_checkpoint_is_fetched_reported_and_reused(mirror, monkeypatch, tmp_path, caplog):
    """An entry without a sha256 (as the official X3D entries are): the download is not verified but
    its sha256 is logged (so it can be pinned), it lands in the cache under its file name, byte for
    byte, and later fetches reuse it without the source."""
    home = tmp_path / "home"
    monkeypatch.setenv("AUTOX3D_HOME", str(home))
    monkeypatch.delenv("AUTOX3D_WEIGHTS_MIRROR", raising=False)
    source = mirror["dir"] / "X3D_XS.pyth"
    entry = dataclasses.replace(get_weights_entry("X3D_XS", "kinetics400"), dataset="testset", url=source.as_uri(),
                                sha256=None, keras_file="t.weights.h5")
    with caplog.at_level(logging.WARNING, logger=registry.logger.name):
        path = registry.fetch_checkpoint(entry)
    assert path == home / "checkpoints" / "X3D_XS.pyth"
    assert path.read_bytes() == source.read_bytes()
    assert registry.sha256_file(source) in caplog.text and "not verified" in caplog.text
    assert [p.name for p in (home / "checkpoints").iterdir()] == ["X3D_XS.pyth"]  # no partial files
    stamp = path.stat().st_mtime_ns
    gone = dataclasses.replace(entry, url=(tmp_path / "gone" / "X3D_XS.pyth").as_uri())
    assert registry.fetch_checkpoint(gone) == path and path.stat().st_mtime_ns == stamp


def test_corrupted_cached_checkpoint_is_fetched_again_when_pinned(mirror, monkeypatch, tmp_path):
    """A cached checkpoint that no longer matches the registered sha256 is replaced by a fresh,
    verified download; without a reachable source the error leaves no corrupted file behind."""
    home = tmp_path / "home"
    monkeypatch.setenv("AUTOX3D_HOME", str(home))
    monkeypatch.delenv("AUTOX3D_WEIGHTS_MIRROR", raising=False)
    source = mirror["dir"] / "X3D_XS.pyth"
    entry = dataclasses.replace(get_weights_entry("X3D_XS", "kinetics400"), dataset="testset", url=source.as_uri(),
                                sha256=registry.sha256_file(source).upper(), keras_file="t.weights.h5")
    cached = home / "checkpoints" / "X3D_XS.pyth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(source.read_bytes()[:-10] + b"corrupted!")
    assert registry.fetch_checkpoint(entry) == cached
    assert cached.read_bytes() == source.read_bytes()

    cached.write_bytes(b"corrupted")
    with pytest.raises(RuntimeError, match="Could not download"):
        registry.fetch_checkpoint(dataclasses.replace(entry, url=(tmp_path / "gone.pyth").as_uri()))
    assert [p for p in home.rglob("*") if p.is_file()] == []


def test_download_failure_names_url_and_mirror_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOX3D_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AUTOX3D_WEIGHTS_MIRROR", (tmp_path / "empty").as_uri())
    with pytest.raises(RuntimeError, match=r"Could not download .*X3D_S\.pyth.*AUTOX3D_WEIGHTS_MIRROR"):
        registry.get_weights_file("X3D_S", "kinetics400")
    assert [p for p in (tmp_path / "home").rglob("*") if p.is_file()] == []


def test_validate_weights_argument_needs_no_model(tmp_path):
    from autox3d_tf.weights import validate_weights_argument

    assert validate_weights_argument("X3D_S", None) is None
    assert validate_weights_argument("X3D_S", "kinetics400") == "kinetics400"
    existing = tmp_path / "w.weights.h5"
    existing.write_bytes(b"")
    assert validate_weights_argument("X3D_S", str(existing)) == "path"
    with pytest.raises(NoPretrainedWeightsError, match="AutoX3D_M has no pretrained weights"):
        validate_weights_argument("AutoX3D_M", "kinetics400")
    with pytest.raises(ValueError, match="does not exist"):
        validate_weights_argument("X3D_S", str(tmp_path / "nope.pyth"))
    with pytest.raises(ValueError, match="must be None"):
        validate_weights_argument("X3D_S", 3)
