"""`autox3d`: one console script, one module per subcommand (``autox3d_tf/cli/<name>.py``).

Each subcommand module defines ``add_arguments(parser)`` and ``run(args) -> int`` and a module
docstring whose first line is the command's help. Modules are imported only when needed, so
``autox3d --help`` stays fast and TensorFlow loads only for commands that use it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from autox3d_tf.data.quiet_tf import import_tensorflow_quietly

# command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("info", "params, GMACs, input spec and a per-stage table of a model"),
    "bench": ("bench", "latency / throughput on this machine, optionally against pytorchvideo"),
    "convert": ("convert", "PyTorch checkpoint (pytorchvideo or PySlowFast) to Keras weights"),
    "predict": ("predict", "top-k Kinetics-400 labels for video files"),
    "stream": ("stream", "top-k labels of a video file, URL (RTSP / HTTP) or camera as it plays"),
    "make-synthetic": ("make_synthetic", "write the built-in synthetic motion dataset"),
    "to-tfrecord": ("to_tfrecord", "videos to sharded SequenceExample TFRecords"),
    "search": ("workflow", "architecture search: probabilistic (supernet) or --method entropy"),
    "search-entropy": ("workflow", "training-free entropy search (STEntr + evolution) under a MACs budget"),
    "train": ("workflow", "train or fine-tune a model on a video dataset"),
    "evaluate": ("workflow", "multi-view evaluation: top-1 / top-5, per-class accuracy, confusion matrix"),
    "export": ("workflow", "SavedModel (TF Serving) / TFLite export of a run or a zoo model"),
    "demo": ("demo", "the whole flow on the built-in synthetic dataset"),
}


def _load(module: str):
    try:
        return importlib.import_module(f"autox3d_tf.cli.{module}")
    except ModuleNotFoundError as err:
        if err.name == f"autox3d_tf.cli.{module}":
            return None
        raise


def _exit_on_sigterm() -> None:
    """``kill PID`` unwinds like Ctrl-C, so temporary files are removed on the way out."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _exit_on_sigterm()
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="autox3d", description="X3D / Auto-X3D video models for Keras.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    available = {}
    for name, (module, help_text) in COMMANDS.items():
        mod = _load(module) if (argv and argv[0] == name) else None
        p = sub.add_parser(name, help=help_text, description=help_text,
                           add_help=not getattr(mod, "ACCEPTS_EXTRA", False))
        if mod is not None:
            if hasattr(mod, "add_arguments_for"):
                mod.add_arguments_for(name, p)
            else:
                mod.add_arguments(p)
        available[name] = mod
    args, extra = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    mod = available[args.command]
    import_tensorflow_quietly()
    if mod is None:
        print(f"autox3d {args.command}: not available in this version.", file=sys.stderr)
        return 2
    if extra and not getattr(mod, "ACCEPTS_EXTRA", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(mod, "ACCEPTS_EXTRA", False):
        args.extra = extra
    from autox3d_tf.workflows.json_output import json_mode

    try:
        with json_mode(_wants_json(args, extra)):
            if hasattr(mod, "run_for"):
                return int(mod.run_for(args.command, args) or 0)
            return int(mod.run(args) or 0)
    except BrokenPipeError:  # `autox3d predict ... | head`: the reader is gone, nothing left to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _wants_json(args: argparse.Namespace, extra: list[str]) -> bool:
    """True for ``--json`` (argparse) or a workflow's absl ``--json`` / ``--json=true``."""
    if getattr(args, "json", False):
        return True
    flags = [a for a in extra if a == "--json" or a.startswith("--json=")]
    return bool(flags) and flags[-1].split("=", 1)[-1].lower() not in ("false", "0", "no")

if __name__ == "__main__":
    sys.exit(main())
