"""LATTICE (Zhang et al., ACM MM 2021, "Mining Latent Structures for Multimedia Recommendation").

Architecture (MMRec's port with cf_model = lightgcn, which follows the authors' code):

- Initial item graphs: per modality a top-k (k = knn_k = 10) cosine kNN graph of the frozen raw
  features, weighted by the cosine values and symmetrically normalised by row sums
  (d_i^-1/2 a_ij d_j^-1/2); built once and cached on disk keyed by the feature contents.
- Learned item graphs: per modality the raw features are projected by a learnable
  Linear(d_m -> feat_embed_dim); the top-k cosine neighbours of the projected features give a
  weighted kNN graph. The modalities are mixed with learnable weights softmax(modal_weight):
  S = lambda * sum_m w_m S_init_m + (1 - lambda) * norm(sum_m w_m S_learned_m),
  lambda = lambda_coeff = 0.9, norm = symmetric normalisation by row sums.
- Item-graph convolution: h = S^L x (L = n_layers = 1), x = the item representation.
- CF model: LightGCN over the user-item graph, with the authors' adjacency D^-1 (A + I)
  (row-normalised, self-loops) and n_ui_layers = 2 (MMRec's weight_size [64, 64]); layer mean.
- Final item = LightGCN item + l2-normalise(h); loss = BPR + reg_weight * 0.5 * squared norms of
  the batch's propagated user/positive/negative embeddings / batch size. Adam with the
  learning-rate schedule 0.96 ** (epoch / 50) (learning_rate_scheduler [0.96, 50]).

Deviations from MMRec / the authors' code, and why:

- The raw feature tables are frozen buffers. MMRec (and the authors' code) wrap them in
  trainable nn.Embedding, which fine-tunes the 4096-d tables: a hidden per-item table that would
  survive in the ID-free MOTOR arm and costs 23k x 4096 parameters on Clothing.
- The learned item graph is a SPARSE top-k graph (graph.topk_cosine in row chunks); MMRec builds
  dense n_items x n_items similarity and adjacency matrices. Propagation over its learnable edge
  values goes through graph.spmm_edges, whose backward computes the values' gradient edge by
  edge (torch.sparse.mm's own backward would form a dense n_items x n_items product).
- When the learned graph is rebuilt: MMRec rebuilds it (with gradients) on the first batch of an
  epoch, detaches it for the other batches (so the projections and modal weights learn from one
  batch per epoch) and rebuilds it once per evaluation *batch* in full_sort_predict. Here the
  top-k neighbour lists are chosen once per epoch (on_epoch_start) and once per evaluation
  (scorer()); on every training step the kept edges' values (cosine of the projected features)
  and the modal mixture are recomputed differentiably from the current projections, so the
  projections and the modal weights receive gradients on every step (n_items * k dot products).
- The L2 term is divided by the actual batch size (MMRec divides by the configured batch size;
  identical except for the last, smaller batch).
- The degree of the learned graph is clamped at a tiny positive value before ^-1/2 (the authors'
  code only zeroes infinities; a row sum <= 0 would give NaN).
- Field defaults follow the authors' code (learning rate 5e-4, regularisation 1e-5), both inside
  MMRec's grid; with a single available modality its weight is 1.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, Mapping, Optional

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from backbones.base import Backbone, BackboneConfig, Batch, register
from backbones.graph import (bipartite, knn_graph, propagate_mean, row_normalize, spmm_edges, to_torch_sparse,
                             topk_cosine)
from backbones.losses import bpr_loss, dot_scores, l2_loss

_EPS = 1e-7


@dataclass(frozen=True)
class LATTICEConfig(BackboneConfig):
    learning_rate: float = 5e-4
    feat_embed_dim: int = 64
    knn_k: int = 10
    lambda_coeff: float = 0.9  # weight of the initial (raw-feature) graph
    n_layers: int = 1  # item-graph convolutions
    n_ui_layers: int = 2  # LightGCN layers (MMRec weight_size [64, 64])
    reg_weight: float = 1e-5
    lr_decay: float = 0.96
    lr_decay_step: int = 50
    search_space: ClassVar[Mapping[str, tuple]] = {
        "reg_weight": (0.0, 1e-5, 1e-4, 1e-3),
        "learning_rate": (1e-4, 5e-4, 1e-3, 5e-3),
    }


def row_normalized_adjacency(train: sp.spmatrix) -> Tensor:
    """The authors' user-item adjacency D^-1 (A + I): row-normalised, with self-loops."""
    a = bipartite(train) + sp.eye(train.shape[0] + train.shape[1], dtype=np.float32, format="csr")
    return to_torch_sparse(row_normalize(a))


