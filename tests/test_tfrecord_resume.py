"""to-tfrecord resumes only what it can resume (issue 15, items 7 and 8): other annotations, other
settings or another shard count are refused (or replaced with --overwrite), never mixed; the
manifest keeps every shard's skipped videos across a kill and a resume; a failed run leaves no
class map behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autox3d_tf.data.annotations import MissingVideosError
from autox3d_tf.data.tfrecord import convert_to_tfrecord
from autox3d_tf.data.tfrecord_format import shard_paths
from tests.helpers.videos import write_video

LABELS = ["clap", "wave", "jump", "clap", "wave", "jump"]


def dataset(folder: Path, labels=LABELS, bad: tuple[int, ...] = (), frames: int = 12) -> Path:
    """Small videos and a Kinetics CSV over them (rows in ``bad`` point at a broken file)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["label,youtube_id,time_start,time_end,split"]
    for i, label in enumerate(labels):
        path = folder / f"v{i}.mp4"
        if i in bad:
            path.write_text("not a video")
        elif not path.exists():
            write_video(path, frames=frames, size=(32, 24), fps=12, seed=i)
        lines.append(f"{label},v{i},0,100,train")
    csv = folder / "train.csv"
    csv.write_text("\n".join(lines) + "\n")
    return csv


def convert(csv: Path, prefix: Path, **kw):
    kw.setdefault("shards", 2)
    return convert_to_tfrecord(csv, prefix, workers=1, progress=False, **kw)


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resume")
    csv = dataset(tmp / "data")
    prefix = tmp / "out" / "train"
    convert(csv, prefix)
    return tmp, csv, prefix


def test_same_inputs_resume(done):
    _, csv, prefix = done
    report = convert(csv, prefix)
    assert report.skipped_shards == 2 and report.written_shards == 0


def test_other_annotations_are_refused(done):
    tmp, csv, prefix = done
    other = dataset(tmp / "data2", labels=["run"] * 6)
    before = {p: os.stat(p).st_mtime_ns for p in shard_paths(prefix, 2)}
    classes = Path(f"{prefix}.classes.json").read_text()
    with pytest.raises(ValueError, match="other inputs or settings.*--overwrite"):
        convert(other, prefix)
    assert {p: os.stat(p).st_mtime_ns for p in shard_paths(prefix, 2)} == before
    assert Path(f"{prefix}.classes.json").read_text() == classes  # the class map still fits the shards


@pytest.mark.parametrize("setting", [{"fps": 6}, {"short_side": 16}, {"quality": 50}])
def test_other_settings_are_refused_naming_them(done, setting):
    _, csv, prefix = done
    (name, value), = setting.items()
    with pytest.raises(ValueError, match=f"{name} None -> {value}|{name} 90 -> {value}"):
        convert(csv, prefix, **setting)


def test_another_shard_count_is_refused_not_mixed(done):
    _, csv, prefix = done
    with pytest.raises(ValueError, match="another shard count.*--overwrite"):
        convert(csv, prefix, shards=3)
    assert not any("of-00003" in p.name for p in prefix.parent.iterdir())


def test_shards_without_a_record_are_refused(tmp_path):
    csv = dataset(tmp_path / "data")
    prefix = tmp_path / "out" / "x"
    prefix.parent.mkdir()
    for p in shard_paths(prefix, 2):  # as an older version (or a hand copy) leaves them
        Path(p).write_bytes(b"")
    with pytest.raises(ValueError, match="without a record of their inputs"):
        convert(csv, prefix)


def test_overwrite_replaces_every_shard_set(done):
    tmp, csv, prefix = done
    other = dataset(tmp / "data3", labels=["run", "sit", "run"])
    report = convert(other, prefix, shards=3, overwrite=True)
    assert report.written_shards == 3
    names = sorted(p.name for p in prefix.parent.iterdir() if p.suffix == ".tfrecord")
    assert names == [os.path.basename(p) for p in shard_paths(prefix, 3)]
    assert json.loads(Path(f"{prefix}.classes.json").read_text())["classes"] == ["run", "sit"]
    manifest = json.loads(Path(f"{prefix}.manifest.json").read_text())
    assert manifest["complete"] and manifest["settings"]["num_shards"] == 3


def test_failed_conversion_leaves_no_class_map(tmp_path):
    csv = dataset(tmp_path / "data")
    with open(csv, "a") as f:
        f.write("clap,missing_video,0,10,train\n")
    with pytest.raises(MissingVideosError):
        convert(csv, tmp_path / "out" / "t")
    assert not (tmp_path / "data" / "classes.json").exists()
    assert not (tmp_path / "out" / "t.classes.json").exists()
    # The annotations are fixed (with a new class): the next run is not broken by a stale map.
    dataset(tmp_path / "data", labels=LABELS + ["new class"])
    report = convert(tmp_path / "data" / "train.csv", tmp_path / "out" / "t")
    assert report.videos == 7
    assert json.loads((tmp_path / "data" / "classes.json").read_text())["classes"] == [
        "clap", "jump", "new class", "wave"]


@pytest.mark.slow
def test_killed_run_resumed_keeps_every_shards_skipped_videos(tmp_path):
    """Shard 0 (even rows) holds a broken video and finishes; the run is killed inside shard 1 (odd
    rows, long videos, another broken one). The resume redoes shard 1 only; the manifest lists both
    broken videos."""
    labels = ["a", "b"] * 8
    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(len(labels)):
        if i % 2:
            write_video(folder / f"v{i}.mp4", frames=240, size=(64, 48), fps=12, seed=i)
    csv = dataset(folder, labels=labels, bad=(2, 5), frames=6)
    prefix = tmp_path / "out" / "k"
    cmd = [sys.executable, "-m", "autox3d_tf.cli.main", "to-tfrecord", str(csv), str(prefix), "--shards", "2",
           "--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = Path(f"{prefix}.manifest.json")
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if manifest.exists() and "k-00000-of-00002.tfrecord" in json.loads(manifest.read_text() or "{}").get(
                    "shards", {}):
                break
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    paths = shard_paths(prefix, 2)
    assert os.path.exists(paths[0])
    if os.path.exists(paths[1]):
        pytest.skip("shard 1 finished before the kill: nothing to resume on this machine")
    report = convert(csv, prefix)
    assert report.skipped_shards == 1 and report.written_shards == 1
    errors = json.loads(manifest.read_text())["errors"]
    assert sorted(os.path.basename(p) for p, _ in errors) == ["v2.mp4", "v5.mp4"]
