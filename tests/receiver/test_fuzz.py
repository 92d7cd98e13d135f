"""The OTLP decoders under a coverage-guided fuzzer (atheris), for a bounded time per run.

Each target of ``fuzz_otlp.py`` (beside this file) first replays its kept corpus
(``fuzz_corpus/``: hand-made seeds and what earlier fuzzing found, among them every input
that once broke a decoder), then mutates it for a few seconds.  A failure names the input
that broke the target; ``python fuzz_otlp.py TARGET FILE`` replays it.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
CORPUS = HERE / "fuzz_corpus"
# Seconds of fuzzing per target, about a minute in all.
BUDGET = {"protobuf": 25, "json": 25, "encoded": 10}


@pytest.mark.parametrize("target", sorted(BUDGET))
def test_fuzz_target(target: str, tmp_path: Path) -> None:
    seeds = CORPUS / target
    assert any(seeds.iterdir()), f"no corpus in {seeds}"
    found = tmp_path / "found"  # new inputs go here, so the kept corpus stays as it is
    found.mkdir()
    options = [f"-max_total_time={BUDGET[target]}", "-timeout=10", "-rss_limit_mb=2048",
               "-print_final_stats=1", f"-artifact_prefix={tmp_path}/"]
    dictionary = CORPUS / f"{target}.dict"
    if dictionary.exists():
        options.append(f"-dict={dictionary}")
    run = subprocess.run([sys.executable, str(HERE / "fuzz_otlp.py"), target, *options,
                          str(found), str(seeds)], capture_output=True, text=True,
                         timeout=BUDGET[target] + 120)
    broke = sorted(tmp_path.glob("crash-*")) + sorted(tmp_path.glob("timeout-*")) + sorted(
        tmp_path.glob("oom-*"))
    detail = "".join(f"\n{p.name}: {base64.b64encode(p.read_bytes()).decode()}" for p in broke)
    tail = "\n".join([line for line in run.stderr.splitlines()
                      if not line.startswith("INFO: Instrumenting")][-40:])
    assert run.returncode == 0 and not broke, f"{target} broke:{detail}\n{tail}"
    runs = [line for line in run.stderr.splitlines() if line.startswith("Done ")]
    assert runs and int(runs[-1].split()[1]) > 1000, tail
