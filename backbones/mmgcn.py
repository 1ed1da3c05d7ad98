"""MMGCN (Wei et al., ACM MM 2019): one graph convolution network per modality over the
user-item graph, with per-modality user preference vectors.

For each modality m (image, text; whichever the dataset has):

- x^0 = normalize(concat(P_m, F_m)) over all U + I nodes, where P_m is a learnable (U, d_m)
  table of user preferences and F_m the item features (image: Linear(d_image -> 256); text:
  the raw feature vectors, d_m = d_text), as in MMRec and the authors' code.
- Layer l (l = 1..n_layers):
    h     = LeakyReLU(mean_{j in N(v)} x_j^{l-1} W_1)             (aggregation, eq. 1)
    x_hat = LeakyReLU(W_2 x^{l-1}) + e_id                          (eq. 5)
    x^l   = LeakyReLU(W_3 concat(h, x_hat))   (concat=True, g_co)
          | LeakyReLU(W_3 h + x_hat)          (concat=False, g_ele)
  e_id is the node's ID embedding: users keep their own learnable (U, 64) table; the item rows
  come from the item encoder (ID table in the ID arm, MOTOR's encoder in the MOTOR arm). It is
  added in every layer of every modality's GCN.
- Representation = mean over modalities of x^L (the paper sums; the 1/M factor only rescales
  scores); score = dot product of user and item representations.
- Loss = BPR + reg_weight * (mean(e_id[u]^2 + e_id[i]^2) over the (user, item) pairs of the
  batch, as MMRec + sum_m mean(P_m[u]^2) over the batch users).

Deviations from MMRec, documented in REPRODUCE.md:
- MMRec's ID table and user preference tables are plain tensors created with requires_grad
  and then moved with ``.to(device)`` (a non-leaf copy), so they are never registered as
  parameters and never trained. Here the user ID table and every preference table are
  nn.Parameters and are trained.
- n_layers is honoured. MMRec (and the authors' top-level Model_MMGCN.py) hard-code three
  layers whatever n_layers says; the authors' per-dataset code (Tiktok_Kwai/Model.py) runs
  num_layer layers and their README runs num_layer=2, the value MMRec's config also carries.
  We therefore run n_layers (default 2) layers; n_layers > 3 simply stacks more 64->64 layers.
- concat defaults to True: MMRec sets ``concate = 'False'`` (a non-empty string, hence truthy)
  and the authors' README passes ``--concat=False`` to an argparse ``type=bool`` flag (also
  True), so the combination layer that actually ran in both is g_co (concatenation).
- The user preference regulariser covers every modality's preferences of the batch users;
  MMRec regularises only the visual preference table (whole-table mean) and, since that table
  was never trained, the term had no effect there.
- Mean aggregation is a row-normalised sparse adjacency (plain torch sparse products) instead of
  PyTorch Geometric message passing; no self-loops, as in MMRec.
- Raw feature tables are frozen buffers (as in MMRec).
- learning_rate defaults to 1e-4 (MMRec's overall default is 1e-3; 1e-4 is in its MMGCN grid),
  chosen on Baby *valid* Recall@20 among three settings of the grid, 40-epoch cap, patience 10:
  lr 1e-3 / reg 1e-5: 0.0547 (10-epoch cap), lr 5e-4 / reg 1e-2: 0.0549, lr 1e-4 / reg 1e-5: 0.0596.
  With the tables trained (above), MMGCN overfits fast at 1e-3: valid peaks within 5-8 epochs
  and oscillates by +-0.005 from epoch to epoch while the train loss keeps falling.
- Sparse propagation runs in CSR with a stored transpose (graph.propagate_csr); the mean
  adjacency D^-1 A is not symmetric, so its transpose is kept separately.
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
from backbones.graph import bipartite, propagate_csr, register_csr_pair, row_normalize, to_torch_sparse
from backbones.losses import bpr_loss, dot_scores, id_pair_reg, preference_reg


@dataclass(frozen=True)
class MMGCNConfig(BackboneConfig):
    n_layers: int = 2
    concat: bool = True  # g_co (concatenation) vs g_ele (element-wise sum) combination
    image_latent_dim: int = 256  # MMRec/authors: visual features -> Linear -> 256
    text_latent_dim: int = 0  # 0: use the raw text features (MMRec/authors)
    reg_weight: float = 1e-5
    learning_rate: float = 1e-4  # chosen on Baby valid from MMRec's grid (see docstring)
    search_space: ClassVar[Mapping[str, tuple]] = {
        "reg_weight": (0.0, 1e-5, 1e-4, 1e-3, 1e-2, 0.1),
        "learning_rate": (1e-4, 5e-4, 1e-3, 5e-3, 1e-2),
    }

    def __post_init__(self):
        if self.n_layers < 1:
            raise ValueError(f"MMGCNConfig.n_layers: expected >= 1, got {self.n_layers}")
        if self.image_latent_dim < 0 or self.text_latent_dim < 0:
            raise ValueError("MMGCNConfig: latent dims must be >= 0 (0 = raw features)")


def mean_adjacency(train: sp.spmatrix) -> Tensor:
    """D^-1 A over the symmetric (U+I) user-item graph: row v averages v's neighbours.

    Nodes without neighbours get an all-zero row (PyTorch Geometric's mean of nothing)."""
    return to_torch_sparse(row_normalize(bipartite(train)))


def _xavier_linear(d_in: int, d_out: int) -> nn.Linear:
    lin = nn.Linear(d_in, d_out)
    nn.init.xavier_normal_(lin.weight)
    return lin


class ModalityGCN(nn.Module):
    """One modality's GCN: preference table, optional feature projection and n_layers layers."""

    def __init__(self, n_users: int, d_feat: int, d_latent: int, d_id: int, n_layers: int, concat: bool):
        super().__init__()
        d0 = d_latent or d_feat
        self.concat = concat
        self.preference = nn.Parameter(nn.init.xavier_normal_(torch.empty(n_users, d0)))
        self.mlp = nn.Linear(d_feat, d_latent) if d_latent else None
        self.conv = nn.ParameterList()
        self.linear = nn.ModuleList()
        self.combine = nn.ModuleList()
        for layer in range(n_layers):
            d_in = d0 if layer == 0 else d_id
            self.conv.append(nn.Parameter(nn.init.xavier_normal_(torch.empty(d_in, d_in))))
            self.linear.append(_xavier_linear(d_in, d_id))
            g = nn.Linear(d_in + d_id, d_id) if concat else nn.Linear(d_in, d_id)
            if layer == 0:  # as the authors: only the first combination layer is Xavier-initialised
                nn.init.xavier_normal_(g.weight)
            self.combine.append(g)

    def forward(self, adj: Tensor, adj_t: Tensor, features: Tensor, id_embedding: Tensor) -> Tensor:
        feats = self.mlp(features) if self.mlp is not None else features
        x = F.normalize(torch.cat([self.preference, feats]))
        for w, lin, g in zip(self.conv, self.linear, self.combine):
            h = F.leaky_relu(propagate_csr(adj, adj_t, x) @ w)  # mean_j(x_j W) == (mean_j x_j) W
            x_hat = F.leaky_relu(lin(x)) + id_embedding
            x = F.leaky_relu(g(torch.cat([h, x_hat], dim=1))) if self.concat else F.leaky_relu(g(h) + x_hat)
        return x


@register
class MMGCN(Backbone):
    name = "mmgcn"
    Config = MMGCNConfig

    def __init__(self, data, item_encoder, config: MMGCNConfig):
        super().__init__(data, item_encoder, config)
        mods = data.present_modalities(self.name)
        d = config.embedding_dim
        self.modality_names = tuple(mods)
        self.user_id = nn.Parameter(nn.init.xavier_normal_(torch.empty(data.n_users, d)))
        # CSR with a stored transpose: D^-1 A is not symmetric, and CSR SpMM is ~2x COO on CPU
        register_csr_pair(self, "adj", mean_adjacency(data.train))
        self.gcns = nn.ModuleDict()
        latent = {"image": config.image_latent_dim, "text": config.text_latent_dim}
        for m in mods:
            f = np.ascontiguousarray(data.features[m], dtype=np.float32)
            self.register_buffer(f"raw_{m}", torch.from_numpy(f), persistent=False)
            self.gcns[m] = ModalityGCN(data.n_users, f.shape[1], latent[m], d, config.n_layers, config.concat)

    def forward(self):
        """(user representations, item representations, item ID rows from the encoder)."""
        items = self.item_encoder()
        ids = torch.cat([self.user_id, items])
        rep = None
        for m, gcn in self.gcns.items():
            out = gcn(self.adj, self.adj_t, getattr(self, f"raw_{m}"), ids)
            rep = out if rep is None else rep + out
        rep = rep / len(self.gcns)
        users, item_rep = torch.split(rep, [self.n_users, self.n_items])
        return users, item_rep, items

    def loss(self, batch: Batch):
        users, items, item_ids = self.forward()
        u = users[batch.users]
        loss = bpr_loss(dot_scores(u, items[batch.pos]), dot_scores(u, items[batch.neg]))
        if self.config.reg_weight:
            # MMRec: mean over the 2B (user, item) rows of id[user]^2 + id[item]^2
            reg = id_pair_reg(self.user_id[batch.users], item_ids[batch.pos], item_ids[batch.neg])
            reg = reg + preference_reg((g.preference for g in self.gcns.values()), batch.users)
            loss = loss + self.config.reg_weight * reg
        return loss

    def scorer(self):
        users, items, _ = self.forward()
        return lambda idx: users[idx] @ items.T
