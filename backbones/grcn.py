"""GRCN (Wei et al., ACM MM 2020): Graph-Refined Convolutional Network.

1. Graph refining, per modality m (image, text; whichever the dataset has):
   f_i = normalize(LeakyReLU(W_m feat_i)) (latent_dim), p_u = normalize(P_m[u]) with P_m a
   learnable (U, latent_dim) user preference table. Neighbour routing, n_routing times:
       a_ui = softmax over i in N(u) of <p_u, f_i>;   p_u <- normalize(p_u + sum_i a_ui f_i).
   Then one attention convolution over the symmetric graph gives the modality representation
       user: p_u + sum_{i in N(u)} softmax_{N(u)}(<p_u, f_i>) f_i
       item: f_i + sum_{u in N(i)} softmax_{N(i)}(<f_i, p_u>) p_u
   and one attention weight per directed edge (softmax taken at the receiving node).
2. Soft pruning ('confid' mode, MMRec's setting): the weight of the message j -> k is
       w_jk = ReLU(max_m a^m_jk * c^m_j)
   with c_j the sending node's per-modality confidence.
3. Graph convolution on the refined graph: x = normalize(e_id) with e_id = concat(user ID table,
   item encoder output); x1 = sum_j w_jk x_j, x2 = sum_j w_jk x1_j (sum aggregation, no
   activation); id_rep = x + x1 + x2.
4. Representation = concat(id_rep, rep_image, rep_text); score = dot product; loss = BPR +
   reg_weight * (mean(e_id[u]^2 + e_id[i]^2) over the batch pairs + sum_m mean(P_m[u]^2)).

Node confidences (choice for the two arms): MMRec keeps ``model_specific_conf``, a learnable
(U + I, M) table. Its item rows are a per-item table, which must not survive in the MOTOR arm.
In BOTH arms the item confidences are c_i = Linear(64 -> M)(item encoder output); the user
rows stay a learnable (U, M) table. The arms therefore differ only in the item encoder. In the
ID arm c_i = e_i W + b is a linear read-out of the item's ID vector (any (I, M) table is
reachable while M <= 64, though it now shares parameters with e_i).

Deviations from MMRec / the authors' code, documented in REPRODUCE.md:
- Item confidences c_i = Linear(64 -> M)(item encoder output) in both arms, instead of MMRec's
  learnable (U + I, M) ``model_specific_conf`` whose item rows are a per-item table; the user
  rows stay a learnable (U, M) table.
- Routing direction: the authors' code and MMRec pass [user, item] edges to a PyTorch Geometric
  GATConv with the default source_to_target flow, so routing messages land on the items and
  the users' rows (which the routing loop reads) stay zero: their routing never changes p_u.
  We implement the paper's routing, where users aggregate the features of their items.
- MMRec's loss also adds the whole visual preference table's mean square (a leftover from its
  MMGCN port); we follow the authors' GRCN loss (batch users' preferences of every modality).
- Edge-wise operations use plain torch instead of PyTorch Geometric: edge dot products are a
  sampled dense-dense product (torch.sparse.sampled_addmm), edge-weighted aggregation a CSR
  sparse-dense product, both wrapped in small autograd functions so that no (E, d) message
  tensor is kept (memory stays O(E + (U + I) d)); the per-node softmax uses scatter_reduce
  (max) and index_add_ (sum). Edge dropout is 0 as in MMRec, so none is applied.
- Raw feature tables are frozen buffers (as in MMRec).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar, Mapping

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from backbones.base import Backbone, BackboneConfig, Batch, register
from backbones.losses import bpr_loss, dot_scores, id_pair_reg, preference_reg

# CSR x dense products are stable and tested here; silence torch's one-off "beta" notice
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")


@dataclass(frozen=True)
class GRCNConfig(BackboneConfig):
    latent_dim: int = 64  # MMRec latent_embedding (dim_C)
    n_routing: int = 3  # MMRec n_layers: the number of routing iterations
    reg_weight: float = 1e-3
    search_space: ClassVar[Mapping[str, tuple]] = {
        "reg_weight": (0.1, 1e-2, 1e-3, 1e-4, 1e-5),
        "learning_rate": (1.0, 0.1, 1e-2, 1e-3, 1e-4),
    }

    def __post_init__(self):
        if self.latent_dim < 1 or self.n_routing < 0:
            raise ValueError(f"GRCNConfig: need latent_dim >= 1 and n_routing >= 0, got {self}")


def edge_softmax(scores: Tensor, index: Tensor, n: int) -> Tensor:
    """Softmax of edge scores grouped by ``index`` (the receiving node), n nodes in all."""
    with torch.no_grad():
        top = torch.full((n,), -torch.inf, dtype=scores.dtype, device=scores.device)
        top = top.scatter_reduce(0, index, scores, reduce="amax", include_self=True)
    e = (scores - top[index]).exp()
    denom = torch.zeros(n, dtype=scores.dtype, device=scores.device).index_add_(0, index, e)
    return e / (denom[index] + 1e-16)


class BipartiteEdges(nn.Module):
    """The E train edges (user u_e, item i_e), user-major, with CSR structures of both directions.

    Edge-valued propagation runs as CSR sparse x dense products and edge dot products as sampled
    dense x dense products (SDDMM), so no (E, d) tensor is ever materialised.
    """

    def __init__(self, train: sp.spmatrix):
        super().__init__()
        m = sp.csr_matrix(train, dtype=np.float32)
        m.sum_duplicates()  # canonical: sorted by user, then item
        coo = m.tocoo()
        n_users, n_items = coo.shape
        u = torch.from_numpy(coo.row.astype(np.int64))
        i = torch.from_numpy(coo.col.astype(np.int64))
        perm = torch.from_numpy(np.lexsort((coo.row, coo.col)).astype(np.int64))  # item-major order
        self.n_users, self.n_items = n_users, n_items
        for name, t in {
            "user": u, "item": i, "perm": perm,
            "crow_u": _crow(u, n_users), "crow_i": _crow(i[perm], n_items), "user_by_item": u[perm],
        }.items():
            self.register_buffer(name, t, persistent=False)

    def to_users(self, values: Tensor, x_items: Tensor) -> Tensor:
        """out[u] = sum over u's edges e of values[e] * x_items[i_e]."""
        return _EdgeSpMM.apply(values, x_items, self, False)

    def to_items(self, values: Tensor, x_users: Tensor) -> Tensor:
        """out[i] = sum over i's edges e of values[e] * x_users[u_e]."""
        return _EdgeSpMM.apply(values, x_users, self, True)

    def dot(self, x_users: Tensor, x_items: Tensor) -> Tensor:
        """<x_users[u_e], x_items[i_e]> for every edge e."""
        return _EdgeDot.apply(x_users, x_items, self)

    def sddmm(self, x_users: Tensor, x_items: Tensor) -> Tensor:
        """<x_users[u_e], x_items[i_e]> in edge order, computed only at the edges."""
        pattern = self.csr(torch.zeros_like(x_users[:1, 0]).expand(self.user.numel()), False)
        return torch.sparse.sampled_addmm(pattern, x_users, x_items.T, beta=0.0).values()

    def csr(self, values: Tensor, to_items: bool) -> Tensor:
        if to_items:
            return torch.sparse_csr_tensor(self.crow_i, self.user_by_item, values[self.perm],
                                           (self.n_items, self.n_users), check_invariants=False)
        return torch.sparse_csr_tensor(self.crow_u, self.item, values, (self.n_users, self.n_items),
                                       check_invariants=False)


