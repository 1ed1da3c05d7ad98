"""benchmark.reproduce: profiles, and resuming a killed smoke run without repeating finished runs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmark.reproduce import NINE, PROFILES

REPO = Path(__file__).resolve().parents[1]


def test_profiles_are_data():
    assert set(PROFILES) == {"smoke", "default", "paper"}
    paper = PROFILES["paper"]
    assert paper.datasets == ("baby", "sports", "clothing") and paper.backbones == NINE
    assert (paper.trials, paper.seeds, paper.epochs, paper.patience) == (30, 5, 1000, 20)
    assert PROFILES["default"].backbones == NINE and PROFILES["default"].datasets == ("synthetic",)
    smoke = PROFILES["smoke"]
    assert smoke.trials == 1 and smoke.seeds == 1 and smoke.epochs == 2
    # final seeds never reuse the tuning seed: tuning runs and final runs are distinct records
    assert smoke.tuning_seed not in smoke.final_seeds(3) and len(set(smoke.final_seeds(3))) == 3
    with pytest.raises(Exception):
        paper.trials = 3  # frozen


def _records(results: Path) -> dict[str, tuple[float, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (results / "runs").glob("*/*/*.json")}


@pytest.mark.slow
def test_smoke_killed_then_resumed_repeats_nothing(tmp_path):
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "benchmark.reproduce", "--profile", "smoke", "--results", str(results),
           "--cache-dir", str(tmp_path / "cache"), "--device", "cpu", "--no-report"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not _records(results) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "the smoke run ended before it could be interrupted"
    proc.send_signal(signal.SIGKILL)  # no clean-up at all: a killed process
    proc.wait()
    first = _records(results)
    assert first

    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    after = _records(results)
    for name, (mtime, content) in first.items():
        assert after[name] == (mtime, content), f"{name} was rewritten"
    smoke = PROFILES["smoke"]
    cells = 2 * len(smoke.backbones)
    # per cell: the trials' runs (distinct configs, at most `trials`) plus one run per final seed
    assert len(after) == cells * (smoke.trials + smoke.seeds)
    summary = json.loads((results / "reproduce-smoke.json").read_text())
    assert [c["status"] for c in summary["cells"]] == ["ok"] * cells
    assert sum(c["trials_done"] for c in summary["cells"]) == cells * smoke.trials
    assert "vbpr" in done.stdout and "reused" in done.stdout

    # a third run finds everything done: nothing is trained again
    again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0 and _records(results) == after
    summary = json.loads((results / "reproduce-smoke.json").read_text())
    assert all(c["trials_ran"] == 0 and c["finals_new"] == 0 for c in summary["cells"])
