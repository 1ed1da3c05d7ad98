"""DualGNN (Wang et al., IEEE TMM 2021): per-modality graph learning on the user-item graph, then
personalised modality fusion refined on a user-user co-occurrence graph.

Architecture (MMRec's port, ``construction = weighted_sum``, checked against the authors' code):
- Single-modal representation learning, one branch per modality m (image, text):
  user preference P_m (U x 64, learnable); item input x_{i,m} = MLP_m(f_{i,m}) + e_i with
  MLP_m = Linear(d_m, 256) -> leaky_relu -> Linear(256, 64) on the frozen raw features f_m and
  e_i the item representation from the item encoder (see "ID arm" below);
  X_m = row-L2-normalise(concat(P_m, x_m)); R_m = X_m + A X_m + A^2 X_m (n_layers = 2 hops,
  summed) with A the user-item graph: ``aggr_mode = add`` -> D^-1/2 A D^-1/2, ``mean`` -> D^-1 A.
- Multi-modal fusion: user u = sum_m alpha_{u,m} R_m[u] with alpha (U x M x 1) learnable,
  initialised as a softmax over modalities; item i = sum_m R_m[i].
- User co-occurrence graph: each user's top-40 users by number of shared *train* items (self
  excluded), edge weights = softmax of those counts over the user's neighbours;
  u <- u + sum_j w_uj u_j.
- Score = dot(u, i); loss = -mean(log2 sigmoid(s_pos - s_neg))
  + reg_weight * (sum_m mean(P_m[batch users]^2) + mean(alpha^2)).

ID arm. MMRec's port and the authors' code have no item ID embedding: items come from features
only (the authors pass ``has_id`` but never use it). The paper's text could not be read here;
the project reference says the paper combines an item ID embedding with the projected features.
Our definition of that combination (not verified against the paper's equations): the item
encoder's 64-d vector is *added* to the projected features in every modality branch, before the
row normalisation (one vector per item shared by the branches, the way MMGCN adds its ID
embedding). In the MOTOR arm the MOTOR encoder's output takes that place; everything else is
identical between the arms.

Deviations from MMRec, each for a reason:
- the user-user graph is built from the train split with sparse products (R R^T in row chunks,
  vectorised per-row top-k) and cached under the cache folder keyed by the data fingerprint
  (which covers the train split); MMRec loads a pre-computed ``user_graph_dict.npy`` from the
  data folder, built by an O(U^2) Python loop;
- a user with fewer than 40 co-occurring users aggregates over the ones it has (softmax over
  those); MMRec pads the list by re-drawing random duplicates every epoch, which re-weights
  neighbours at random. Ties in the count are broken by the lower user index (MMRec: whatever
  ``torch.topk`` returns);
- the per-item fusion weight ``weight_i`` is dropped: MMRec only regularises it, it never enters
  a score, and it would be a hidden per-item table in the MOTOR arm;
- the unused modality-dropout edge lists (``edge_index_dropv/t``, built but never used by the
  port) are not built;
- scores are recomputed at evaluation (MMRec scores from ``result_embed`` cached during the last
  training batch);
- ``n_layers`` is honoured (MMRec always runs two convolutions); the default 2 is MMRec's;
- defaults for the grid parameters are the authors' (lr 1e-4, reg_weight 0.1; MMRec states only
  the grid). On Baby, lr 1e-4 beat lr 1e-3 on valid Recall@20 (0.0755 vs 0.0653 within 12 epochs).

Implementation notes (no effect on the result): the modality branches share the user-item
graph, so they are propagated side by side as one (U + I) x (M * 64) matrix; graphs are kept in
CSR layout with their transposes, so forward and backward are plain CSR x dense products (about
twice as fast as COO products on CPU).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Mapping

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from backbones.base import Backbone, BackboneConfig, Batch, register
from backbones.cache import load_or_build
from backbones.graph import (bipartite, propagate_csr, propagate_sum_csr, register_csr_pair, row_normalize, sparse,
                             sym_normalize, to_torch_sparse)
from backbones.losses import dot_scores, log2_bpr_loss, preference_reg

AGGR_MODES = ("add", "mean")


@dataclass(frozen=True)
class DualGNNConfig(BackboneConfig):
    learning_rate: float = 1e-4  # the authors' default (MMRec only gives the grid)
    reg_weight: float = 0.1  # the authors' default (their ``weight_decay`` is this weight)
    aggr_mode: str = "add"
    n_layers: int = 2
    user_k: int = 40  # neighbours per user in the co-occurrence graph
    mlp_hidden: int = 256  # 4 x the latent size, as in MMRec
    search_space: ClassVar[Mapping[str, tuple]] = {
        "aggr_mode": ("add",),
        "learning_rate": (0.1, 0.01, 1e-3, 1e-4, 1e-5),
        "reg_weight": (0.1, 0.01, 1e-3, 1e-4, 1e-5),
    }

    def __post_init__(self):
        if self.aggr_mode not in AGGR_MODES:
            raise ValueError(f"DualGNNConfig.aggr_mode: expected one of {AGGR_MODES}, got {self.aggr_mode!r}")
        if self.n_layers < 0 or self.user_k < 1:
            raise ValueError(f"DualGNNConfig: n_layers must be >= 0 and user_k >= 1, got {self.n_layers}, {self.user_k}")


def cooccurrence_topk(train: sp.spmatrix, k: int, max_chunk_nnz: int = 2_000_000):
    """Each user's k users sharing the most train items (self excluded; ties -> lower index).

    Returns (rows, cols, counts) as int64/int64/float32 arrays sorted by row, then by decreasing
    count. R R^T is formed in row chunks whose product size is bounded by ``max_chunk_nnz``
    (upper bound: the sum of the item degrees of the chunk's interactions), so memory stays
    bounded on large data; the top-k selection is a vectorised sort within each chunk.
    """
    r = sp.csr_matrix(train, dtype=np.float32, copy=True)
    r.sum_duplicates()
    r.data[:] = 1.0
    rt = r.T.tocsr()
    n = r.shape[0]
    item_deg = np.diff(rt.indptr).astype(np.int64)
    work = np.cumsum(np.asarray(r @ item_deg).ravel().astype(np.int64))  # bound on row-product nnz
    rows_out, cols_out, vals_out = [], [], []
    start = 0
    while start < n:
        base = work[start - 1] if start else 0
        end = int(np.searchsorted(work, base + max_chunk_nnz, side="right"))
        end = min(max(end, start + 1), n)
        c = (r[start:end] @ rt).tocsr()
        rows = np.repeat(np.arange(end - start, dtype=np.int64), np.diff(c.indptr))
        cols = c.indices.astype(np.int64)
        vals = c.data
        keep = (cols != rows + start) & (vals > 0)
        rows, cols, vals = rows[keep], cols[keep], vals[keep]
        order = np.lexsort((cols, -vals, rows))
        rows, cols, vals = rows[order], cols[order], vals[order]
        counts = np.bincount(rows, minlength=end - start)
        first = np.cumsum(counts) - counts
        rank = np.arange(len(rows)) - first[rows]
        sel = rank < k
        rows_out.append(rows[sel] + start)
        cols_out.append(cols[sel])
        vals_out.append(vals[sel].astype(np.float32))
        start = end
    if not rows_out:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), np.zeros(0, dtype=np.float32)
    return np.concatenate(rows_out), np.concatenate(cols_out), np.concatenate(vals_out)


def user_graph(data, k: int) -> torch.Tensor:
    """The (U x U) co-occurrence graph with per-row softmax weights over the top-k counts.

    Cached under ``dualgnn-uu`` keyed by ``data.cache_key("dualgnn-uu", k)`` (the fingerprint covers
    the train split); without a fingerprint the graph is rebuilt rather than cached.
    """

    def build() -> dict[str, np.ndarray]:
        rows, cols, counts = cooccurrence_topk(data.train, k)
        return {"rows": rows, "cols": cols, "counts": counts}

    cache_dir = data.cache_dir if data.fingerprint else None
    arrays = load_or_build(cache_dir, "dualgnn-uu", data.cache_key("dualgnn-uu", k), build)
    rows = torch.from_numpy(arrays["rows"].astype(np.int64))
    cols = torch.from_numpy(arrays["cols"].astype(np.int64))
    counts = torch.from_numpy(arrays["counts"].astype(np.float32))
    n = data.n_users
    # softmax over each row's neighbours: subtract the row max for stability
    row_max = torch.full((n,), -math.inf).scatter_reduce(0, rows, counts, reduce="amax")
    w = torch.exp(counts - row_max[rows])
    w = w / torch.zeros(n).index_add_(0, rows, w)[rows]
    return sparse(torch.stack([rows, cols]), w, (n, n))


def user_item_graph(train: sp.spmatrix, aggr_mode: str) -> torch.Tensor:
    """``add``: D^-1/2 A D^-1/2; ``mean``: D^-1 A, over the symmetric user-item graph."""
    a = bipartite(train)
    return to_torch_sparse(sym_normalize(a) if aggr_mode == "add" else row_normalize(a))


def register_user_graphs(module: nn.Module, data, aggr_mode: str, user_k: int) -> None:
    """The two fixed graphs DualGNN and DRAGON share, as CSR pairs: ``adj`` (user-item) and
    ``uu_graph`` (top-k user co-occurrence)."""
    register_csr_pair(module, "adj", user_item_graph(data.train, aggr_mode))
    register_csr_pair(module, "uu_graph", user_graph(data, user_k))


class ModalityBranches(nn.Module):
    """The per-modality inputs DualGNN and DRAGON share: frozen raw features, a learnable user
    preference table P_m and an item MLP_m per modality, plus the per-user modality weights
    alpha (U x M x 1, softmax-initialised as in MMRec, free parameters afterwards)."""

    def __init__(self, data, model_name: str, d: int, hidden: int):
        super().__init__()
        self.mods = data.present_modalities(model_name)
        self.preference = nn.ParameterDict()
        self.mlp = nn.ModuleDict()
        for m in self.mods:
            f = np.ascontiguousarray(data.features[m], dtype=np.float32)
            self.register_buffer(f"raw_{m}", torch.from_numpy(f), persistent=False)
            self.preference[m] = nn.Parameter(nn.init.xavier_normal_(torch.empty(data.n_users, d)))
            self.mlp[m] = nn.Sequential(nn.Linear(f.shape[1], hidden), nn.LeakyReLU(), nn.Linear(hidden, d))
        w = nn.init.xavier_normal_(torch.empty(data.n_users, len(self.mods), 1))
        self.weight_u = nn.Parameter(F.softmax(w, dim=1))

    def inputs(self, item_repr: torch.Tensor) -> list[torch.Tensor]:
        """Per modality, row-normalised concat(P_m, MLP_m(f_m) + item_repr): (U + I, d) each."""
        return [F.normalize(torch.cat([self.preference[m], self.mlp[m](getattr(self, f"raw_{m}")) + item_repr]), dim=1)
                for m in self.mods]

    def loss(self, users: torch.Tensor, items: torch.Tensor, batch: Batch, reg_weight: float) -> torch.Tensor:
        """Base-2 BPR + reg_weight * (sum_m mean(P_m[batch users]^2) + mean(alpha^2))."""
        u = users[batch.users]
        loss = log2_bpr_loss(dot_scores(u, items[batch.pos]), dot_scores(u, items[batch.neg]))
        reg = preference_reg(self.preference.values(), batch.users) + self.weight_u.pow(2).mean()
        return loss + reg_weight * reg


@register
class DualGNN(Backbone):
    name = "dualgnn"
    Config = DualGNNConfig

    def __init__(self, data, item_encoder, config: DualGNNConfig):
        super().__init__(data, item_encoder, config)
        register_user_graphs(self, data, config.aggr_mode, config.user_k)
        self.branches = ModalityBranches(data, self.name, config.embedding_dim, config.mlp_hidden)

    def forward(self):
        d, n_mods = self.config.embedding_dim, len(self.branches.mods)
        # the modality branches share the graph: propagate them side by side as one wide matrix
        x = torch.cat(self.branches.inputs(self.item_encoder()), dim=1)
        out = propagate_sum_csr(self.adj, self.adj_t, x, self.config.n_layers)
        stacked = out.view(-1, n_mods, d).transpose(1, 2)  # (U + I, d, M)
        users = torch.matmul(stacked[: self.n_users], self.branches.weight_u).squeeze(-1)
        items = stacked[self.n_users :].sum(dim=2)
        users = users + propagate_csr(self.uu_graph, self.uu_graph_t, users)
        return users, items

    def loss(self, batch: Batch):
        return self.branches.loss(*self.forward(), batch, self.config.reg_weight)

    def scorer(self):
        users, items = self.forward()
        return lambda idx: users[idx] @ items.T
