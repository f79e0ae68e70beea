"""to-tfrecord: SequenceExample layout, resumable shards, and the TFRecord pipelines. The videos are
fixtures the tests write (tests/helpers/videos.py), with the real clips' lengths and frame rates."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from autox3d_tf.cli.main import main
from autox3d_tf.data.tfrecord import convert_to_tfrecord
from autox3d_tf.data.tfrecord_format import IMAGE_KEY, LABEL_KEY, MEDIA_ID_KEY, parse_sequence_example, shard_paths
from autox3d_tf.data.tfrecord_pipeline import tfrecord_dataset, tfrecord_eval_dataset
from tests.helpers.videos import write_clips

ROWS = [("deadlifting", "video2"), ("high jump", "video1"), ("arm wrestling", "demo")]


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """Stand-ins for video2.mp4 (360 frames, 30 fps, portrait 144 x 256), video1.mp4 and demo.mp4."""
    folder = tmp_path_factory.mktemp("videos")
    write_clips(folder, [v for _, v in ROWS])
    return folder


def kinetics_csv(tmp_path, videos, extra_bad=False):
    """A Kinetics CSV over three clips (ids are the file names), plus a broken one if asked."""
    # time_end 12 reaches the end of every clip (the longest is 12 s): whole videos are stored.
    lines = ["label,youtube_id,time_start,time_end,split"] + [f"{l},{v},0,12,train" for l, v in ROWS]
    root = tmp_path / "videos"
    root.mkdir()
    for _, v in ROWS:
        os.symlink(videos / f"{v}.mp4", root / f"{v}.mp4")
    if extra_bad:
        (root / "broken.mp4").write_text("not a video")
        lines.append("high jump,broken,0,12,train")
    path = tmp_path / "train.csv"
    path.write_text("\n".join(lines) + "\n")
    return path, root


@pytest.fixture(scope="module")
def converted(tmp_path_factory, videos):
    tmp = tmp_path_factory.mktemp("tfr")
    csv_path, root = kinetics_csv(tmp, videos, extra_bad=True)
    prefix = tmp / "out" / "train"
    report = convert_to_tfrecord(csv_path, prefix, shards=2, fps=10, short_side=96, workers=1,
                                 progress=False, video_root=root)
    return tmp, csv_path, root, prefix, report


def test_conversion_writes_model_garden_layout(converted):
    tmp, _, _, prefix, report = converted
    assert report.written_shards == 2 and report.videos == 3
    assert len(report.errors) == 1 and "broken.mp4" in report.errors[0][0]
    examples = []
    for path in shard_paths(prefix, 2):
        for raw in tf.data.TFRecordDataset(path):
            ex = tf.train.SequenceExample.FromString(raw.numpy())
            examples.append(ex)
            parsed = parse_sequence_example(raw)
            assert parsed["jpegs"].shape[0] == len(ex.feature_lists.feature_list[IMAGE_KEY].feature)
    assert (IMAGE_KEY, LABEL_KEY, MEDIA_ID_KEY) == ("image/encoded", "clip/label/index", "clip/media_id")
    ids = sorted(e.context.feature["clip/media_id"].bytes_list.value[0].decode() for e in examples)
    assert ids == ["demo", "video1", "video2"]
    by_id = {e.context.feature["clip/media_id"].bytes_list.value[0].decode(): e for e in examples}
    ex = by_id["video2"]  # 360 frames at 30 fps, portrait 144x256
    assert ex.context.feature["clip/label/index"].int64_list.value[0] == 1  # sorted: arm wrestling, deadlifting, ...
    frames = ex.feature_lists.feature_list["image/encoded"].feature
    assert len(frames) == pytest.approx(120, abs=1)  # 12 s at 10 fps
    img = tf.io.decode_jpeg(frames[0].bytes_list.value[0]).numpy()
    assert img.shape == (170, 96, 3)  # short side 96, aspect kept (rounded to even)
    assert ex.context.feature["image/frame_rate"].float_list.value[0] == 10
    assert os.path.exists(f"{prefix}.classes.json") and os.path.exists(f"{prefix}.manifest.json")


def test_resume_redoes_only_incomplete_shards(converted):
    tmp, csv_path, root, prefix, _ = converted
    paths = shard_paths(prefix, 2)
    before = [os.stat(p).st_mtime_ns for p in paths]
    os.remove(paths[1])  # as if killed while writing shard 1 ...
    Path(paths[1] + ".tmp-999").write_bytes(b"partial")  # ... leaving a temporary behind
    report = convert_to_tfrecord(csv_path, prefix, shards=2, fps=10, short_side=96, workers=1,
                                 progress=False, video_root=root)
    assert report.skipped_shards == 1 and report.written_shards == 1
    assert os.stat(paths[0]).st_mtime_ns == before[0]  # the complete shard was kept
    assert not os.path.exists(paths[1] + ".tmp-999")
    ids = [parse_sequence_example(r)["video_id"].numpy() for r in tf.data.TFRecordDataset(paths)]
    assert sorted(ids) == [b"demo", b"video1", b"video2"]  # nothing lost, nothing duplicated


def test_tfrecord_training_and_eval_datasets(converted):
    _, _, _, prefix, _ = converted
    kw = dict(frames=4, rate=3, crop=64)
    ds = tfrecord_dataset(str(prefix), "X3D_XS", batch_size=3, seed=1, **kw)
    (x, y), = list(ds)
    assert x.shape == (3, 4, 64, 64, 3) and x.dtype == tf.float32
    assert sorted(y.numpy().tolist()) == [0, 1, 2]
    (x2, _), = list(tfrecord_dataset(str(prefix), "X3D_XS", batch_size=3, seed=1, **kw))
    np.testing.assert_array_equal(x.numpy(), x2.numpy())
    views = list(tfrecord_eval_dataset(str(prefix), "X3D_XS", num_clips=2, num_crops=3, batch_size=6,
                                       frames=4, rate=3, crop=64))
    assert len(views) == 3
    for clips, labels, vids in views:
        assert clips.shape == (6, 4, 64, 64, 3) and len(set(vids.numpy().tolist())) == 1


def test_cli_to_tfrecord(tmp_path, capsys, videos):
    csv_path, root = kinetics_csv(tmp_path, videos)
    prefix = tmp_path / "cli" / "k"
    rc = main(["to-tfrecord", str(csv_path), str(prefix), "--shards", "1", "--workers", "1", "--fps", "5",
               "--short-side", "64", "--video-root", str(root)])
    assert rc == 0
    out = capsys.readouterr()
    assert "wrote 3 videos into 1 shards" in out.out
    assert "[to-tfrecord] 3/3 videos" in out.err  # the progress line
    assert os.path.exists(shard_paths(prefix, 1)[0])
    missing = tmp_path / "missing.csv"
    missing.write_text("label,youtube_id,time_start,time_end,split\ndeadlifting,nothere,0,10,train\n")
    assert main(["to-tfrecord", str(missing), str(prefix), "--video-root", str(root)]) == 1
    assert "1 of 1 annotated videos are missing" in capsys.readouterr().err


# ------------------------------------------------------------------ bad records and damaged shards


def shard_records(prefix):
    """The serialized records of the converted shards, by video id."""
    out = {}
    for raw in tf.data.TFRecordDataset(shard_paths(prefix, 2)):
        out[parse_sequence_example(raw)["video_id"].numpy().decode()] = raw.numpy()
    return out


def write_records(path, records):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for r in records:
            writer.write(r)
    return str(path)


def with_bad_jpegs(raw):
    """The record with every JPEG frame replaced by bytes that start like a JPEG but are garbage."""
    ex = tf.train.SequenceExample.FromString(raw)
    for f in ex.feature_lists.feature_list["image/encoded"].feature:
        jpeg = f.bytes_list.value[0]
        f.bytes_list.value[0] = jpeg[:2] + bytes(len(jpeg) // 4)
    return ex.SerializeToString()


@pytest.fixture(scope="module")
def damaged(converted, tmp_path_factory):
    """Shards: a good record, an undecodable-JPEG record, a record that is no SequenceExample; a shard
    cut in the middle of its second record; and one with a byte of its second record flipped."""
    _, _, _, prefix, _ = converted
    recs = shard_records(prefix)
    tmp = tmp_path_factory.mktemp("damaged")
    a = write_records(tmp / "a.tfrecord", [recs["video2"], with_bad_jpegs(recs["demo"]), b"\x01\x02 not a proto"])
    full = Path(write_records(tmp / "full.tfrecord", [recs["video1"], recs["demo"]])).read_bytes()
    cut = tmp / "b.tfrecord"
    middle = len(recs["video1"]) + 16 + len(recs["demo"]) // 2
    cut.write_bytes(full[:middle])
    flipped = bytearray(full)
    flipped[middle] ^= 0xFF  # the data CRC of record 1 no longer matches
    crc = tmp / "c.tfrecord"
    crc.write_bytes(bytes(flipped))
    return a, str(cut), str(crc)


def test_bad_records_are_skipped_counted_and_reported(damaged, caplog):
    a, cut, crc = damaged
    kw = dict(frames=4, rate=3, crop=64)
    ds = tfrecord_dataset([a, cut, crc], "X3D_XS", batch_size=1, seed=0, shuffle=False, drop_remainder=False, **kw)
    with caplog.at_level("WARNING", logger="autox3d_tf.data"):
        labels = sorted(int(y[0]) for _, y in ds)
    assert labels == [1, 2, 2]  # video2 (deadlifting), video1 (high jump) x2: the good records
    log = ds.error_log
    assert log.count == 4 and sorted(log.paths) == sorted([a, cut, crc])
    reasons = "\n".join(r for _, r in log.errors)
    assert f"{a}: record 1 (video 'demo'): frame 0 of" in reasons  # the undecodable JPEG frames
    assert f"{a}: record 2: not a SequenceExample" in reasons
    assert f"{cut}: unreadable after record 0 (byte" in reasons and "truncated or corrupt" in reasons
    assert f"{crc}: unreadable after record 0 (byte" in reasons
    assert "4 bad records skipped in 3 files" in log.summary()
    assert sum("skipped bad record" in r.message for r in caplog.records) == 4
    # A second epoch meets them again, as the video path counts a bad video per clip.
    assert len(list(ds)) == 3 and log.count == 8

    views = tfrecord_eval_dataset([a, cut, crc], "X3D_XS", num_clips=1, num_crops=1, batch_size=1, **kw)
    ids = [v.numpy()[0] for _, _, v in views]
    assert sorted(ids) == [b"video1", b"video1", b"video2"] and views.error_log.count == 4


def test_bad_record_raises_when_asked(damaged):
    a, cut, _ = damaged
    kw = dict(frames=4, rate=3, crop=64)
    ds = tfrecord_dataset([a], "X3D_XS", batch_size=1, shuffle=False, seed=0, on_error="raise", **kw)  # in order
    with pytest.raises(tf.errors.OpError, match=r"a\.tfrecord: record 1 \(video 'demo'\)"):
        for _ in ds:
            pass
    ds = tfrecord_eval_dataset([cut], "X3D_XS", num_clips=1, num_crops=1, on_error="raise", **kw)
    with pytest.raises(tf.errors.OpError, match=r"b\.tfrecord: unreadable after record 0"):
        for _ in ds:
            pass


# --------------------------------------------------------------------------- input pipelines


def contexts(n):
    return [tf.distribute.InputContext(num_input_pipelines=n, input_pipeline_id=i, num_replicas_in_sync=n)
            for i in range(n)]


def test_input_pipelines_split_shards_or_records(converted, tmp_path):
    _, _, _, prefix, _ = converted
    kw = dict(frames=4, rate=3, crop=64, num_clips=1, num_crops=1, batch_size=1)
    by_file = [[v.numpy()[0] for _, _, v in tfrecord_eval_dataset(str(prefix), "X3D_XS", input_context=c, **kw)]
               for c in contexts(2)]
    # 2 shards for 2 pipelines: one shard each (shard k holds videos k, k+2, ... of the CSV).
    assert sorted(by_file[0]) == [b"demo", b"video2"] and by_file[1] == [b"video1"]
    one = write_records(tmp_path / "one.tfrecord", list(shard_records(prefix).values()))
    by_record = [[v.numpy()[0] for _, _, v in tfrecord_eval_dataset(one, "X3D_XS", input_context=c, **kw)]
                 for c in contexts(2)]
    assert len(by_record[0]) == 2 and len(by_record[1]) == 1  # 1 shard, 3 records: every other record
    assert sorted(by_record[0] + by_record[1]) == [b"demo", b"video1", b"video2"]  # exactly once together
    train = [sorted(int(y[0]) for _, y in tfrecord_dataset(one, "X3D_XS", batch_size=1, seed=0, drop_remainder=False,
                                                           input_context=c, frames=4, rate=3, crop=64))
             for c in contexts(2)]
    assert sorted(train[0] + train[1]) == [0, 1, 2] and len(train[0]) == 2
