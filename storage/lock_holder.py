"""Who holds a store file's lock, named as a person sees the process: ``otel-hms serve``.

DuckDB's lock error names the holder's executable and pid ("Conflicting lock is held in
/usr/bin/python3.11 (PID 4121)"): every otel-hms process is ``python3.11`` there.  The
holder's command line (``/proc/PID/cmdline``) says what it really is: ``otel-hms serve``
whether started by the console script or as ``python -m otel_hms``, else the command as it
was typed (``python3 nightly.py``).  Where /proc cannot tell (another OS, another pid
namespace, the process is gone), DuckDB's program name stands.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass

SERVE = "otel-hms serve"

_DUCKDB_HOLDER = re.compile(r"Conflicting lock is held in (?P<exe>.*?) \(PID (?P<pid>\d+)\)")
_OPTIONS_WITH_VALUE = frozenset({"-X", "-W", "-Q"})
_LONGEST = 80


@dataclass(frozen=True)
class LockHolder:
    """The process holding the lock: its pid and what it is (``otel-hms serve``, a command)."""

    pid: int
    command: str

    @property
    def is_serve(self) -> bool:
        return self.command == SERVE

    def __str__(self) -> str:
        if self.is_serve:
            return f"another {SERVE} (pid {self.pid})"
        return f"another process (pid {self.pid}, `{self.command}`)"


def lock_holder(duckdb_error: str) -> LockHolder | None:
    """The holder named in a DuckDB lock error, or None when the error names none."""
    held = _DUCKDB_HOLDER.search(duckdb_error)
    if held is None:
        return None
    pid = int(held["pid"])
    return LockHolder(pid, process_command(pid) or os.path.basename(held["exe"]))


def process_command(pid: int) -> str | None:
    """What process ``pid`` is, from its command line; None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    argv = [arg.decode(errors="replace") for arg in raw.rstrip(b"\0").split(b"\0")]
    return command_name(argv) if argv != [""] else None


def command_name(argv: list[str]) -> str:
    """``otel-hms SUBCOMMAND`` for an otel-hms process, else the command line, shortened."""
    program, args = os.path.basename(argv[0]), argv[1:]
    words = [program]
    if program.startswith("python"):
        target, args = _python_target(args)
        if target in (["-m", "otel_hms"], ["-m", "otel_hms.cli"]) or (
                len(target) == 1 and os.path.basename(target[0]) == "otel-hms"):
            program = "otel-hms"
        words += target
    if program == "otel-hms":
        return f"otel-hms {args[0]}" if args else "otel-hms"
    text = shlex.join(words + args)
    return text if len(text) <= _LONGEST else text[:_LONGEST - 1] + "…"


def _python_target(args: list[str]) -> tuple[list[str], list[str]]:
    """Split a Python command line's arguments (after the interpreter) into what it runs
    (``["-m", "module"]``, ``["-c", code]`` or ``[script]``) and that program's arguments."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-m", "-c"):
            return args[i:i + 2], args[i + 2:]
        if arg in _OPTIONS_WITH_VALUE:
            i += 2
        elif arg.startswith("-") and arg != "-":
            i += 1
        else:
            return [arg], args[i + 1:]
    return [], []
