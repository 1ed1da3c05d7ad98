"""The in-memory dataset every part of the harness works on."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Mapping, Optional

import numpy as np
import scipy.sparse as sp

from backbones.base import InteractionData


def array_hash(*arrays: np.ndarray) -> str:
    """sha256 over dtype, shape and bytes of the arrays (content, not identity)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode())
        h.update(repr(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def csr_hash(m: sp.csr_matrix) -> str:
    m = m.tocsr()
    m.sort_indices()
    return array_hash(np.asarray(m.shape), m.indptr.astype(np.int64), m.indices.astype(np.int64))


@dataclass(frozen=True)
class Dataset:
    """Users x items interactions split into train/valid/test, plus frozen item features.

    Splits are binary CSR matrices of shape (n_users, n_items). ``features`` maps a modality
    ("image", "text") to a float32 (n_items, d) array. ``cold_items`` is set by the cold-start
    protocol: those items have no train interactions and are the ones evaluated.
    """

    name: str
    n_users: int
    n_items: int
    train: sp.csr_matrix
    valid: sp.csr_matrix
    test: sp.csr_matrix
    features: Mapping[str, np.ndarray] = field(default_factory=dict)
    source: str = ""
    cold_items: Optional[np.ndarray] = None

    def split(self, name: str) -> sp.csr_matrix:
        try:
            return {"train": self.train, "valid": self.valid, "test": self.test}[name]
        except KeyError:
            raise ValueError(f"unknown split {name!r}; expected train, valid or test") from None

    def feature_hash(self, modality: str) -> str:
        return array_hash(self.features[modality])

    @cached_property
    def train_hash(self) -> str:
        return csr_hash(self.train)

    @cached_property
    def fingerprint(self) -> str:
        """Identifies the train split and all features (what models may see)."""
        parts = [self.train_hash] + [f"{m}:{self.feature_hash(m)}" for m in sorted(self.features)]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    def to_input(self, cache_dir: Optional[Path] = None) -> InteractionData:
        return InteractionData(
            n_users=self.n_users,
            n_items=self.n_items,
            train=self.train,
            features=dict(self.features),
            cache_dir=cache_dir,
            fingerprint=self.fingerprint,
        )

    def stats(self) -> dict:
        n_tr, n_va, n_te = self.train.nnz, self.valid.nnz, self.test.nnz
        total = n_tr + n_va + n_te
        return {
            "name": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "interactions": total,
            "train": n_tr,
            "valid": n_va,
            "test": n_te,
            "sparsity": 1.0 - total / (self.n_users * self.n_items),
            "features": {m: list(f.shape) for m, f in sorted(self.features.items())},
        }
