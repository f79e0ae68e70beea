"""The command-line half of a workflow: its absl flags and the ``main(argv)`` that runs it.

Each workflow module (``train``, ``search``, ``evaluate``, ``export``, ``entropy_search``) keeps
its flags in a private :class:`FlagSet` (its own ``absl.flags.FlagValues``, so that importing
several workflows into one process defines nothing twice) and exposes ``main(argv) -> int``, which
``autox3d <command>`` and the ``training/<name>.py`` scripts call.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Sequence

from absl import app, flags

from autox3d_tf.workflows.json_output import json_mode

__all__ = ["FlagSet"]

HELP_FLAGS = ("--help", "-h", "--helpfull", "--helpshort")


class FlagSet:
    """A private ``FlagValues`` with short definers and the ``main`` that parses and runs it.

    Args:
        command: the name shown in messages, e.g. ``"autox3d train"``.
        doc: the text ``--help`` prints above the flags (the workflow module's docstring).
    """

    def __init__(self, command: str, doc: str | None):
        self.command = command
        self.doc = (doc or "").strip()
        self.values = flags.FlagValues()

    def __getattr__(self, name: str) -> Any:
        if name in ("command", "doc", "values") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.values, name)

    def string(self, name: str, default: str | None, help: str) -> None:
        flags.DEFINE_string(name, default, help, flag_values=self.values)

    def integer(self, name: str, default: int | None, help: str, lower_bound: int | None = None) -> None:
        flags.DEFINE_integer(name, default, help, lower_bound=lower_bound, flag_values=self.values)

    def float(self, name: str, default: float | None, help: str) -> None:
        flags.DEFINE_float(name, default, help, flag_values=self.values)

    def boolean(self, name: str, default: bool | None, help: str) -> None:
        flags.DEFINE_bool(name, default, help, flag_values=self.values)

    def enum(self, name: str, default: str | None, choices: Sequence[str], help: str) -> None:
        flags.DEFINE_enum(name, default, list(choices), help, flag_values=self.values)

    def list(self, name: str, default: list[str] | None, help: str) -> None:
        flags.DEFINE_list(name, default, help, flag_values=self.values)

    def alias(self, name: str, original: str) -> None:
        """``--name`` is another spelling of the flag ``--original``."""
        flags.DEFINE_alias(name, original, flag_values=self.values)

    def help_text(self) -> str:
        """The workflow's description and its flags, as ``--help`` prints them."""
        flags_help = self.values.get_help(include_special_flags=False).replace(f"{__name__}:\n", "")
        return f"{self.command}: {self.doc}\n\nflags:\n{flags_help}"

    def main(self, argv: Sequence[str] | None, run: Callable[[], int | None]) -> int:
        """Parses ``argv`` (``argv[0]`` is the program name) into the flags and calls ``run()``.

        With a ``--json`` flag set, ``run`` runs in :func:`~autox3d_tf.workflows.json_output.json_mode`.
        Returns the exit status: ``run``'s (0 for None); 0 after ``--help``; 2 with one line on
        stderr for an unknown or malformed flag, a positional argument, or bad input (a
        ``app.UsageError``, ``ValueError`` or missing file raised by ``run``).
        """
        argv = list(sys.argv if argv is None else argv)
        if any(a in HELP_FLAGS for a in argv[1:]):
            print(self.help_text())
            return 0
        self.values.unparse_flags()
        try:
            rest = self.values(argv)
        except flags.Error as err:
            print(f"{self.command}: {err}\nRun `{self.command} --help` for the options.", file=sys.stderr)
            return 2
        if len(rest) > 1:
            print(f"{self.command}: unexpected arguments: {rest[1:]}", file=sys.stderr)
            return 2
        try:
            # --json: whatever the workflow prints meanwhile (Keras' progress) goes to stderr, and
            # only print_json reaches stdout.
            with json_mode("json" in self.values and bool(self.values.json)):
                return int(run() or 0)
        except (app.UsageError, ValueError, FileNotFoundError) as err:
            print(f"{self.command}: {err}", file=sys.stderr)
            return 2
