"""The README's quick start, run exactly as written, where it says to run it.

The command is read from README.md and run by ``sh`` in the root of a fresh copy of the
repository's files (what a clone holds, the checkout's ``./otel_hms/`` included), so the venv,
the non-editable ``pip install .`` and ``otel-hms serve`` are the user's own; only the ports
move, through the ``OTEL_HMS_*`` variables, so the command itself stays unchanged.  Then the
README's Python example sends through the stock SDK exporter and every ``otel-hms sql``
transcript after it must print exactly what the README shows.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from conftest import ROOT, free_port, wait_until

README = (ROOT / "README.md").read_text()
INSTALL_SECONDS = 600  # a fresh venv and every dependency (from pip's cache when it has them)


def readme_block(after: str, language: str) -> str:
    """The first ```language block after the text ``after`` in the README."""
    found = re.compile(rf"```{language}\n(.*?)```", re.S).search(README, README.index(after))
    assert found is not None, f"no {language} block after {after!r} in README.md"
    return found.group(1)


QUICK_START = readme_block("## Quick start", "sh").strip()
TEST_COMMAND = readme_block("run the whole test suite", "sh").strip()
EXAMPLE = readme_block("### A service pushes, you ask", "python")
TRANSCRIPT = readme_block("### A service pushes, you ask", "text")


def copy_of_the_repository(to: Path) -> Path:
    """The files a clone holds (tracked, as they are in the working tree), and nothing else:
    no .venv, no store file, no build output."""
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (to / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, to / name)
    return to


def transcript_commands(text: str) -> Iterator[tuple[list[str], str]]:
    """Each ``$ command`` of a README transcript, with the output shown under it."""
    for chunk in re.split(r"^\$ ", text, flags=re.M)[1:]:
        command, _, output = chunk.partition("\n")
        yield shlex.split(command), output


def answers(api: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{api}/readyz", timeout=2) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def stop(started: subprocess.Popen[bytes], log_path: Path) -> None:
    """SIGTERM to sh and the server (as Ctrl-C reaches both), then up to 30 s for a clean
    stop; SIGKILL to whatever of the group is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(started.pid, signal.SIGTERM)

    def settled() -> bool:
        log = log_path.read_text()
        return started.poll() is not None and (
            "INFO otel_hms: ready:" not in log or "stopped; store closed cleanly" in log)

    deadline = time.monotonic() + 30
    while not settled() and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(started.pid, signal.SIGKILL)
    started.wait(30)


def test_readme_quick_start_as_written_stores_and_answers(tmp_path: Path) -> None:
    clone = copy_of_the_repository(tmp_path / "otel-hms")
    assert (clone / "otel_hms" / "__init__.py").is_file()  # what could hide the package
    grpc, http, api = (f"127.0.0.1:{free_port()}" for _ in range(3))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OTEL_HMS_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(OTEL_HMS_OTLP_GRPC=grpc, OTEL_HMS_OTLP_HTTP=http, OTEL_HMS_API=api)
    log_path = tmp_path / "quick-start.log"
    with open(log_path, "wb") as log:
        started = subprocess.Popen(["sh", "-c", QUICK_START], cwd=clone, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def up() -> bool:
            assert started.poll() is None, f"the quick start exited:\n{log_path.read_text()}"
            return answers(api)

        wait_until(up, INSTALL_SECONDS, interval=0.5, message="the quick start's server")
        installed = list((clone / ".venv" / "lib").glob("python3*/site-packages/otel_hms"))
        assert len(installed) == 1 and (installed[0] / "receiver" / "decode_worker.py").is_file()

        example = EXAMPLE.replace('endpoint="127.0.0.1:4317"', f'endpoint="{grpc}"')
        assert example != EXAMPLE
        subprocess.run([str(clone / ".venv" / "bin" / "python"), "-c", example], cwd=tmp_path,
                       env=env, check=True, timeout=120)
        shown = list(transcript_commands(TRANSCRIPT))
        assert [argv[:2] for argv, _ in shown] == [["otel-hms", "sql"]] * 2
        for argv, output in shown:
            printed = subprocess.run([str(clone / ".venv" / "bin" / "otel-hms"), *argv[1:]],
                                     env=env, capture_output=True, text=True, timeout=60)
            assert (printed.returncode, printed.stdout, printed.stderr) == (0, output, "")
    finally:
        stop(started, log_path)
    log = log_path.read_text()
    assert "stopped; store closed cleanly" in log, log
    assert "decode worker" not in log, log  # no worker ever died
    assert (clone / "otel-hms.duckdb").is_file()

def test_ci_runs_the_readme_test_command() -> None:
    assert TEST_COMMAND == "bash scripts/test"
    assert TEST_COMMAND in (ROOT / ".ci" / "run").read_text().splitlines()
