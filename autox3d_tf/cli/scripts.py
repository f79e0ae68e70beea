"""`autox3d search` / `train` / `evaluate` / `export`: thin wrappers over ``training/<name>.py``.

Every argument after the command is passed to the script's absl flags unchanged, e.g.
``autox3d search --data synthetic/annotations.csv --space tiny --epochs 4``; ``autox3d search
--helpfull`` lists them. The scripts live in the repository's ``training/`` folder (beside the
package in a source checkout, or under ``$AUTOX3D_TRAINING_DIR``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

ACCEPTS_EXTRA = True
SCRIPTS = ("search", "train", "evaluate", "export")


def training_dir() -> str:
    """Where the ``training/*.py`` scripts are."""
    env = os.environ.get("AUTOX3D_TRAINING_DIR")
    if env:
        return env
    return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "training")


def script_path(name: str) -> str:
    return os.path.join(training_dir(), f"{name}.py")


def add_arguments_for(name: str, parser: argparse.ArgumentParser) -> None:
    """No argparse options of our own: everything goes to the script's absl flags."""
    parser.epilog = (
        f"All options are the absl flags of training/{name}.py; run `autox3d {name} --helpfull` to list them."
    )
    parser.add_help = False


def _load(name: str):
    """The script's module, loaded once (absl flags may only be defined once per process)."""
    module_name = f"autox3d_training_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, script_path(name))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def run_for(name: str, args: argparse.Namespace) -> int:
    """Runs ``training/<name>.py``'s ``main`` with ``args.extra`` as its command line."""
    if name not in SCRIPTS or not os.path.exists(script_path(name)):
        print(
            f"autox3d {name}: not available yet (training/{name}.py is not part of this installation; "
            f"looked in {training_dir()}).",
            file=sys.stderr,
        )
        return 2
    from absl import app, flags

    module = _load(name)
    if not hasattr(module, "main"):
        print(f"autox3d {name}: training/{name}.py defines no main(argv).", file=sys.stderr)
        return 2
    extra = list(getattr(args, "extra", []))
    if any(a in ("--helpfull", "--helpshort", "--help") for a in extra):
        text = flags.FLAGS.module_help(module.__name__) or flags.FLAGS.get_help()
        print(f"autox3d {name}: {(module.__doc__ or '').strip()}\n\nflags:\n{text}")
        return 0
    argv = [f"autox3d {name}", *extra]
    try:
        argv = flags.FLAGS(argv)
    except flags.Error as err:
        print(f"autox3d {name}: {err}\nRun `autox3d {name} --helpfull` for the options.", file=sys.stderr)
        return 2
    try:
        return int(module.main(argv) or 0)
    except app.UsageError as err:
        print(f"autox3d {name}: {err}", file=sys.stderr)
        return 2
