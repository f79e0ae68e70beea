"""The decode-error log: what a data pipeline skipped (bad videos, records, shards) and why.

- :class:`DecodeErrorLog`: thread-safe list of ``(path, reason)`` per skipped element and of the
  videos whose annotated segment lay past their end; logs each one on the ``autox3d_tf.data``
  logger and summarises them. Every pipeline attaches one as ``dataset.error_log``.

Plain Python (no TensorFlow).
"""

from __future__ import annotations

import logging
import threading

__all__ = ["DecodeErrorLog"]

logger = logging.getLogger("autox3d_tf.data")


class DecodeErrorLog:
    """Thread-safe record of what a pipeline skipped during iteration.

    ``errors``: ``(path, reason)`` per skipped element (a video file, or for TFRecords a record or the
    unreadable rest of a shard, ``path`` being the shard); ``count``; ``paths`` (distinct files).
    ``segment_fallbacks``: ``(path, reason)`` per video whose annotated segment starts past its end,
    sampled whole instead (see :func:`~autox3d_tf.data.sampling.segment_frames`), recorded once each.
    ``kind`` (``"video"`` or ``"record"``) words the log lines and the summary.
    """

    def __init__(self, kind: str = "video") -> None:
        self._lock = threading.Lock()
        self.kind = kind
        self.errors: list[tuple[str, str]] = []
        self.segment_fallbacks: list[tuple[str, str]] = []
        self._fallback_paths: set[str] = set()

    def record(self, path: str, reason: str) -> None:
        with self._lock:
            self.errors.append((path, reason))
            n = len(self.errors)
        logger.warning("skipped bad %s (%d so far): %s", self.kind, n, reason)

    def record_segment_fallback(self, path: str, reason: str) -> None:
        """Notes (once per video) that its segment was past the end and the whole video was used."""
        with self._lock:
            if path in self._fallback_paths:
                return
            self._fallback_paths.add(path)
            self.segment_fallbacks.append((path, reason))
        logger.warning("annotated segment past the end of the video, sampling the whole video: %s", reason)

    @property
    def count(self) -> int:
        return len(self.errors)

    @property
    def paths(self) -> list[str]:
        """Distinct skipped files, in order of first failure."""
        return list(dict.fromkeys(p for p, _ in self.errors))

    def summary(self) -> str:
        """One line per distinct bad file, with the number of skips; then any segment fallbacks."""
        if not self.errors:
            lines = [f"no bad {self.kind}s"]
        else:
            counts: dict[str, int] = {}
            reasons: dict[str, str] = {}
            for p, r in self.errors:
                counts[p] = counts.get(p, 0) + 1
                reasons.setdefault(p, r)
            if self.kind == "video":
                lines = [f"{self.count} clips skipped from {len(counts)} bad videos:"]
            else:
                lines = [f"{self.count} bad {self.kind}s skipped in {len(counts)} files:"]
            lines += [f"  {reasons[p]} (x{counts[p]})" for p in counts]
        if self.segment_fallbacks:
            lines.append(f"{len(self.segment_fallbacks)} videos sampled whole (segment past their end):")
            lines += [f"  {r}" for _, r in self.segment_fallbacks]
        return "\n".join(lines)

    def reset(self) -> None:
        with self._lock:
            self.errors.clear()
            self.segment_fallbacks.clear()
            self._fallback_paths.clear()