def _crow(sorted_rows: Tensor, n: int) -> Tensor:
    crow = torch.zeros(n + 1, dtype=torch.int64)
    crow[1:] = torch.bincount(sorted_rows, minlength=n).cumsum(0)
    return crow


class _EdgeSpMM(torch.autograd.Function):
    """Sparse (edge-valued) x dense product, differentiable in the edge values and the dense input."""

    @staticmethod
    def forward(ctx, values, x, edges, to_items):
        ctx.edges, ctx.to_items = edges, to_items
        ctx.save_for_backward(values, x)
        return edges.csr(values, to_items) @ x

    @staticmethod
    def backward(ctx, grad):
        values, x = ctx.saved_tensors
        e, to_items = ctx.edges, ctx.to_items
        g_values = g_x = None
        if ctx.needs_input_grad[0]:  # d out[r] / d values[e] = x[source of e], r the receiver
            g_values = e.sddmm(x, grad) if to_items else e.sddmm(grad, x)
        if ctx.needs_input_grad[1]:
            g_x = e.csr(values, not to_items) @ grad
        return g_values, g_x, None, None


class _EdgeDot(torch.autograd.Function):
    """Edge dot products <a[u_e], b[i_e]> (an SDDMM); the backward pass is two sparse products."""

    @staticmethod
    def forward(ctx, a, b, edges):
        ctx.edges = edges
        ctx.save_for_backward(a, b)
        return edges.sddmm(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        e = ctx.edges
        g_a = e.csr(grad, False) @ b if ctx.needs_input_grad[0] else None
        g_b = e.csr(grad, True) @ a if ctx.needs_input_grad[1] else None
        return g_a, g_b, None


def refine(pref: Tensor, feats: Tensor, edges: BipartiteEdges, n_routing: int):
    """One modality's graph refining layer.

    ``pref`` (U, d) and ``feats`` (I, d) are normalised. Returns (user rep (U, d), item rep
    (I, d), a_to_item (E,), a_to_user (E,)): the attention of the message user -> item (softmax
    over the item's users) and item -> user (softmax over the user's items), in edge order."""
    n_users, n_items = pref.shape[0], feats.shape[0]
    for _ in range(n_routing):
        a = edge_softmax(edges.dot(pref, feats), edges.user, n_users)
        pref = F.normalize(pref + edges.to_users(a, feats))
    s = edges.dot(pref, feats)  # <p_u, f_i> scores both directions of the edge
    a_user = edge_softmax(s, edges.user, n_users)
    a_item = edge_softmax(s, edges.item, n_items)
    users = pref + edges.to_users(a_user, feats)
    items = feats + edges.to_items(a_item, pref)
    return users, items, a_item, a_user


@register
class GRCN(Backbone):
    name = "grcn"
    Config = GRCNConfig

    def __init__(self, data, item_encoder, config: GRCNConfig):
        super().__init__(data, item_encoder, config)
        mods = data.present_modalities(self.name)
        d, dc = config.embedding_dim, config.latent_dim
        self.edges = BipartiteEdges(data.train)
        self.user_id = nn.Parameter(nn.init.xavier_normal_(torch.empty(data.n_users, d)))
        self.preference = nn.ParameterDict()
        self.mlp = nn.ModuleDict()
        for m in mods:
            f = np.ascontiguousarray(data.features[m], dtype=np.float32)
            self.register_buffer(f"raw_{m}", torch.from_numpy(f), persistent=False)
            self.preference[m] = nn.Parameter(nn.init.xavier_normal_(torch.empty(data.n_users, dc)))
            lin = nn.Linear(f.shape[1], dc)
            nn.init.xavier_normal_(lin.weight)
            self.mlp[m] = lin
        # node confidences: users keep a table, items read theirs off the item encoder output
        self.user_conf = nn.Parameter(nn.init.xavier_normal_(torch.empty(data.n_users, len(mods))))
        self.item_conf = nn.Linear(d, len(mods))
        nn.init.xavier_normal_(self.item_conf.weight)
        nn.init.zeros_(self.item_conf.bias)

    def forward(self):
        """(user representations, item representations, item ID rows from the encoder)."""
        edges = self.edges
        eu, ei = edges.user, edges.item
        item_ids = self.item_encoder()
        conf_item = self.item_conf(item_ids)
        reps_u, reps_i, w_item, w_user = [], [], [], []
        for k, m in enumerate(self.mlp):
            feats = F.normalize(F.leaky_relu(self.mlp[m](getattr(self, f"raw_{m}"))))
            pref = F.normalize(self.preference[m])
            ru, ri, a_item, a_user = refine(pref, feats, edges, self.config.n_routing)
            reps_u.append(ru)
            reps_i.append(ri)
            w_item.append(a_item * self.user_conf[eu, k])  # user -> item: the user's confidence
            w_user.append(a_user * conf_item[ei, k])  # item -> user: the item's confidence
        w_item = torch.relu(torch.stack(w_item, 1).amax(1))
        w_user = torch.relu(torch.stack(w_user, 1).amax(1))
        xu, xi = F.normalize(self.user_id), F.normalize(item_ids)
        x1u, x1i = edges.to_users(w_user, xi), edges.to_items(w_item, xu)
        x2u, x2i = edges.to_users(w_user, x1i), edges.to_items(w_item, x1u)
        users = torch.cat([xu + x1u + x2u] + reps_u, dim=1)
        items = torch.cat([xi + x1i + x2i] + reps_i, dim=1)
        return users, items, item_ids

    def loss(self, batch: Batch):
        users, items, item_ids = self.forward()
        u = users[batch.users]
        loss = bpr_loss(dot_scores(u, items[batch.pos]), dot_scores(u, items[batch.neg]))
        if self.config.reg_weight:
            reg = id_pair_reg(self.user_id[batch.users], item_ids[batch.pos], item_ids[batch.neg])
            reg = reg + preference_reg(self.preference.values(), batch.users)
            loss = loss + self.config.reg_weight * reg
        return loss

    def scorer(self):
        users, items, _ = self.forward()
        return lambda idx: users[idx] @ items.T
