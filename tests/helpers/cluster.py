"""Test helpers: a TF multi-worker cluster of local processes on loopback ports, and checks that
each worker's input pipeline decoded only its share of the videos."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository


def free_ports(n: int) -> list[int]:
    """``n`` currently free TCP ports on 127.0.0.1."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def run_workers(codes: list[str], timeout: float = 420) -> None:
    """Runs one ``python -c CODE`` process per worker from the repository root, all at once; asserts
    that every one exits 0 (showing its stderr's tail otherwise)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""}
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for code in codes]
    try:
        outputs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-4000:]


def record_decoded_videos() -> list[str]:
    """From now on, the path of every video file the data pipelines decode is appended to the list
    returned (a wrapper around the video-file pipeline's decoder)."""
    from autox3d_tf.data import video_pipeline

    decoded: list[str] = []
    decode = video_pipeline.decode_frames_for

    def recording(path, *args, **kwargs):
        decoded.append(str(path))
        return decode(path, *args, **kwargs)

    video_pipeline.decode_frames_for = recording
    return decoded


def worker_shares(annotations: str, workers: int, split: str | None = None) -> list[set[str]]:
    """The video files each input pipeline should decode: every ``workers``-th of the annotation
    file (of its ``split``)."""
    from autox3d_tf.data.annotations import load_annotations

    paths = [r.path for r in load_annotations(annotations, split=split).records]
    return [set(paths[i::workers]) for i in range(workers)]


def assert_decoded_own_share(decoded: list[list[str]], shares: list[set[str]], at_least: int) -> None:
    """Every worker decoded ``at_least`` clips, all from its own share (the shares are disjoint)."""
    assert len(decoded) == len(shares)
    for i, (paths, share) in enumerate(zip(decoded, shares)):
        assert len(paths) >= at_least, (i, paths)
        assert set(paths) <= share, f"worker {i} decoded videos outside its share: {sorted(set(paths) - share)}"
