"""FREEDOM (Zhou et al., ACM MM 2023): a frozen multimodal item-item graph plus a pruned
user-item graph.

- Item graph S = a_v * S_image + (1 - a_v) * S_text, each a top-k (k=10) cosine kNN graph of the
  raw features, binary and symmetrically normalised; built once and frozen.
- Item-graph branch h = S^L x (L = n_mm_layers) with x the item representation.
- User-item branch: LightGCN (n_ui_layers) over a degree-sensitively pruned graph that is
  resampled every epoch (keep (1 - dropout) of the edges, drawn with probability proportional
  to 1/sqrt(d_u d_i), then renormalised); evaluation uses the full graph.
- Final item = LightGCN item + h; loss = BPR + reg_weight * (BPR with the projected image
  features + BPR with the projected text features), projections Linear(d_m -> 64).

Deviations from MMRec, documented in REPRODUCE.md: the raw feature tables are frozen buffers
(MMRec wraps them in trainable nn.Embedding, a hidden per-item table); the item kNN graphs are
cached under the cache folder keyed by the feature contents.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from backbones.base import Backbone, BackboneConfig, Batch, register
from backbones.graph import knn_graph, normalized_adjacency, propagate_mean, sparse
from backbones.losses import bpr_loss, dot_scores


@dataclass(frozen=True)
class FREEDOMConfig(BackboneConfig):
    knn_k: int = 10
    mm_image_weight: float = 0.1
    n_mm_layers: int = 1
    n_ui_layers: int = 2
    dropout: float = 0.8  # share of user-item edges pruned each epoch
    reg_weight: float = 0.0
    search_space: ClassVar[Mapping[str, tuple]] = {
        "dropout": (0.8, 0.9),
        "reg_weight": (0.0, 1e-5, 1e-4, 1e-3),
    }


def item_graph(data, k: int, image_weight: float, model: str) -> torch.Tensor:
    """FREEDOM/DRAGON-style mixed kNN item graph; a single available modality gets weight 1."""
    graphs, weights = [], []
    for m, w in (("image", image_weight), ("text", 1.0 - image_weight)):
        if m in data.features:
            graphs.append(knn_graph(data.features[m], k, cache_dir=data.cache_dir,
                                    cache_key=data.cache_key("knn", m, data.features[m].shape)))
            weights.append(w)
    if not graphs:
        data.feature("image", model)
    total = sum(weights)
    mixed = graphs[0] * (weights[0] / total)
    for w, g in zip(weights[1:], graphs[1:]):
        mixed = mixed + g * (w / total)
    return mixed.coalesce()


@register
class FREEDOM(Backbone):
    name = "freedom"
    Config = FREEDOMConfig

    def __init__(self, data, item_encoder, config: FREEDOMConfig):
        super().__init__(data, item_encoder, config)
        d = config.embedding_dim
        self.user = nn.Parameter(nn.init.xavier_uniform_(torch.empty(data.n_users, d)))
        self.register_buffer("item_adj", item_graph(data, config.knn_k, config.mm_image_weight, self.name),
                             persistent=False)
        self.register_buffer("norm_adj", normalized_adjacency(data.train), persistent=False)
        self.masked_adj = self.norm_adj
        coo = sp.csr_matrix(data.train).tocoo()
        deg_u = np.asarray(data.train.sum(axis=1)).ravel()
        deg_i = np.asarray(data.train.sum(axis=0)).ravel()
        self.register_buffer("edges", torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64)),
                             persistent=False)
        self.register_buffer(
            "edge_prob",
            torch.from_numpy((1.0 / np.sqrt(deg_u[coo.row] * deg_i[coo.col])).astype(np.float32)),
            persistent=False,
        )
        self.projections = nn.ModuleDict()
        self.raw = {}
        for m in ("image", "text"):
            if m in data.features:
                f = np.ascontiguousarray(data.features[m], dtype=np.float32)
                self.register_buffer(f"raw_{m}", torch.from_numpy(f), persistent=False)
                lin = nn.Linear(f.shape[1], d)
                nn.init.xavier_normal_(lin.weight)
                self.projections[m] = lin

    def on_epoch_start(self, epoch: int) -> None:
        self.masked_adj = self._pruned_adjacency()

    def _pruned_adjacency(self) -> torch.Tensor:
        if self.config.dropout <= 0.0:
            return self.norm_adj
        keep = max(1, int(self.edge_prob.numel() * (1.0 - self.config.dropout)))
        idx = torch.multinomial(self.edge_prob, keep, replacement=False)
        u, i = self.edges[:, idx]
        n = self.n_users + self.n_items
        rows = torch.cat([u, i + self.n_users])
        cols = torch.cat([i + self.n_users, u])
        deg = torch.zeros(n, device=rows.device).index_add_(0, rows, torch.ones_like(rows, dtype=torch.float32))
        inv = (deg + 1e-7).pow(-0.5)
        vals = inv[rows] * inv[cols]
        return sparse(torch.stack([rows, cols]), vals, (n, n))

    def forward(self, adj):
        x = self.item_encoder()
        h = x
        for _ in range(self.config.n_mm_layers):
            h = torch.sparse.mm(self.item_adj, h)
        out = propagate_mean(adj, torch.cat([self.user, x]), self.config.n_ui_layers)
        users, items = torch.split(out, [self.n_users, self.n_items])
        return users, items + h

    def loss(self, batch: Batch):
        users, items = self.forward(self.masked_adj)
        u = users[batch.users]
        loss = bpr_loss(dot_scores(u, items[batch.pos]), dot_scores(u, items[batch.neg]))
        if self.config.reg_weight:
            for m, proj in self.projections.items():
                f = proj(getattr(self, f"raw_{m}"))
                loss = loss + self.config.reg_weight * bpr_loss(
                    dot_scores(u, f[batch.pos]), dot_scores(u, f[batch.neg]))
        return loss

    def scorer(self):
        users, items = self.forward(self.norm_adj)
        return lambda idx: users[idx] @ items.T
