"""DRAGON (Zhou et al., ECAI 2023): dual representations from the user-item graph plus homogeneous
user-user and item-item graphs, as ported by MMRec (the authors' own code).

- Heterogeneous graph, one branch per modality m (image, text): user preference P_m (U x 64,
  learnable); item input MLP_m(f_m) + e with MLP_m = Linear(d_m, 256) -> leaky_relu ->
  Linear(256, 64) on the frozen raw features f_m and e the item representation (see "ID arm");
  X_m = row-L2-normalise(cat(P_m, items)); R_m = X_m + A X_m + A^2 X_m (n_layers = 2 hops of the
  symmetric-normalised user-item graph A, ``aggr_mode = add``).
- Attentive concatenation: user = cat_m(w_{u,m} R_m[u]) with w (U x M x 1) learnable, initialised
  as a softmax over modalities; item = cat_m(R_m[i]) (128-d with both modalities).
- Item-item graph: S = 0.1 * S_image + 0.9 * S_text, each a binary top-k (k = 10) cosine kNN graph
  of the raw features, symmetrically normalised; frozen. item <- item + S^n_mm_layers item.
- User-user graph: each user's top-40 users by shared train items, softmax weights over the counts
  (reused from ``backbones.dualgnn``: the same construction as DualGNN's); user <- user + G user.
- Score = dot product; loss = -mean(log2 sigmoid(s_pos - s_neg))
  + reg_weight * (sum_m mean(P_m[batch users]^2) + mean(w^2)).

ID arm. Like DualGNN, MMRec's port has no item ID embedding (``has_id`` is passed and never
used): items come from features only. We use the same definition as our DualGNN: the item
encoder's 64-d vector is added to the projected features in every modality branch before the row
normalisation. In the MOTOR arm MOTOR's encoder output takes that place.

Defaults: MMRec's DRAGON.yaml fixes n_layers 2, n_mm_layers 1, knn_k 10, mm_image_weight 0.1,
aggr_mode add and gives the grid learning_rate x reg_weight {0.1 ... 1e-5} (the search space).
The defaults are the authors' published settings (README of hongyurain/DRAGON): learning_rate
1e-4, reg_weight 1e-3 for Baby and Sports; Clothing uses reg_weight 0.1, given as data in
``DRAGONConfig.dataset_defaults`` (applied by the harness before explicit overrides).

Deviations from MMRec, documented in REPRODUCE.md:
- the user-user graph is DualGNN's (built from the train split with sparse products, cached under
  the cache folder; a user with fewer than 40 co-occurring users aggregates over the ones it has
  instead of MMRec's random re-drawn duplicates); MMRec loads ``user_graph_dict.npy`` from the data
  folder;
- the raw feature tables are frozen buffers (MMRec wraps them in trainable nn.Embedding);
- scores are recomputed at evaluation (MMRec scores from ``result_embed`` cached during the last
  training batch);
- the unused modality-dropout edge lists, ``weight_i`` (regularised only under another
  construction) and ``MLP_v``/``MLP_t``/``MLP_user`` (never used) are not built;
- the item kNN graphs are cached under the cache folder keyed by the feature contents (shared with
  FREEDOM); MMRec writes ``mm_adj_10.pt`` into the data folder keyed by k only.

Implementation notes (no effect on the result): the modality branches (preference tables, item
MLPs, modality weights and the loss) are ``dualgnn.ModalityBranches``, shared with DualGNN; the
three fixed graphs are CSR with stored transposes (``graph.register_csr_pair``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import torch

from backbones.base import Backbone, BackboneConfig, Batch, register
from backbones.dualgnn import ModalityBranches, register_user_graphs
from backbones.freedom import item_graph
from backbones.graph import propagate_csr, propagate_sum_csr, register_csr_pair


@dataclass(frozen=True)
class DRAGONConfig(BackboneConfig):
    learning_rate: float = 1e-4  # the authors' setting for all three datasets
    reg_weight: float = 1e-3
    aggr_mode: str = "add"
    n_layers: int = 2  # hops on the user-item graph
    n_mm_layers: int = 1  # hops on the item-item graph
    knn_k: int = 10
    mm_image_weight: float = 0.1
    user_k: int = 40  # neighbours per user in the co-occurrence graph
    mlp_hidden: int = 256  # 4 x the latent size, as in MMRec
    search_space: ClassVar[Mapping[str, tuple]] = {
        "aggr_mode": ("add",),
        "learning_rate": (0.1, 0.01, 1e-3, 1e-4, 1e-5),
        "reg_weight": (0.1, 0.01, 1e-3, 1e-4, 1e-5),
    }
    dataset_defaults: ClassVar[Mapping[str, Mapping[str, Any]]] = {"clothing": {"reg_weight": 0.1}}

    def __post_init__(self):
        if self.aggr_mode not in ("add", "mean"):
            raise ValueError(f"DRAGONConfig.aggr_mode: expected 'add' or 'mean', got {self.aggr_mode!r}")
        if self.n_layers < 0 or self.n_mm_layers < 0 or self.user_k < 1:
            raise ValueError("DRAGONConfig: n_layers and n_mm_layers must be >= 0 and user_k >= 1")


@register
class DRAGON(Backbone):
    name = "dragon"
    Config = DRAGONConfig

    def __init__(self, data, item_encoder, config: DRAGONConfig):
        super().__init__(data, item_encoder, config)
        register_user_graphs(self, data, config.aggr_mode, config.user_k)
        register_csr_pair(self, "item_adj", item_graph(data, config.knn_k, config.mm_image_weight, self.name))
        self.branches = ModalityBranches(data, self.name, config.embedding_dim, config.mlp_hidden)

    def forward(self):
        c = self.config
        users, items = [], []
        for k, x in enumerate(self.branches.inputs(self.item_encoder())):
            out = propagate_sum_csr(self.adj, self.adj_t, x, c.n_layers)
            users.append(self.branches.weight_u[:, k] * out[: self.n_users])
            items.append(out[self.n_users:])
        users, items = torch.cat(users, dim=1), torch.cat(items, dim=1)
        h = items
        for _ in range(c.n_mm_layers):
            h = propagate_csr(self.item_adj, self.item_adj_t, h)
        return users + propagate_csr(self.uu_graph, self.uu_graph_t, users), items + h

    def loss(self, batch: Batch):
        return self.branches.loss(*self.forward(), batch, self.config.reg_weight)

    def scorer(self):
        users, items = self.forward()
        return lambda idx: users[idx] @ items.T
