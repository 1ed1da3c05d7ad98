"""The cold-start protocol: can a model recommend items it never saw in training?

A seeded fraction of items (default 20%) is held out of training entirely: their train
interactions are removed, they are never sampled as negatives, and MOTOR's PQ codebooks are fit
on the warm items only (the cold items are still encoded, since their content is known). Early
stopping uses the cold items' valid interactions and the reported metrics use the cold items'
test interactions; by default only cold items are ranked (``candidates="cold"``), the usual
cold-start setting; ``candidates="all"`` ranks every item.

The split seed is separate from the run seed so that every run seed sees the same cold items.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sp

from benchmark.dataset import Dataset


@dataclass(frozen=True)
class ColdStart:
    fraction: float = 0.2
    split_seed: int = 2024
    candidates: str = "cold"

    def __post_init__(self):
        if not 0.0 < self.fraction < 1.0:
            raise ValueError(f"cold-start fraction must be in (0, 1), got {self.fraction}")
        if self.candidates not in ("cold", "all"):
            raise ValueError(f"candidates must be 'cold' or 'all', got {self.candidates!r}")


def choose_cold_items(n_items: int, fraction: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n_cold = max(1, int(round(fraction * n_items)))
    return np.sort(rng.choice(n_items, size=n_cold, replace=False))


def _columns(m: sp.csr_matrix, keep: np.ndarray) -> sp.csr_matrix:
    """m with only the columns flagged in the boolean ``keep`` retained (shape unchanged)."""
    m = sp.csr_matrix(m, copy=True)
    m.data = m.data * keep[m.indices]
    m.eliminate_zeros()
    return m


def split_cold(dataset: Dataset, cfg: ColdStart) -> tuple[Dataset, dict, np.ndarray, dict]:
    cold = choose_cold_items(dataset.n_items, cfg.fraction, cfg.split_seed)
    is_cold = np.zeros(dataset.n_items, dtype=bool)
    is_cold[cold] = True
    warm = np.flatnonzero(~is_cold)
    train = _columns(dataset.train, ~is_cold)
    empty = np.diff(train.indptr) == 0
    warm_ds = dataclasses.replace(dataset, train=train, cold_items=cold)
    target = {
        "valid": _columns(dataset.valid, is_cold),
        "test": _columns(dataset.test, is_cold),
        "candidates": cold if cfg.candidates == "cold" else None,
        "negative_pool": warm,
    }
    if target["valid"].nnz == 0 or target["test"].nnz == 0:
        raise ValueError("cold-start split left no valid or test interaction on cold items")
    extra = {"cold_start": {
        **dataclasses.asdict(cfg),
        "n_cold_items": int(len(cold)),
        "removed_train_interactions": int(dataset.train.nnz - train.nnz),
        "users_without_train": int(empty.sum()),
        "cold_valid_interactions": int(target["valid"].nnz),
        "cold_test_interactions": int(target["test"].nnz),
    }}
    return warm_ds, target, warm, extra


def cold_start_setup(cfg: ColdStart = ColdStart()) -> Callable[[Dataset], tuple]:
    """A protocol hook for benchmark.run.execute."""
    return lambda dataset: split_cold(dataset, cfg)
