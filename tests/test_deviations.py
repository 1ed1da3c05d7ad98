"""REPRODUCE.md's deviation lists are generated from the backbone docstrings and must match."""
from __future__ import annotations

import pytest

from benchmark import deviations


def test_reproduce_md_is_in_step_with_the_docstrings():
    assert deviations.main(["--check"]) == 0, "run: python -m benchmark.deviations"


def test_every_model_backbone_documents_its_deviations():
    from backbones.base import registered

    missing = [n for n in registered() if n != "pop" and deviations.deviation_block(n) is None]
    assert missing == []


def test_block_has_summary_and_list():
    block = deviations.deviation_block("vbpr")
    assert block.startswith("#### vbpr\n\nVBPR (He & McAuley, AAAI 2016)")
    assert "\nDeviations from MMRec" in block


def test_check_fails_on_stale_file(tmp_path, capsys):
    stale = tmp_path / "R.md"
    stale.write_text(f"x\n{deviations.START}\nSTALE-LINE\n{deviations.END}\ny\n")
    assert deviations.main(["--check", "--file", str(stale)]) == 1
    assert deviations.main(["--file", str(stale)]) == 0
    text = stale.read_text()
    assert text.startswith("x\n") and text.endswith(f"{deviations.END}\ny\n") and "STALE-LINE" not in text
    assert deviations.main(["--check", "--file", str(stale)]) == 0


def test_missing_markers_are_an_error(tmp_path):
    f = tmp_path / "R.md"
    f.write_text("no markers\n")
    with pytest.raises(ValueError, match="deviations:start"):
        deviations.main(["--file", str(f)])
