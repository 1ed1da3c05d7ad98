"""Shared fixtures."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def real_data_root() -> Path:
    """The real Amazon datasets: $MOTOR_BENCH_DATA, else ../shared/datasets; skips when absent."""
    root = Path(os.environ.get("MOTOR_BENCH_DATA") or REPO_ROOT.parent / "shared" / "datasets")
    if not root.is_dir():
        pytest.skip(f"real datasets not found at {root} (set MOTOR_BENCH_DATA)")
    return root
