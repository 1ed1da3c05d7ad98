"""VBPR (He & McAuley, AAAI 2016), as ported by MMRec.

Item i = concat(item representation (64-d, from the item encoder), Linear(concat(text, image)))
-> 128-d; user = one 128-d learnable vector. Score = dot product; loss = BPR + reg_weight *
EmbLoss(user, pos, neg) (MMRec's EmbLoss: Frobenius norms / batch).

Deviations from MMRec, documented in REPRODUCE.md:
- raw features are frozen buffers (MMRec also keeps them fixed here; stated for clarity);
- like MMRec, the paper's item/visual bias terms (beta_i, beta') are omitted: a per-item bias is
  an item ID table and would survive in the MOTOR arm;
- MMRec gives only a grid for reg_weight; our default 0.1 was chosen on Baby's *valid*
  Recall@20 among {1e-3, 0.1, 1.0} (0.0481, 0.0585, 0.0018).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping

import numpy as np
import torch
from torch import nn

from backbones.base import Backbone, BackboneConfig, Batch, register
from backbones.losses import bpr_loss, dot_scores, emb_loss


@dataclass(frozen=True)
class VBPRConfig(BackboneConfig):
    # From MMRec's grid; chosen on Baby *valid* Recall@20 among {1e-3, 0.1, 1.0} (0.0481, 0.0585,
    # 0.0018 at <= 80 epochs): with EmbLoss's norm/batch scaling, 1e-3 barely regularises.
    reg_weight: float = 0.1
    search_space: ClassVar[Mapping[str, tuple]] = {
        "reg_weight": (2.0, 1.0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5),
    }


@register
class VBPR(Backbone):
    name = "vbpr"
    Config = VBPRConfig

    def __init__(self, data, item_encoder, config: VBPRConfig):
        super().__init__(data, item_encoder, config)
        d = config.embedding_dim
        feats = [data.features[m] for m in ("text", "image") if m in data.features]
        if not feats:
            data.feature("image", self.name)  # raises the standard missing-feature error
        raw = np.concatenate(feats, axis=1).astype(np.float32)
        self.register_buffer("raw", torch.from_numpy(raw), persistent=False)
        self.item_linear = nn.Linear(raw.shape[1], d)
        self.user = nn.Parameter(nn.init.xavier_uniform_(torch.empty(data.n_users, 2 * d)))

    def items(self, idx=None):
        raw = self.raw if idx is None else self.raw[idx]
        return torch.cat([self.item_encoder(idx), self.item_linear(raw)], dim=-1)

    def loss(self, batch: Batch):
        u = self.user[batch.users]
        p, n = self.items(batch.pos), self.items(batch.neg)
        return bpr_loss(dot_scores(u, p), dot_scores(u, n)) + self.config.reg_weight * emb_loss(u, p, n)

    def scorer(self):
        items = self.items()
        return lambda users: self.user[users] @ items.T
