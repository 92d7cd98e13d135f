"""The holder of a store file's lock is named as a person sees it, not as ``python3.11``."""

from __future__ import annotations

import os
import sys

import pytest

from otel_hms.storage.lock_holder import LockHolder, command_name, lock_holder, process_command


@pytest.mark.parametrize(("argv", "name"), [
    (["/srv/app/.venv/bin/python3", "/srv/app/.venv/bin/otel-hms", "serve", "--db", "m.duckdb"],
     "otel-hms serve"),
    (["/usr/bin/python3.11", "-P", "-X", "dev", "-m", "otel_hms", "serve"], "otel-hms serve"),
    (["python3", "-m", "otel_hms.cli", "export", "--db", "m.duckdb"], "otel-hms export"),
    (["/usr/local/bin/otel-hms", "serve"], "otel-hms serve"),
    (["python3", "-u", "nightly.py", "--since", "1d"], "python3 nightly.py --since 1d"),
    (["python3", "-c", "import time; time.sleep(60)"], "python3 -c 'import time; time.sleep(60)'"),
    (["/usr/bin/duckdb", "metrics.duckdb"], "duckdb metrics.duckdb"),
    (["python3", "report.py", "x" * 100], "python3 report.py " + "x" * 61 + "…"),
])
def test_command_names(argv: list[str], name: str) -> None:
    assert command_name(argv) == name


def test_duckdb_error_names_the_process() -> None:
    message = (f"IO Error: Could not set lock on file \"m.duckdb\": Conflicting lock is held in "
               f"/usr/bin/python3.11 (PID {os.getpid()}) by user root. See also ...")
    holder = lock_holder(message)
    assert holder is not None and holder.pid == os.getpid()
    assert holder.command == process_command(os.getpid())
    assert holder.command.startswith(os.path.basename(sys.executable))


def test_a_process_proc_cannot_describe_keeps_duckdbs_name() -> None:
    gone = 2**22 + 1  # above the kernel's pid_max: never a process
    message = f"Conflicting lock is held in /usr/bin/python3.11 (PID {gone}) by user root"
    assert lock_holder(message) == LockHolder(gone, "python3.11")
    assert lock_holder("IO Error: disk full") is None


def test_holders_read_as_a_phrase() -> None:
    assert str(LockHolder(4121, "otel-hms serve")) == "another otel-hms serve (pid 4121)"
    assert str(LockHolder(4121, "python3 nightly.py")) == (
        "another process (pid 4121, `python3 nightly.py`)")
