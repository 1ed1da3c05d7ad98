"""The project's own default dataset: generated interactions with planted multimodal structure.

Model (all draws from one seeded generator):

* items belong to latent clusters; an item's latent vector is its cluster centre plus noise
  (unit-normalised);
* each user prefers a few clusters (Dirichlet mixture weights);
* an interaction of user u picks one of u's clusters k by its weight, then item i with
  probability proportional to popularity_i * exp(sharpness * <centre_k, latent_i>); with a small
  probability it picks by popularity alone. Popularity is log-normal (long tail); so is user
  activity (each user has at least ``min_user_interactions``, no pair repeats);
* image and text features are two different random non-linear (tanh) maps of the item latents
  plus noise, so content similarity carries the cluster structure;
* each user's interactions are split by MMRec's rule (benchmark.splits.mmrec_split).

Everything is vectorised over interactions; a clothing-sized problem takes a few seconds.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from benchmark.data import build_dataset
from benchmark.dataset import Dataset
from benchmark.splits import MIN_INTERACTIONS, mmrec_split

MAX_ROUNDS = 100


@dataclass(frozen=True)
class SyntheticConfig:
    seed: int = 2024
    n_users: int = 1500
    n_items: int = 800
    n_interactions: int = 25_000  # target; item coverage may add a few
    n_clusters: int = 20
    clusters_per_user: int = 3
    latent_dim: int = 16
    item_noise: float = 0.5  # spread of item latents around their cluster centre
    sharpness: float = 8.0  # how strongly affinity drives the choice of item
    exploration: float = 0.05  # share of interactions drawn by popularity alone
    popularity_sigma: float = 1.2  # log-normal item popularity
    activity_sigma: float = 1.2  # log-normal user activity
    min_user_interactions: int = 5
    max_user_share: float = 0.2  # no user interacts with more than this share of the items
    image_dim: int = 64
    text_dim: int = 48
    feature_noise: float = 0.3

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "seed" and value < 0:
                raise ValueError(f"SyntheticConfig.{f.name} must not be negative, got {value}")
        if self.min_user_interactions < MIN_INTERACTIONS:
            raise ValueError(
                f"SyntheticConfig.min_user_interactions must be at least {MIN_INTERACTIONS} "
                "(the split needs train, valid and test rows)"
            )
        for name in ("n_users", "n_clusters", "clusters_per_user", "latent_dim", "image_dim", "text_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"SyntheticConfig.{name} must be at least 1")
        if self.exploration > 1:
            raise ValueError("SyntheticConfig.exploration must be in [0, 1]")
        if self.max_user_interactions < self.min_user_interactions:
            raise ValueError(
                f"SyntheticConfig: n_items={self.n_items} is too small for "
                f"{self.min_user_interactions} interactions per user at max_user_share={self.max_user_share}"
            )
        if self.n_interactions < self.n_users * self.min_user_interactions:
            raise ValueError(
                f"SyntheticConfig: n_interactions={self.n_interactions} is below "
                f"n_users x min_user_interactions = {self.n_users * self.min_user_interactions}"
            )
        if self.n_interactions > self.n_users * self.max_user_interactions:
            raise ValueError(
                f"SyntheticConfig: n_interactions={self.n_interactions} exceeds what "
                f"max_user_share={self.max_user_share} allows ({self.n_users * self.max_user_interactions})"
            )

    @property
    def max_user_interactions(self) -> int:
        return int(self.max_user_share * self.n_items)

    @classmethod
    def clothing_sized(cls, **overrides) -> "SyntheticConfig":
        """The size of Amazon Clothing (39,387 users, 23,033 items, ~280k interactions)."""
        values = dict(n_users=39_387, n_items=23_033, n_interactions=278_677, n_clusters=100)
        values.update(overrides)
        return cls(**values)


# --------------------------------------------------------------------------- sampling helpers


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _sample_rows(probs: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each entry r of ``rows`` draw a column from the categorical distribution probs[r]."""
    n_rows, n_cols = probs.shape
    cum = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    cum[:, -1] = 1.0
    flat = (cum + np.arange(n_rows)[:, None]).ravel()  # row r occupies (r, r + 1]
    hit = np.searchsorted(flat, rows + rng.random(len(rows)), side="right")
    return np.minimum(hit - rows * n_cols, n_cols - 1)


def _activity(config: SyntheticConfig, rng: np.random.Generator) -> np.ndarray:
    """Interactions per user: min + a log-normal share of the rest, capped; sums near the target."""
    weight = rng.lognormal(0.0, config.activity_sigma, config.n_users)
    extra = config.n_interactions - config.min_user_interactions * config.n_users
    share = extra * weight / weight.sum()
    counts = np.floor(share).astype(np.int64)
    # Largest remainders get one more, so the counts add up to the target exactly (before caps).
    counts[np.argsort(counts - share)[: extra - int(counts.sum())]] += 1
    return np.minimum(config.min_user_interactions + counts, config.max_user_interactions)


