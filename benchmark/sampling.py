"""Vectorised BPR sampling: every train pair once per epoch, one uniform negative each."""
from __future__ import annotations

from typing import Iterator

import numpy as np
import scipy.sparse as sp


class PairSampler:
    """Shuffled (user, positive, negative) batches; negatives are never in the user's train items."""

    def __init__(self, train: sp.csr_matrix, batch_size: int, rng: np.random.Generator,
                 negative_pool: np.ndarray | None = None):
        coo = sp.csr_matrix(train).tocoo()
        self.users = coo.row.astype(np.int64)
        self.items = coo.col.astype(np.int64)
        self.n_items = train.shape[1]
        self.batch_size = int(batch_size)
        self.rng = rng
        # negatives come from the pool (cold start: warm items only), else from every item
        self.pool = None if negative_pool is None else np.asarray(negative_pool, dtype=np.int64)
        if self.pool is not None and self.pool.size == 0:
            raise ValueError("negative pool is empty")
        # sorted keys user*n_items+item answer "is (u, j) a train pair?" with one searchsorted
        self._keys = np.sort(self.users * self.n_items + self.items)
        full = np.flatnonzero(np.diff(sp.csr_matrix(train).indptr) >= self.n_items)
        if full.size:
            raise ValueError(f"user {full[0]} interacted with every item: no negative can be sampled")

    def __len__(self) -> int:
        return -(-len(self.users) // self.batch_size)

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users * self.n_items + items
        pos = np.searchsorted(self._keys, keys)
        pos = np.minimum(pos, len(self._keys) - 1)
        return self._keys[pos] == keys

    def _draw(self, n: int) -> np.ndarray:
        if self.pool is None:
            return self.rng.integers(0, self.n_items, size=n)
        return self.pool[self.rng.integers(0, len(self.pool), size=n)]

    def negatives(self, users: np.ndarray) -> np.ndarray:
        neg = self._draw(len(users))
        bad = self.is_positive(users, neg)
        while bad.any():  # resample only the collisions; converges fast for sparse data
            neg[bad] = self._draw(int(bad.sum()))
            bad[bad] = self.is_positive(users[bad], neg[bad])
        return neg

    def epoch(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        order = self.rng.permutation(len(self.users))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            u = self.users[idx]
            yield u, self.items[idx], self.negatives(u)
