"""Losses shared by the backbones (MMRec's definitions)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def bpr_loss(pos: Tensor, neg: Tensor) -> Tensor:
    """-mean log sigmoid(pos - neg); softplus form is the numerically stable equivalent."""
    return F.softplus(neg - pos).mean()


def log2_bpr_loss(pos: Tensor, neg: Tensor) -> Tensor:
    """-mean log2 sigmoid(pos - neg): the base-2 BPR of the DualGNN/DRAGON authors."""
    return bpr_loss(pos, neg) / math.log(2.0)


def id_pair_reg(user_rows: Tensor, pos_rows: Tensor, neg_rows: Tensor) -> Tensor:
    """MMRec's MMGCN/GRCN ID regulariser: the mean square entry over the 2B (user, item) rows
    of a batch, each user row counted once with its positive and once with its negative."""
    return (2 * user_rows.pow(2).sum() + pos_rows.pow(2).sum() + neg_rows.pow(2).sum()) / (
        2 * user_rows.numel())


def preference_reg(preferences, users: Tensor) -> Tensor:
    """sum over modalities of the mean square entry of the batch users' preference rows."""
    return sum(p[users].pow(2).mean() for p in preferences)


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
