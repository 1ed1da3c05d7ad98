"""BPR-MF (Rendle et al., UAI 2009), as ported by MMRec: a feature-free matrix-factorisation
baseline.

User = learnable 64-d vector; item = the item encoder's row; score = dot product; loss = BPR +
reg_weight * EmbLoss(user, positive, negative) (MMRec's EmbLoss: Frobenius norms / batch).

The model reads no raw features. In the ID arm it is the usual BPR-MF; in the MOTOR arm the item
vectors come from MOTOR's encoder, whose tokens are PQ codes of the image and text features, so
there the model DOES see (quantised) content: the MOTOR-arm numbers are not a feature-free
baseline.

Default reg_weight 0.1: MMRec's BPR.yaml only gives the grid {2, 1, 1e-1 ... 1e-5} (the search
space); 0.1 had the best Baby VALIDATION Recall@20 in the ID arm (40 epochs, patience 10, seed
999): reg 1 -> 0.0021 (collapses), 0.1 -> 0.0597, 0.01 -> 0.0559, 1e-3 -> 0.0555, 1e-5 -> 0.0555.

Deviations from MMRec, documented in REPRODUCE.md: the item table is the item encoder (so the
ID arm's items are Xavier-uniform initialised like every other ID table here; MMRec's BPR uses
Xavier-normal); the user table keeps MMRec's Xavier-normal initialisation. MMRec's
``forward(dropout)`` argument is never used with a non-zero value and is omitted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping

import torch
from torch import nn

from backbones.base import Backbone, BackboneConfig, Batch, register
from backbones.losses import bpr_loss, dot_scores, emb_loss


@dataclass(frozen=True)
class BPRConfig(BackboneConfig):
    reg_weight: float = 0.1  # chosen on Baby validation Recall@20 (see the module docstring)
    search_space: ClassVar[Mapping[str, tuple]] = {
        "reg_weight": (2.0, 1.0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5),
    }


@register
class BPR(Backbone):
    name = "bpr"
    Config = BPRConfig

    def __init__(self, data, item_encoder, config: BPRConfig):
        super().__init__(data, item_encoder, config)
        self.user = nn.Parameter(nn.init.xavier_normal_(torch.empty(data.n_users, config.embedding_dim)))

    def loss(self, batch: Batch):
        u = self.user[batch.users]
        n_pos = batch.pos.shape[0]
        items = self.item_encoder(torch.cat([batch.pos, batch.neg]))
        p, n = items[:n_pos], items[n_pos:]
        loss = bpr_loss(dot_scores(u, p), dot_scores(u, n))
        if self.config.reg_weight:
            loss = loss + self.config.reg_weight * emb_loss(u, p, n)
        return loss

    def scorer(self):
        items = self.item_encoder()
        return lambda idx: self.user[idx] @ items.T