@register
class LATTICE(Backbone):
    name = "lattice"
    Config = LATTICEConfig

    def __init__(self, data, item_encoder, config: LATTICEConfig):
        super().__init__(data, item_encoder, config)
        d = config.embedding_dim
        self.mods = data.present_modalities(self.name)
        self.user = nn.Parameter(nn.init.xavier_uniform_(torch.empty(data.n_users, d)))
        self.register_buffer("norm_adj", row_normalized_adjacency(data.train), persistent=False)
        self.projections = nn.ModuleDict()
        for m in self.mods:
            f = np.ascontiguousarray(data.features[m], dtype=np.float32)
            self.register_buffer(f"raw_{m}", torch.from_numpy(f), persistent=False)
            self.register_buffer(
                f"init_{m}",
                knn_graph(f, config.knn_k, weighted=True, cache_dir=data.cache_dir,
                          cache_key=data.cache_key("knn", m, f.shape)),
                persistent=False,
            )
            self.projections[m] = nn.Linear(f.shape[1], config.feat_embed_dim)
        self.modal_weight = nn.Parameter(torch.full((len(self.mods),), 0.5))
        self._epoch_neighbours: Optional[dict[str, Tensor]] = None
        self.graph_builds = 0  # how many times learned top-k neighbour lists were chosen

    # ---------------------------------------------------------------- item graph

    def projected(self) -> dict[str, Tensor]:
        return {m: self.projections[m](getattr(self, f"raw_{m}")) for m in self.mods}

    def learned_neighbours(self, feats: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Each item's k most cosine-similar items per modality, (n_items, k) indices; no grad."""
        self.graph_builds += 1
        with torch.no_grad():
            return {m: topk_cosine(feats[m].detach(), self.config.knn_k)[0] for m in self.mods}

    def learned_entries(self, feats: Mapping[str, Tensor], neighbours: Mapping[str, Tensor]):
        """Unnormalised learned kNN graph per modality as (rows, cols, cosine values); the
        values are differentiable functions of the projected features."""
        out = {}
        for m in self.mods:
            x = F.normalize(feats[m], dim=1)
            idx = neighbours[m]
            vals = (x.unsqueeze(1) * x[idx]).sum(-1)  # (n, k)
            rows = torch.arange(self.n_items, device=idx.device).repeat_interleave(idx.shape[1])
            out[m] = (rows, idx.reshape(-1), vals.reshape(-1))
        return out

    def item_propagator(self, feats: Mapping[str, Tensor], neighbours: Mapping[str, Tensor]
                        ) -> Callable[[Tensor], Tensor]:
        """x -> S x for S = lambda * sum_m w_m S_init_m + (1 - lambda) * norm(sum_m w_m S_learned_m).

        S stays in sparse pieces: the learned part as edge lists whose values are differentiable
        (graph.spmm_edges), the initial graphs as fixed sparse tensors scaled by their weights."""
        lam = self.config.lambda_coeff
        w = torch.softmax(self.modal_weight, dim=0)
        entries = self.learned_entries(feats, neighbours)
        rows = torch.cat([entries[m][0] for m in self.mods])
        cols = torch.cat([entries[m][1] for m in self.mods])
        vals = torch.cat([w[j] * entries[m][2] for j, m in enumerate(self.mods)])
        deg = torch.zeros(self.n_items, device=vals.device, dtype=vals.dtype).index_add(0, rows, vals)
        inv = deg.clamp_min(_EPS).pow(-0.5)
        learned = (1.0 - lam) * inv[rows] * vals * inv[cols]
        init = [(lam * w[j], getattr(self, f"init_{m}")) for j, m in enumerate(self.mods)]

        def apply(x: Tensor) -> Tensor:
            out = spmm_edges(rows, cols, learned, x, self.n_items)
            for weight, graph in init:
                out = out + weight * torch.sparse.mm(graph, x)
            return out

        return apply

    def on_epoch_start(self, epoch: int) -> None:
        # top-k neighbour lists fixed for this epoch; their values stay differentiable per step
        self._epoch_neighbours = self.learned_neighbours(self.projected())

    # ---------------------------------------------------------------- model

    def forward(self, item_graph: Callable[[Tensor], Tensor]):
        x = self.item_encoder()
        h = x
        for _ in range(self.config.n_layers):
            h = item_graph(h)
        out = propagate_mean(self.norm_adj, torch.cat([self.user, x]), self.config.n_ui_layers)
        users, items = torch.split(out, [self.n_users, self.n_items])
        return users, items + F.normalize(h, p=2, dim=1)

    def loss(self, batch: Batch):
        feats = self.projected()
        if self._epoch_neighbours is None:
            self._epoch_neighbours = self.learned_neighbours(feats)
        users, items = self.forward(self.item_propagator(feats, self._epoch_neighbours))
        u, p, n = users[batch.users], items[batch.pos], items[batch.neg]
        return bpr_loss(dot_scores(u, p), dot_scores(u, n)) + self.config.reg_weight * l2_loss(u, p, n)

    def scorer(self):
        feats = self.projected()
        users, items = self.forward(self.item_propagator(feats, self.learned_neighbours(feats)))
        return lambda idx: users[idx] @ items.T