def _draw_items(users, user_weights, cluster_item_probs, popularity, exploration, rng):
    clusters = _sample_rows(user_weights, users, rng)
    items = _sample_rows(cluster_item_probs, clusters, rng)
    explore = rng.random(len(users)) < exploration
    if explore.any():
        items[explore] = _sample_rows(popularity[None, :], np.zeros(int(explore.sum()), np.int64), rng)
    return items


def _interactions(config, counts, user_weights, cluster_item_probs, popularity, rng):
    """Distinct (user, item) pairs, ``counts[u]`` of them for user u, drawn in rounds."""
    n_items = config.n_items
    have_keys = np.zeros(0, dtype=np.int64)
    deficit = counts.copy()
    for _ in range(MAX_ROUNDS):
        needy = np.flatnonzero(deficit > 0)
        if len(needy) == 0:
            break
        draws = np.ceil(deficit[needy] * 1.3).astype(np.int64) + 2
        users = np.repeat(needy, draws)
        items = _draw_items(users, user_weights, cluster_item_probs, popularity, config.exploration, rng)
        keys = users * n_items + items
        _, first = np.unique(keys, return_index=True)
        first.sort()  # distinct draws in draw order, still grouped by user
        first = first[~np.isin(keys[first], have_keys, assume_unique=False)]
        users, keys = users[first], keys[first]
        starts = np.searchsorted(users, users, side="left")
        rank = np.arange(len(users)) - starts
        take = rank < deficit[users]
        have_keys = np.concatenate([have_keys, keys[take]])
        deficit -= np.bincount(users[take], minlength=config.n_users)
    else:
        raise RuntimeError(f"synthetic: could not draw distinct interactions in {MAX_ROUNDS} rounds")
    return have_keys // n_items, have_keys % n_items


def _cover_items(users, items, config, user_weights, item_cluster, rng):
    """Give every item without interactions one, from a user who likes the item's cluster."""
    missing = np.flatnonzero(np.bincount(items, minlength=config.n_items) == 0)
    if len(missing) == 0:
        return users, items
    cluster_users = user_weights.T + 1e-9  # (n_clusters, n_users)
    owners = _sample_rows(cluster_users, item_cluster[missing], rng)
    return np.concatenate([users, owners]), np.concatenate([items, missing])


def _feature_map(latents: np.ndarray, dims: list[int], noise: float, rng: np.random.Generator) -> np.ndarray:
    """A random tanh network of the given layer widths, plus Gaussian noise."""
    h = latents
    for width in dims:
        w = rng.normal(0.0, 1.5 / np.sqrt(h.shape[1]), (h.shape[1], width))
        b = rng.normal(0.0, 0.3, width)
        h = np.tanh(h @ w + b)
    return (h + rng.normal(0.0, noise, h.shape)).astype(np.float32)


# --------------------------------------------------------------------------- generator


def generate(config: SyntheticConfig = SyntheticConfig()) -> Dataset:
    """Generate the synthetic dataset for ``config`` (same config, same dataset)."""
    rng = np.random.default_rng(config.seed)
    C, L = config.n_clusters, config.latent_dim

    centres = _unit(rng.normal(size=(C, L)))
    item_cluster = rng.integers(C, size=config.n_items)
    item_latent = _unit(centres[item_cluster] + config.item_noise * rng.normal(size=(config.n_items, L)) / np.sqrt(L))
    popularity = rng.lognormal(0.0, config.popularity_sigma, config.n_items)

    # Cluster k's item distribution: popularity x exp(sharpness x affinity), shifted for stability.
    affinity = centres @ item_latent.T
    cluster_item_probs = popularity * np.exp(config.sharpness * (affinity - affinity.max(axis=1, keepdims=True)))

    # Users: Dirichlet weights over a few preferred clusters (repeats just add up).
    preferred = rng.integers(C, size=(config.n_users, config.clusters_per_user))
    mix = rng.gamma(1.0, size=preferred.shape)
    user_weights = np.zeros((config.n_users, C))
    np.add.at(user_weights, (np.repeat(np.arange(config.n_users), config.clusters_per_user), preferred.ravel()), mix.ravel())

    counts = _activity(config, rng)
    users, items = _interactions(config, counts, user_weights, cluster_item_probs, popularity, rng)
    users, items = _cover_items(users, items, config, user_weights, item_cluster, rng)
    labels = mmrec_split(users, rng)

    features = {
        "image": _feature_map(item_latent, [config.image_dim], config.feature_noise, rng),
        "text": _feature_map(item_latent, [32, config.text_dim], config.feature_noise, rng),
    }
    return build_dataset(
        "synthetic", users, items, labels, config.n_users, config.n_items, features,
        source=f"benchmark.synthetic {config}",
    )
