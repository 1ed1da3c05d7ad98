"""MGCN (Yu et al., ACM MM 2023): multi-view graph convolutional network, as ported by MMRec
(the authors' own code).

- Behaviour-guided purifier: per modality m, item view x * sigmoid(W_g f_m + b) with
  f_m = Linear(d_m -> 64)(frozen raw features) and x the item representation from the item encoder.
- Item-item view: n_layers hops over the modality's frozen top-k (knn_k = 10) cosine kNN graph
  (cosine-weighted, symmetrically normalised by row sums), then users = R_hat @ items, with R_hat
  the user-item block of the symmetric-normalised user-item adjacency.
- User-item view: LightGCN mean over layers 0..n_ui_layers of cat(users, x) ("content").
- Behaviour-aware fuser: attention weights softmax([q(img), q(txt)]) with q = Linear-Tanh-Linear
  give the common part c; modality-specific parts (m - c) are gated by sigmoid(Linear(content));
  side = (sep_img + sep_txt + c) / 3; final = content + side; score = dot product.
- Loss = BPR + reg_weight * 0.5 * (|u|^2 + |p|^2 + |n|^2) / batch + cl_loss * (InfoNCE(side items,
  content items) + InfoNCE(side users, content users)) on the batch (in-batch negatives,
  temperature 0.2).
- Learning-rate schedule: lr * 0.96^(epoch / 50) (MMRec's ``learning_rate_scheduler``).

Default cl_loss 0.01: the middle of MMRec's grid {0.001, 0.01, 0.1} (the search space).

Deviations from MMRec, documented in REPRODUCE.md:
- the item ID table is the item encoder;
- the raw feature tables are frozen buffers (MMRec wraps them in trainable nn.Embedding, a hidden
  per-item table);
- the L2 term divides by the actual batch length (MMRec divides by the configured batch size,
  2048, also for the last, shorter batch);
- kNN graphs are cached under the cache folder keyed by the feature contents (shared with FREEDOM,
  which uses the same top-k lists unweighted); MMRec writes them into the data folder keyed by k;
- MMRec's unused ``self.tau = 0.5`` is not kept (the contrastive temperature is 0.2 in its loss).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from backbones.base import Backbone, BackboneConfig, Batch, register
from backbones.graph import knn_graph, normalized_adjacency, propagate_mean, sym_normalize, to_torch_sparse
from backbones.losses import bpr_loss, dot_scores, l2_loss

MODALITIES = ("image", "text")


@dataclass(frozen=True)
class MGCNConfig(BackboneConfig):
    knn_k: int = 10
    n_layers: int = 1  # hops on the item-item graphs
    n_ui_layers: int = 2
    reg_weight: float = 1e-4
    cl_loss: float = 0.01
    cl_tau: float = 0.2
    lr_decay: float = 0.96
    lr_decay_step: int = 50
    search_space: ClassVar[Mapping[str, tuple]] = {"cl_loss": (0.001, 0.01, 0.1)}


def in_batch_info_nce(view1: Tensor, view2: Tensor, tau: float) -> Tensor:
    """mean_b -log(exp(cos(v1_b, v2_b)/tau) / sum_j exp(cos(v1_b, v2_j)/tau)), negatives in-batch."""
    a, b = F.normalize(view1, dim=1), F.normalize(view2, dim=1)
    logits = a @ b.T / tau
    return (torch.logsumexp(logits, dim=1) - logits.diagonal()).mean()


def _gate(d: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d, d), nn.Sigmoid())


@register
class MGCN(Backbone):
    name = "mgcn"
    Config = MGCNConfig
    modalities = MODALITIES

    def __init__(self, data, item_encoder, config: MGCNConfig):
        super().__init__(data, item_encoder, config)
        d = config.embedding_dim
        self.user = nn.Parameter(nn.init.xavier_uniform_(torch.empty(data.n_users, d)))
        self.register_buffer("norm_adj", normalized_adjacency(data.train), persistent=False)
        r = sp.csr_matrix(data.train, dtype=np.float32)
        r.data[:] = 1.0
        self.register_buffer("r_hat", to_torch_sparse(sym_normalize(r)), persistent=False)
        self.trs = nn.ModuleDict()
        self.gate = nn.ModuleDict()
        self.gate_prefer = nn.ModuleDict()
        for m in MODALITIES:
            f = np.ascontiguousarray(data.feature(m, self.name), dtype=np.float32)
            self.register_buffer(f"raw_{m}", torch.from_numpy(f), persistent=False)
            self.register_buffer(
                f"item_adj_{m}",
                knn_graph(f, config.knn_k, weighted=True, cache_dir=data.cache_dir,
                          cache_key=data.cache_key("knn", m, f.shape)),
                persistent=False,
            )
            self.trs[m] = nn.Linear(f.shape[1], d)
            self.gate[m] = _gate(d)
            self.gate_prefer[m] = _gate(d)
        self.query_common = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, 1, bias=False))

    def forward(self):
        c = self.config
        x = self.item_encoder()
        content = propagate_mean(self.norm_adj, torch.cat([self.user, x]), c.n_ui_layers)
        views = []
        for m in MODALITIES:
            h = x * self.gate[m](self.trs[m](getattr(self, f"raw_{m}")))
            adj = getattr(self, f"item_adj_{m}")
            for _ in range(c.n_layers):
                h = torch.sparse.mm(adj, h)
            views.append(torch.cat([torch.sparse.mm(self.r_hat, h), h]))
        img, txt = views
        w = torch.softmax(torch.cat([self.query_common(img), self.query_common(txt)], dim=-1), dim=-1)
        common = w[:, :1] * img + w[:, 1:] * txt
        sep_img = self.gate_prefer["image"](content) * (img - common)
        sep_txt = self.gate_prefer["text"](content) * (txt - common)
        side = (sep_img + sep_txt + common) / 3
        return content + side, side, content

    def loss(self, batch: Batch):
        c = self.config
        out, side, content = self.forward()
        users, items = torch.split(out, [self.n_users, self.n_items])
        u, p, n = users[batch.users], items[batch.pos], items[batch.neg]
        loss = bpr_loss(dot_scores(u, p), dot_scores(u, n)) + c.reg_weight * l2_loss(u, p, n)
        if c.cl_loss:
            s_u, s_i = torch.split(side, [self.n_users, self.n_items])
            c_u, c_i = torch.split(content, [self.n_users, self.n_items])
            cl = in_batch_info_nce(s_i[batch.pos], c_i[batch.pos], c.cl_tau) + \
                in_batch_info_nce(s_u[batch.users], c_u[batch.users], c.cl_tau)
            loss = loss + c.cl_loss * cl
        return loss

    def scorer(self):
        out, _, _ = self.forward()
        users, items = torch.split(out, [self.n_users, self.n_items])
        return lambda idx: users[idx] @ items.T
