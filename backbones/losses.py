"""Losses shared by the backbones (MMRec's definitions)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def bpr_loss(pos: Tensor, neg: Tensor) -> Tensor:
    """-mean log sigmoid(pos - neg); softplus form is the numerically stable equivalent."""
    return F.softplus(neg - pos).mean()


def emb_loss(*embeddings: Tensor) -> Tensor:
    """MMRec's EmbLoss: sum of the Frobenius norms divided by the batch size."""
    total = sum(torch.linalg.norm(e) for e in embeddings)
    return total / embeddings[-1].shape[0]


def l2_loss(*embeddings: Tensor) -> Tensor:
    """LightGCN-style 0.5 * sum of squared norms divided by the batch size."""
    total = sum(e.pow(2).sum() for e in embeddings)
    return 0.5 * total / embeddings[-1].shape[0]


def dot_scores(users: Tensor, items: Tensor) -> Tensor:
    return (users * items).sum(dim=-1)
