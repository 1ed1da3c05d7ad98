"""BM3 (Zhou et al., WWW 2023, "Bootstrap Latent Representations for Multi-modal
Recommendation"): self-supervised bootstrapping without negative samples.

Architecture (MMRec's port, written by the paper's authors):

- LightGCN (n_layers) over the symmetrically normalised user-item graph, ego = [users; x] with x
  the item representation; layer mean. Item = LightGCN item + x (the residual ``i_g + h``).
- Online views: a shared predictor Linear(64 -> 64) (Xavier-normal weight) applied to the user
  and item embeddings and to the projected modality features Linear(d_m -> 64) of the frozen raw
  features. Target views: dropout(p = dropout) of the detached embeddings / projected features
  (no separate target network).
- Loss per batch of observed (user, item) pairs (the trainer's negative item is ignored):
  (1 - cos(pred(u), target(i))) + (1 - cos(pred(i), target(u)))            graph reconstruction
  + cl_weight * sum_m [(1 - cos(pred(f_m), target(i)))                    inter-modality alignment
                       + (1 - cos(pred(f_m), target(f_m)))]                intra-modality alignment
  + reg_weight * EmbLoss(all users' and all items' final embeddings)
  (each cosine term averaged over the batch; EmbLoss = sum of Frobenius norms / n_items).
- Score = pred(u) . pred(i).

Deviations from MMRec, and why:

- The raw feature tables are frozen buffers; MMRec wraps them in trainable nn.Embedding (a hidden
  per-item table that would survive in the ID-free MOTOR arm and fine-tunes 4096-d rows).
- The predictor, projections and target dropout are applied to the batch's rows only instead of
  to all users/items followed by indexing: the same values and the same distribution (dropout is
  element-wise independent), at batch cost.
- feat_embed_dim is not a separate option: MMRec overrides it with embedding_size, and the shared
  predictor requires the projected features to have the embedding's width.
- Field defaults take the first value of each MMRec grid entry (n_layers 1, dropout 0.3,
  reg_weight 0.1) and MMRec's learning rate 1e-3.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from backbones.base import Backbone, BackboneConfig, Batch, register
from backbones.graph import normalized_adjacency, propagate_mean
from backbones.losses import emb_loss


@dataclass(frozen=True)
class BM3Config(BackboneConfig):
    n_layers: int = 1
    dropout: float = 0.3  # target-view dropout
    reg_weight: float = 0.1
    cl_weight: float = 2.0  # weight of the modality alignment losses
    search_space: ClassVar[Mapping[str, tuple]] = {
        "n_layers": (1, 2),
        "dropout": (0.3, 0.5),
        "reg_weight": (0.1, 0.01),
    }


def align(online: Tensor, target: Tensor) -> Tensor:
    """1 - mean cosine similarity, the target treated as a constant."""
    return 1.0 - F.cosine_similarity(online, target.detach(), dim=-1).mean()


@register
class BM3(Backbone):
    name = "bm3"
    Config = BM3Config

    def __init__(self, data, item_encoder, config: BM3Config):
        super().__init__(data, item_encoder, config)
        if not 0.0 <= config.dropout < 1.0:
            raise ValueError(f"bm3.dropout: expected a value in [0, 1), got {config.dropout}")
        d = config.embedding_dim
        self.mods = data.present_modalities(self.name)
        self.user = nn.Parameter(nn.init.xavier_uniform_(torch.empty(data.n_users, d)))
        self.register_buffer("norm_adj", normalized_adjacency(data.train), persistent=False)
        self.predictor = nn.Linear(d, d)
        nn.init.xavier_normal_(self.predictor.weight)
        self.projections = nn.ModuleDict()
        for m in self.mods:
            f = np.ascontiguousarray(data.features[m], dtype=np.float32)
            self.register_buffer(f"raw_{m}", torch.from_numpy(f), persistent=False)
            lin = nn.Linear(f.shape[1], d)
            nn.init.xavier_normal_(lin.weight)
            self.projections[m] = lin

    def forward(self):
        x = self.item_encoder()
        out = propagate_mean(self.norm_adj, torch.cat([self.user, x]), self.config.n_layers)
        users, items = torch.split(out, [self.n_users, self.n_items])
        return users, items + x

    def _target(self, t: Tensor) -> Tensor:
        with torch.no_grad():
            return F.dropout(t.detach(), self.config.dropout, training=True)

    def loss(self, batch: Batch):
        c = self.config
        users, items = self.forward()
        u, i = users[batch.users], items[batch.pos]  # observed pairs; batch.neg is not used
        u_target, i_target = self._target(u), self._target(i)
        loss = align(self.predictor(u), i_target) + align(self.predictor(i), u_target)
        modal = u.new_zeros(())
        for m in self.mods:
            f = self.projections[m](getattr(self, f"raw_{m}")[batch.pos])
            f_target = self._target(f)
            f_online = self.predictor(f)
            modal = modal + align(f_online, i_target) + align(f_online, f_target)
        return loss + c.cl_weight * modal + c.reg_weight * emb_loss(users, items)

    def scorer(self):
        users, items = self.forward()
        users, items = self.predictor(users), self.predictor(items)
        return lambda idx: users[idx] @ items.T
