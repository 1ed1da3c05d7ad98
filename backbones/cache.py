"""On-disk cache for derived artefacts (kNN graphs, co-occurrence graphs).

Entries are .npz files named by a key that the caller derives from *all* inputs (data
fingerprint, feature contents, parameters); writes are atomic so a killed run never leaves a
half-written entry behind.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Optional

import numpy as np


def load_or_build(
    cache_dir: Optional[Path], kind: str, key: str, build: Callable[[], dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    if cache_dir is None:
        return build()
    path = Path(cache_dir) / kind / f"{key}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    arrays = build()
    save_npz_atomic(path, arrays)
    return arrays


def save_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
