"""Run records: the single source of truth for every table and figure.

One record per (dataset, backbone, arm, protocol, hyper-parameters, seed): a JSON file plus an
.npz of per-user metric vectors (for paired significance tests), both written atomically. A run
whose record exists is not run again.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np

SCHEMA = 1
PER_USER_METRICS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")


def stable_hash(obj: Any, n: int = 16) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def code_version() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=5)
        if rev.returncode != 0:
            raise OSError
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import PackageNotFoundError, version

        try:
            return "motor-bench " + version("motor-bench")
        except PackageNotFoundError:
            return "unknown"


def environment(device: str) -> dict:
    import torch

    env = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.machine(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "device": device,
        "threads": torch.get_num_threads(),
    }
    try:
        import faiss

        env["faiss"] = faiss.__version__
    except ImportError:  # pragma: no cover
        pass
    if device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name(0)
    return env


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    import resource

    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


class RunStore:
    """Records under ``root/runs/<dataset>/<backbone>/<key>.json`` (+ ``.npz``)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.runs = self.root / "runs"

    def path(self, dataset: str, backbone: str, key: str) -> Path:
        return self.runs / dataset / backbone / f"{key}.json"

    def find(self, dataset: str, backbone: str, key: str) -> Optional[dict]:
        p = self.path(dataset, backbone, key)
        if not p.exists():
            return None
        return json.loads(p.read_text())

    def write(self, record: dict, per_user: Optional[dict[str, np.ndarray]] = None) -> Path:
        p = self.path(record["dataset"]["name"], record["backbone"], record["key"])
        if per_user:
            import io

            buf = io.BytesIO()
            np.savez_compressed(buf, **per_user)
            atomic_write_bytes(p.with_suffix(".npz"), buf.getvalue())
        atomic_write_json(p, record)  # JSON last: its presence means the run is complete
        return p

    def per_user(self, record: dict) -> dict[str, np.ndarray]:
        p = self.path(record["dataset"]["name"], record["backbone"], record["key"]).with_suffix(".npz")
        if not p.exists():
            return {}
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    def records(self) -> Iterator[dict]:
        if not self.runs.exists():
            return
        for p in sorted(self.runs.glob("*/*/*.json")):
            try:
                yield json.loads(p.read_text())
            except json.JSONDecodeError:  # a foreign or damaged file: skip, do not crash tables
                print(f"warning: skipping unreadable record {p}", file=sys.stderr)
