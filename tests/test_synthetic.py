"""The split rule and the synthetic generator: sizes, determinism, and real content signal."""
from __future__ import annotations

import time

import numpy as np
import pytest

from benchmark.splits import mmrec_split, split_counts, users_without_train
from benchmark.synthetic import SyntheticConfig, generate


@pytest.fixture(scope="module")
def default():
    return generate(SyntheticConfig())


def per_user(m):
    return np.asarray(m.sum(axis=1)).ravel().astype(int)


# --------------------------------------------------------------------------- split rule


@pytest.mark.parametrize(
    "n,expected",
    [(3, (1, 1, 1)), (5, (3, 1, 1)), (9, (7, 1, 1)), (10, (8, 1, 1)), (14, (12, 1, 1)),
     (15, (12, 1, 2)), (25, (20, 2, 3)), (125, (100, 12, 13))],
)
def test_split_counts(n, expected):
    assert tuple(int(c[0]) for c in split_counts(np.array([n]))) == expected


def test_mmrec_split_unsorted_users_and_seeded():
    rng = np.random.default_rng(0)
    users = rng.permutation(np.repeat(np.arange(6), [3, 5, 9, 10, 15, 40]))
    labels = mmrec_split(users, np.random.default_rng(1))
    assert labels.dtype == np.int8 and len(labels) == len(users)
    for u, n in enumerate([3, 5, 9, 10, 15, 40]):
        got = np.bincount(labels[users == u], minlength=3)
        assert tuple(got) == tuple(int(c[0]) for c in split_counts(np.array([n])))
    np.testing.assert_array_equal(labels, mmrec_split(users, np.random.default_rng(1)))
    assert not np.array_equal(labels, mmrec_split(users, np.random.default_rng(2)))


def test_mmrec_split_needs_three_interactions():
    with pytest.raises(ValueError, match="user 7 has 2"):
        mmrec_split(np.array([1, 1, 1, 7, 7]), np.random.default_rng(0))


def test_users_without_train():
    users = np.array([0, 0, 1, 1, 2])
    labels = np.array([0, 2, 1, 2, 0])
    np.testing.assert_array_equal(users_without_train(users, labels), [False, False, True, True, False])


def test_generated_split_follows_rule_per_user(default):
    tr, va, te = per_user(default.train), per_user(default.valid), per_user(default.test)
    n_tr, n_va, n_te = split_counts(tr + va + te)
    np.testing.assert_array_equal(tr, n_tr)
    np.testing.assert_array_equal(va, n_va)
    np.testing.assert_array_equal(te, n_te)


# --------------------------------------------------------------------------- generator


def test_default_shape_and_invariants(default):
    d = default
    s = d.stats()
    assert (d.name, d.n_users, d.n_items) == ("synthetic", 1500, 800)
    assert 23_000 <= s["interactions"] <= 26_000
    total = d.train + d.valid + d.test
    assert total.max() == 1  # no (user, item) pair twice, across splits too
    assert per_user(total).min() >= 5
    assert np.asarray(total.sum(axis=0)).min() >= 1  # every item occurs
    assert s["features"] == {"image": [800, 64], "text": [800, 48]}
    for f in d.features.values():
        assert f.dtype == np.float32 and np.isfinite(f).all()
    # long tails: the busiest users and items far above the median
    assert per_user(total).max() > 5 * np.median(per_user(total))
    item_counts = np.asarray(total.sum(axis=0)).ravel()
    assert item_counts.max() > 5 * np.median(item_counts)


def test_same_seed_same_data_other_seed_differs(default):
    again = generate(SyntheticConfig())
    assert again.fingerprint == default.fingerprint
    assert (again.test != default.test).nnz == 0 and (again.valid != default.valid).nnz == 0
    other = generate(SyntheticConfig(seed=2025))
    assert other.fingerprint != default.fingerprint
    assert (other.test != default.test).nnz > 0


def test_config_validation():
    with pytest.raises(ValueError, match="min_user_interactions must be at least 3"):
        SyntheticConfig(min_user_interactions=2)
    with pytest.raises(ValueError, match="below n_users x min_user_interactions"):
        SyntheticConfig(n_users=100, n_interactions=100)
    with pytest.raises(ValueError, match="must not be negative"):
        SyntheticConfig(item_noise=-1.0)


def test_clothing_sized_config():
    c = SyntheticConfig.clothing_sized(seed=1)
    assert (c.n_users, c.n_items, c.seed) == (39_387, 23_033, 1)
    assert 270_000 <= c.n_interactions <= 290_000


@pytest.mark.slow
def test_clothing_sized_generation_is_fast():
    start = time.perf_counter()
    d = generate(SyntheticConfig.clothing_sized())
    assert time.perf_counter() - start < 10
    assert (d.n_users, d.n_items) == (39_387, 23_033)
    assert 270_000 <= d.stats()["interactions"] <= 290_000


# --------------------------------------------------------------------------- content signal


def recall_at_20(scores: np.ndarray, d) -> float:
    scores = np.where(d.train.toarray() > 0, -np.inf, scores)
    top = np.argpartition(-scores, 20, axis=1)[:, :20]
    test = d.test.toarray() > 0
    hits = np.take_along_axis(test, top, axis=1).sum(axis=1)
    n = test.sum(axis=1)
    return float((hits[n > 0] / n[n > 0]).mean())


def content_scores(d, modalities) -> np.ndarray:
    """Item-kNN on content: a user's score for i sums the cosine similarity of i to their items."""
    parts = []
    for m in modalities:
        f = d.features[m] - d.features[m].mean(axis=0)
        parts.append(f / np.linalg.norm(f, axis=1, keepdims=True))
    x = np.hstack(parts)
    sim = x @ x.T
    np.fill_diagonal(sim, 0.0)
    return np.asarray(d.train @ sim)


def test_content_beats_popularity(default):
    d = default
    popularity = np.broadcast_to(np.asarray(d.train.sum(axis=0), dtype=float), (d.n_users, d.n_items))
    pop = recall_at_20(popularity, d)
    both = recall_at_20(content_scores(d, ["image", "text"]), d)
    image = recall_at_20(content_scores(d, ["image"]), d)
    text = recall_at_20(content_scores(d, ["text"]), d)
    print(f"Recall@20 popularity {pop:.4f} content {both:.4f} image {image:.4f} text {text:.4f}")
    assert both > 1.8 * pop
    assert image > 1.5 * pop and text > 1.5 * pop
