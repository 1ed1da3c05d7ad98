"""LGMRec (Guo et al., AAAI 2024): local and global graph learning for multimodal recommendation,
as ported by MMRec (``models/lgmrec.py``, which is the authors' own code).

Local embeddings
- CGE, collaborative graph embedding: LightGCN (mean over layers 0..n_ui_layers) over the
  symmetric-normalised user-item graph, starting from cat(user table, item representation from the
  item encoder); ``cf_model="mf"`` skips propagation.
- MGE, modality graph embedding (per modality m in image, text): items f_m = X_m W_m (frozen raw
  features, bias-free projection to feat_embed_dim); users = mean of their train items' f_m; then
  n_mm_layers propagations over the same normalised user-item graph (last layer only, as in the
  port). Local = CGE + normalize(MGE_image) + normalize(MGE_text).

Global embeddings (hypergraph)
- Per modality, hyper_num learnable hyperedge vectors V_m (d_m x hyper_num). Item-hyperedge logits
  H_i = X_m V_m; user-hyperedge logits H_u = R H_i (R the binary train matrix). Both pass through a
  Gumbel-softmax with temperature tau over the hyperedges, then dropout with keep probability
  keep_rate.
- n_hyper_layer rounds of  L = H_i^T E_i;  E_i <- H_i L;  E_u = H_u L,  starting from the CGE item
  embeddings. Global = normalize(hyper(image) + hyper(text)) over users and items.
- Final = local + alpha * global; score = dot product.

Loss = BPR + cl_weight * hypergraph contrastive loss (InfoNCE, temperature tau, between the image
and text hyperedge embeddings of the batch users against all users, and of the batch positive
items against all items; summed over the batch as in the port) + reg_weight * EmbLoss of the
final batch user / positive / negative embeddings.

Per-dataset settings (the authors' published runs) are data: ``LGMRecConfig.dataset_defaults``
(Baby and Clothing from MMRec / the paper, Sports from the authors' released Sports log); the
harness applies them before any explicit override.

Deviations from MMRec, documented in REPRODUCE.md:
- the item ID table ``item_id_embedding`` is replaced by the item encoder (ID arm: the same
  Xavier-initialised table; MOTOR arm: MOTOR's ID-free encoder);
- in eval mode the Gumbel noise is off (hyperedge assignment = softmax(logits / tau)) and the
  hypergraph dropout is off; the port samples Gumbel noise in ``full_sort_predict`` too, which makes
  its evaluation scores random;
- the contrastive loss uses the log-sum-exp form of -log(exp(s_pos) / sum exp(s_all)) (the same
  value, numerically stable), with a hand-written backward that keeps one (batch x n_users)
  matrix instead of autograd's chain of them (the term dominates the step time on CPU);
- the image projection W and hyperedge matrix V of a modality are applied in one product
  X_m [W_m | V_m] (identical result; one pass over the raw feature table instead of two).
The raw feature tables are frozen buffers, as in the port (``freeze=True``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from backbones.base import Backbone, BackboneConfig, Batch, register
from backbones.graph import normalized_adjacency, propagate_mean, to_torch_sparse
from backbones.losses import bpr_loss, dot_scores, emb_loss

MODALITIES = ("image", "text")


@dataclass(frozen=True)
class LGMRecConfig(BackboneConfig):
    feat_embed_dim: int = 64
    cf_model: str = "lightgcn"  # "lightgcn" or "mf"
    n_ui_layers: int = 2
    n_mm_layers: int = 2
    n_hyper_layer: int = 1
    hyper_num: int = 4
    keep_rate: float = 0.5
    alpha: float = 0.3
    cl_weight: float = 1e-4
    reg_weight: float = 1e-6
    tau: float = 0.2  # Gumbel-softmax and contrastive temperature (hard-coded 0.2 in the port)
    # MMRec's LGMRec.yaml fixes one value per key; the space is the union of the authors'
    # published per-dataset settings (Baby, Sports, Clothing).
    search_space: ClassVar[Mapping[str, tuple]] = {
        "n_hyper_layer": (1, 2, 4),
        "hyper_num": (4, 64),
        "keep_rate": (0.2, 0.4, 0.5),
        "alpha": (0.2, 0.3, 0.6),
    }
    # dataset name -> overrides of the defaults above (applied by the harness before --set values)
    dataset_defaults: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "baby": {"n_hyper_layer": 1, "hyper_num": 4, "keep_rate": 0.5, "alpha": 0.3},
        "sports": {"n_hyper_layer": 4, "hyper_num": 4, "keep_rate": 0.4, "alpha": 0.6},
        "clothing": {"n_hyper_layer": 2, "hyper_num": 64, "keep_rate": 0.2, "alpha": 0.2},
    }

    def __post_init__(self):
        if self.cf_model not in ("lightgcn", "mf"):
            raise ValueError(f"LGMRecConfig.cf_model: expected 'lightgcn' or 'mf', got {self.cf_model!r}")
        if not 0.0 < self.keep_rate <= 1.0:
            raise ValueError(f"LGMRecConfig.keep_rate: expected a value in (0, 1], got {self.keep_rate}")
        if self.hyper_num < 1 or self.n_hyper_layer < 1:
            raise ValueError("LGMRecConfig: hyper_num and n_hyper_layer must be >= 1, got "
                             f"{self.hyper_num}, {self.n_hyper_layer}")
        if self.tau <= 0:
            raise ValueError(f"LGMRecConfig.tau: expected > 0, got {self.tau}")


def hypergraph_pass(h_item: Tensor, h_user: Tensor, item_emb: Tensor, n_layers: int) -> tuple[Tensor, Tensor]:
    """``n_layers`` rounds of hyperedge aggregation: L = H_i^T E; E <- H_i L; U = H_u L."""
    e, u = item_emb, None
    for _ in range(n_layers):
        lat = h_item.T @ e
        e = h_item @ lat
        u = h_user @ lat
    return u, e


class _RowLogSumExpOfProduct(torch.autograd.Function):
    """log sum_j exp(a_i . x_j) for every row i of ``a``, without keeping autograd's chain of
    (B x N) intermediates: the forward keeps one (B x N) softmax matrix, the backward reuses it in
    place (so it supports a single backward pass)."""

    @staticmethod
    def forward(ctx, a: Tensor, x: Tensor) -> Tensor:
        s = a @ x.T
        top = s.amax(dim=1, keepdim=True)
        s.sub_(top).exp_()
        z = s.sum(dim=1, keepdim=True)
        ctx.save_for_backward(a, x, s.div_(z))
        ctx.spent = False
        return (z.log_() + top).squeeze(1)

    @staticmethod
    def backward(ctx, grad: Tensor):
        if ctx.spent:
            raise RuntimeError("the contrastive term supports one backward pass only")
        ctx.spent = True
        a, x, p = ctx.saved_tensors
        d = p.mul_(grad.unsqueeze(1))  # d loss / d (a x^T), written over the softmax
        return d @ x, d.T @ a


def info_nce_sum(anchor: Tensor, positive: Tensor, everything: Tensor, tau: float) -> Tensor:
    """sum_b -log(exp(cos(a_b, p_b)/tau) / sum_j exp(cos(a_b, x_j)/tau)) (the port's triple loss)."""
    a = F.normalize(anchor) / tau
    p, x = F.normalize(positive), F.normalize(everything)
    return (_RowLogSumExpOfProduct.apply(a, x) - (a * p).sum(dim=1)).sum()


@register
class LGMRec(Backbone):
    name = "lgmrec"
    Config = LGMRecConfig
    modalities = MODALITIES

    def __init__(self, data, item_encoder, config: LGMRecConfig):
        super().__init__(data, item_encoder, config)
        d, f = config.embedding_dim, config.feat_embed_dim
        if f != d:
            raise ValueError(f"lgmrec: feat_embed_dim ({f}) must equal embedding_dim ({d}); "
                             "the local embedding adds the two")
        self.user = nn.Parameter(nn.init.xavier_uniform_(torch.empty(data.n_users, d)))
        train = sp.csr_matrix(data.train, dtype=np.float32)
        train.data[:] = 1.0
        deg = np.asarray(train.sum(axis=1)).ravel()
        user_mean = sp.diags(1.0 / (deg + 1e-7)).astype(np.float32) @ train
        self.register_buffer("norm_adj", normalized_adjacency(train), persistent=False)
        self.register_buffer("inter", to_torch_sparse(train), persistent=False)
        self.register_buffer("user_mean", to_torch_sparse(user_mean), persistent=False)
        self.proj = nn.ParameterDict()
        self.hyper = nn.ParameterDict()
        for m in MODALITIES:
            x = np.ascontiguousarray(data.feature(m, self.name), dtype=np.float32)
            self.register_buffer(f"raw_{m}", torch.from_numpy(x), persistent=False)
            self.proj[m] = nn.Parameter(nn.init.xavier_uniform_(torch.empty(x.shape[1], f)))
            self.hyper[m] = nn.Parameter(nn.init.xavier_uniform_(torch.empty(x.shape[1], config.hyper_num)))

    def _assign(self, logits: Tensor) -> Tensor:
        """Soft hyperedge assignment: Gumbel-softmax while training, its noise-free mode in eval."""
        tau = self.config.tau
        if self.training:
            return F.gumbel_softmax(logits, tau=tau, hard=False, dim=1)
        return torch.softmax(logits / tau, dim=1)

    def _drop(self, h: Tensor) -> Tensor:
        return F.dropout(h, p=1.0 - self.config.keep_rate, training=self.training)

    def forward(self):
        c = self.config
        x = self.item_encoder()
        ego = torch.cat([self.user, x])
        cge = propagate_mean(self.norm_adj, ego, c.n_ui_layers if c.cf_model == "lightgcn" else 0)
        cge_items = cge[self.n_users:]
        local, ghe, hyper = cge, 0.0, {}
        for m in MODALITIES:
            both = getattr(self, f"raw_{m}") @ torch.cat([self.proj[m], self.hyper[m]], dim=1)
            item_feats, item_logits = both[:, : c.feat_embed_dim], both[:, c.feat_embed_dim:]
            # MGE: users = mean of their items' projected features, then n_mm_layers hops
            mge = torch.cat([torch.sparse.mm(self.user_mean, item_feats), item_feats])
            for _ in range(c.n_mm_layers):
                mge = torch.sparse.mm(self.norm_adj, mge)
            local = local + F.normalize(mge)
            # GHE: hyperedge dependencies, then hypergraph message passing
            user_logits = torch.sparse.mm(self.inter, item_logits)
            h_item, h_user = self._drop(self._assign(item_logits)), self._drop(self._assign(user_logits))
            u_h, i_h = hypergraph_pass(h_item, h_user, cge_items, c.n_hyper_layer)
            hyper[m] = (u_h, i_h)
            ghe = ghe + torch.cat([u_h, i_h])
        out = local + c.alpha * F.normalize(ghe)
        users, items = torch.split(out, [self.n_users, self.n_items])
        return users, items, hyper

    def loss(self, batch: Batch):
        c = self.config
        users, items, hyper = self.forward()
        u, p, n = users[batch.users], items[batch.pos], items[batch.neg]
        loss = bpr_loss(dot_scores(u, p), dot_scores(u, n))
        if c.cl_weight:
            (uv, iv), (ut, it) = hyper["image"], hyper["text"]
            cl = info_nce_sum(uv[batch.users], ut[batch.users], ut, c.tau) + \
                info_nce_sum(iv[batch.pos], it[batch.pos], it, c.tau)
            loss = loss + c.cl_weight * cl
        if c.reg_weight:
            loss = loss + c.reg_weight * emb_loss(u, p, n)
        return loss

    def scorer(self):
        users, items, _ = self.forward()
        return lambda idx: users[idx] @ items.T
