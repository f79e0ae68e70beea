"""`autox3d train` / `search` / `search-entropy` / `evaluate` / `export`: the package's workflows.

Every argument after the command goes to the workflow's absl flags unchanged, e.g.
``autox3d search --data synthetic/annotations.csv --space tiny --epochs 4``; ``autox3d search
--help`` lists them. The workflows are ``autox3d_tf/workflows/<module>.py``.
"""

from __future__ import annotations

import argparse
import importlib

ACCEPTS_EXTRA = True
WORKFLOWS = {
    "train": "train",
    "search": "search",
    "search-entropy": "entropy_search",
    "evaluate": "evaluate",
    "export": "export",
}


def add_arguments_for(name: str, parser: argparse.ArgumentParser) -> None:
    """No argparse options of our own: everything goes to the workflow's absl flags."""
    parser.epilog = f"All options are the flags of autox3d_tf.workflows.{WORKFLOWS[name]}; `autox3d {name} --help` lists them."


def run_for(name: str, args: argparse.Namespace) -> int:
    """Runs the workflow's ``main`` with ``args.extra`` as its command line."""
    module = importlib.import_module(f"autox3d_tf.workflows.{WORKFLOWS[name]}")
    return int(module.main([f"autox3d {name}", *getattr(args, "extra", [])]) or 0)
