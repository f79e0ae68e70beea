"""Shared test setup.

`tests` is a package (tests/__init__.py) and pytest puts the repository root on ``sys.path``, so
test modules import their shared code as ``tests.helpers.<module>``; test modules never import
one another. Code run in a subprocess (``python -c "from tests.helpers.search import ..."``) needs
the repository root as its working directory or on ``PYTHONPATH``, as tests/helpers/cluster.py's
`run_workers` sets.

Helpers: tests/helpers/reference.py (the PyTorch reference models), checkpoints.py (reference
checkpoints), conv_reference.py (float64 convolution references, pairwise covering arrays),
autodiff.py (gradients on any backend), cluster.py (local multi-worker clusters), search.py and
train.py (tiny search / training problems and their subprocess bodies), videos.py (fixture videos).
"""

from __future__ import annotations

import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
    """The repository's root folder."""
    return REPO_ROOT
