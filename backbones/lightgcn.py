"""LightGCN (He et al., SIGIR 2020), as ported by MMRec: a feature-free graph baseline.

Embeddings of users (learnable table) and items (the item encoder) are propagated over the
symmetric-normalised user-item train graph D^-1/2 A D^-1/2 without transforms or non-linearities;
the final representation is the mean of layers 0..n_layers. Score = dot product; loss = BPR +
reg_weight * EmbLoss of the layer-0 (ego) embeddings of the batch user, positive and negative
items (MMRec's EmbLoss: Frobenius norms / batch).

The model reads no raw features. In the ID arm it is the usual ID-based LightGCN; in the MOTOR arm
the item ego embeddings come from MOTOR's encoder, whose tokens are PQ codes of the image and text
features, so there the model DOES see (quantised) content: the MOTOR-arm numbers are not a
feature-free baseline.

Defaults: n_layers 3 and reg_weight 1e-4, the paper's recommended setting (K = 3, lambda = 1e-4);
both lie on MMRec's grid n_layers {1, 2, 3, 4} x reg_weight {1e-2 ... 1e-6}, which is the
search space. Note that MMRec's EmbLoss uses norms, not the paper's squared norms, so 1e-4 is
not the paper's exact penalty.

Deviations from MMRec, documented in REPRODUCE.md: the item table is the item encoder.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping

import torch
from torch import nn

from backbones.base import Backbone, BackboneConfig, Batch, register
from backbones.graph import normalized_adjacency, propagate_mean
from backbones.losses import bpr_loss, dot_scores, emb_loss


@dataclass(frozen=True)
class LightGCNConfig(BackboneConfig):
    n_layers: int = 3
    reg_weight: float = 1e-4
    search_space: ClassVar[Mapping[str, tuple]] = {
        "n_layers": (1, 2, 3, 4),
        "reg_weight": (1e-2, 1e-3, 1e-4, 1e-5, 1e-6),
    }

    def __post_init__(self):
        if self.n_layers < 0:
            raise ValueError(f"LightGCNConfig.n_layers: expected >= 0, got {self.n_layers}")


@register
class LightGCN(Backbone):
    name = "lightgcn"
    Config = LightGCNConfig

    def __init__(self, data, item_encoder, config: LightGCNConfig):
        super().__init__(data, item_encoder, config)
        self.user = nn.Parameter(nn.init.xavier_uniform_(torch.empty(data.n_users, config.embedding_dim)))
        self.register_buffer("norm_adj", normalized_adjacency(data.train), persistent=False)

    def forward(self):
        x = self.item_encoder()
        out = propagate_mean(self.norm_adj, torch.cat([self.user, x]), self.config.n_layers)
        users, items = torch.split(out, [self.n_users, self.n_items])
        return users, items, x

    def loss(self, batch: Batch):
        users, items, x = self.forward()
        u = users[batch.users]
        loss = bpr_loss(dot_scores(u, items[batch.pos]), dot_scores(u, items[batch.neg]))
        if self.config.reg_weight:
            loss = loss + self.config.reg_weight * emb_loss(self.user[batch.users], x[batch.pos], x[batch.neg])
        return loss

    def scorer(self):
        users, items, _ = self.forward()
        return lambda idx: users[idx] @ items.T
