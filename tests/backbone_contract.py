"""Shared checks every backbone passes in both arms (imported by the per-backbone tests).

Sizes are chosen so that no other dimension equals n_items, which makes the ID-free check exact.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from benchmark.arms import MotorSettings
from benchmark.dataset import Dataset
from benchmark.run import RunSpec, build_model
from benchmark.seeding import seed_everything
from benchmark.train import TrainConfig, train

N_USERS, N_ITEMS = 173, 157


def tiny_dataset(seed: int = 0, modalities=("image", "text")) -> Dataset:
    """Users prefer items near their latent taste; image/text are different noisy views."""
    rng = np.random.default_rng(seed)
    lat_u, lat_i = rng.normal(size=(N_USERS, 6)), rng.normal(size=(N_ITEMS, 6))
    scores = lat_u @ lat_i.T + rng.gumbel(size=(N_USERS, N_ITEMS)) * 1.5
    per_user = 12
    top = np.argsort(-scores, axis=1)[:, :per_user]
    rows = np.repeat(np.arange(N_USERS), per_user)
    labels = np.tile(np.array([0] * 9 + [1, 2, 2]), N_USERS)

    def split(label):
        keep = labels == label
        return sp.csr_matrix((np.ones(keep.sum(), np.float32), (rows[keep], top.ravel()[keep])),
                             shape=(N_USERS, N_ITEMS))

    feats = {
        "image": np.tanh(lat_i @ rng.normal(size=(6, 24))).astype(np.float32),
        "text": (lat_i @ rng.normal(size=(6, 20)) + 0.1 * rng.normal(size=(N_ITEMS, 20))).astype(np.float32),
    }
    return Dataset("tiny", N_USERS, N_ITEMS, split(0), split(1), split(2),
                   {m: feats[m] for m in modalities}, source="tests.backbone_contract")


TINY_MOTOR = MotorSettings(pq_m=2, pq_k=16)


def id_sized_tensors(model, n_items: int) -> list[str]:
    """Names of learnable tensors with a dimension of size n_items (a per-item table)."""
    return [name for name, p in model.named_parameters() if p.requires_grad and n_items in p.shape]


def check_backbone(name: str, arm: str, params=None, tmp_cache=None, epochs: int = 2):
    """Train two epochs; the loss falls, scores have the right shape, MOTOR arm is ID-free."""
    data = tiny_dataset()
    spec = RunSpec("tiny", name, arm, seed=1, params=params or {}, motor=TINY_MOTOR,
                   train=TrainConfig(epochs=epochs, batch_size=256, patience=50))
    rng = seed_everything(spec.seed)
    model = build_model(spec, data, tmp_cache)
    result = train(model, data, spec.train, rng, torch.device("cpu"), progress=False)
    losses = [h["loss"] for h in result.history]
    assert len(losses) == epochs
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0], f"{name}/{arm}: loss did not fall: {losses}"
    users = torch.arange(7)
    scores = model.score_users(users)
    assert scores.shape == (7, N_ITEMS)
    assert torch.isfinite(scores).all()
    # scoring is recomputed in eval mode: two calls agree exactly (no dropout, no stale cache)
    assert torch.equal(scores, model.score_users(users))
    tables = id_sized_tensors(model, N_ITEMS)
    if arm == "motor":
        assert tables == [], f"{name}: per-item learnable tensors in the MOTOR arm: {tables}"
    else:
        assert tables, f"{name}: the ID arm should hold an item table"
    return model, result
