"""The step-time benchmark runs and reports consistent figures (not a speed assertion)."""
from __future__ import annotations

import json

from benchmark.steptime import main


def test_reports_median_parts_and_epoch_estimate(tmp_path, capsys):
    rc = main(["--dataset", "synthetic", "--backbone", "vbpr", "--steps", "3", "--warmup", "1",
               "--batch-size", "4096", "--cache-dir", str(tmp_path), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["steps"] == 3 and out["backbone"] == "vbpr"
    assert out["forward_s"] > 0 and out["backward_step_s"] > 0
    assert out["step_s"] == out["forward_s"] + out["backward_step_s"]
    assert out["batches_per_epoch"] == 5  # 19,870 synthetic train pairs / 4096, rounded up
    assert abs(out["epoch_s_estimate"] - out["step_s"] * 5) < 1e-9


def test_errors_are_one_line_with_status_2(tmp_path, capsys):
    assert main(["--backbone", "nosuch", "--cache-dir", str(tmp_path)]) == 2
    assert "unknown backbone 'nosuch'" in capsys.readouterr().err
    assert main(["--backbone", "pop", "--cache-dir", str(tmp_path)]) == 2
    assert "nothing to train" in capsys.readouterr().err
