"""Strict JSON on stdout for every ``--json`` command: the result alone, never a progress bar.

    with json_mode(True):          # everything printed meanwhile (Keras, get_file) goes to stderr
        ...
        print_json(summary)        # the one document on the real stdout

``dumps`` writes strict JSON (RFC 8259): NaN and infinities, which ``json.dumps`` writes as the
non-JSON tokens ``NaN`` / ``Infinity``, become ``null``; NumPy scalars and arrays become numbers and
lists.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from typing import Any, Iterator, TextIO

__all__ = ["strict", "dumps", "print_json", "json_mode"]

_RESULT: list[TextIO] = []  # the real stdout while json_mode is on (innermost last)


def strict(value: Any) -> Any:
    """``value`` with non-finite floats replaced by None and NumPy values made plain Python."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    if hasattr(value, "tolist") and type(value).__module__ == "numpy":
        return strict(value.tolist())
    return value


def dumps(value: Any, **kwargs) -> str:
    """``json.dumps`` that always gives strict JSON (see the module docstring)."""
    kwargs.setdefault("default", str)
    return json.dumps(strict(value), allow_nan=False, **kwargs)


def print_json(value: Any, indent: int | None = 1) -> None:
    """Prints ``value`` as strict JSON on the real stdout (even inside :func:`json_mode`)."""
    out = _RESULT[-1] if _RESULT else sys.stdout
    out.write(dumps(value, indent=indent) + "\n")
    out.flush()


@contextlib.contextmanager
def json_mode(enabled: bool = True) -> Iterator[None]:
    """While on, ``sys.stdout`` is stderr (progress bars, logs, prints) and only
    :func:`print_json` reaches the real stdout. Nested uses keep the outermost stdout."""
    if not enabled:
        yield
        return
    _RESULT.append(_RESULT[-1] if _RESULT else sys.stdout)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _RESULT.pop()
