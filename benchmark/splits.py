"""MMRec's per-user train/valid/test split rule and its drop rule, shared by every data source.

``x_label`` values: 0 = train, 1 = valid, 2 = test.
"""
from __future__ import annotations

import numpy as np

TRAIN, VALID, TEST = 0, 1, 2
MIN_INTERACTIONS = 3  # n - 2 train rows must leave at least one


def split_counts(n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-user (train, valid, test) sizes for ``n`` interactions each.

    n < 10: n - 2 / 1 / 1; otherwise vt = floor(0.2 n), valid = floor(vt / 2), test = vt - valid.
    """
    n = np.asarray(n, dtype=np.int64)
    vt = np.where(n < 10, 2, (n * 2) // 10)  # integer floor(0.2 n), no float rounding
    valid = vt // 2
    test = vt - valid
    return n - vt, valid, test


def mmrec_split(user_ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Assign each interaction an x_label by MMRec's per-user rule, with a seeded random order.

    ``user_ids`` holds one entry per interaction (any order); the result is an int8 array of the
    same length. Which of a user's interactions land in valid/test is drawn from ``rng``. Every
    user needs at least ``MIN_INTERACTIONS`` interactions.
    """
    user_ids = np.asarray(user_ids)
    if user_ids.ndim != 1:
        raise ValueError(f"mmrec_split: user_ids must be 1-D, got shape {user_ids.shape}")
    labels = np.empty(len(user_ids), dtype=np.int8)
    if len(user_ids) == 0:
        return labels
    _, inverse, counts = np.unique(user_ids, return_inverse=True, return_counts=True)
    if counts.min() < MIN_INTERACTIONS:
        k = int(np.argmin(counts))
        raise ValueError(
            f"mmrec_split: every user needs at least {MIN_INTERACTIONS} interactions; "
            f"user {np.unique(user_ids)[k]} has {counts[k]}"
        )
    # Random order within each user: sort by (user, random key), then rank inside the group.
    order = np.lexsort((rng.random(len(user_ids)), inverse))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    grouped_user = inverse[order]
    rank = np.arange(len(order)) - starts[grouped_user]
    n_train, n_valid, _ = split_counts(counts)
    n_train, n_valid = n_train[grouped_user], n_valid[grouped_user]
    labels[order] = np.where(rank < n_train, TRAIN, np.where(rank < n_train + n_valid, VALID, TEST))
    return labels


def users_without_train(user_ids: np.ndarray, x_label: np.ndarray) -> np.ndarray:
    """Mask of rows MMRec drops: valid/test rows of users that have no train row."""
    user_ids = np.asarray(user_ids)
    x_label = np.asarray(x_label)
    if len(user_ids) == 0:
        return np.zeros(0, dtype=bool)
    has_train = np.zeros(int(user_ids.max()) + 1, dtype=bool)
    has_train[user_ids[x_label == TRAIN]] = True
    return ~has_train[user_ids]
