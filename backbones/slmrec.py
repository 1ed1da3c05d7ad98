"""SLMRec (Tao et al., IEEE TMM 2022, "Self-supervised Learning for Multimedia Recommendation"),
as ported by MMRec with its only working self-supervised task, FAC.

Architecture (MMRec's port, checked against the authors' code):
- Three LightGCN passes over the user-item graph D^-1/2 A D^-1/2 (layer_num = 3 hops, mean over
  hops 0..3), all starting from the same learnable user table and from three item inputs:
  the ID branch (the item encoder's output; MMRec's ``embedding_item``), the image branch
  Linear(d_v, 64)(L2-normalised image features) and the text branch Linear(d_t, 64)(L2-normalised
  text features). Raw feature tables are frozen buffers; the linear maps learn.
- Fusion (mm_fusion_mode = concat): users = Linear(3*64, 64)(concat of the three user outputs),
  items likewise with a second Linear.
- Main loss: in-batch InfoNCE over the batch's (user, positive) pairs: logits = cos(u, i) / temp
  (temp 0.2), cross-entropy against the diagonal; the sampled negatives are not used.
- FAC (fine-and-coarse) self-supervised loss on the batch's positive items, aligning the ID
  branch with the modalities in a hierarchy of spaces: x_iv = g_i_iv(id), InfoNCE(x_iv,
  g_v_iv(image)); x_ivat = g_iva_ivat(g_iv_iva(x_iv)) (64 -> 64 -> 32), InfoNCE(x_ivat,
  g_t_ivat(text)); logits are raw dot products / ssl_temp (no normalisation, as in the original).
  Total loss = InfoNCE + ssl_alpha * FAC; Adam with weight_decay 1e-4.
- Score = dot(user, item) of the fused outputs (MMRec passes it through a sigmoid, which does not
  change the ranking).

Deviations from MMRec / the original, each for a reason:
- only FAC is provided. MMRec's FD, FM and FD+FM read ``config["data.input.dataset"]`` and an
  audio branch that the port does not have, so they cannot run there; ``dropout_rate`` (used only
  by FD/FM) is therefore not a field here;
- ``reg`` is not a field: it is in MMRec's grid but neither MMRec nor the authors' code uses it in
  any loss, so tuning it would only spend trials; the search space is lr x ssl_temp x ssl_alpha;
- the audio stage of FAC (``g_a_iva`` and its loss) is absent as in MMRec (no audio features),
  while the iv -> iva projection it leaves behind is kept, as in MMRec;
- both image and text features are required (MMRec's FAC needs the text branch);
- ``mm_fusion_mode = mean`` gets a Linear(64, 64) after the mean (MMRec keeps the concat input
  size, which makes that mode crash);
- scores are recomputed at evaluation (MMRec scores from ``all_users``/``all_items`` cached during
  the last training batch).

Implementation notes (no effect on the result): the three LightGCN passes share the graph and
the user table, so they run side by side as one (U + I) x (3 * 64) matrix; the graph is kept in
CSR layout with its transpose, so forward and backward are plain CSR x dense products (about
twice as fast as COO products on CPU).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from backbones.base import Backbone, BackboneConfig, Batch, register
from backbones.graph import normalized_adjacency, propagate_csr, register_csr_pair

FUSION_MODES = ("concat", "mean")


@dataclass(frozen=True)
class SLMRecConfig(BackboneConfig):
    learning_rate: float = 1e-3
    n_layers: int = 3  # layer_num
    temp: float = 0.2  # InfoNCE temperature of the main loss
    ssl_temp: float = 0.2  # FAC temperature (authors' default)
    ssl_alpha: float = 0.1  # FAC weight (authors' default)
    weight_decay: float = 1e-4
    fusion: str = "concat"  # mm_fusion_mode
    search_space: ClassVar[Mapping[str, tuple]] = {
        "learning_rate": (1e-4, 1e-3, 1e-2, 0.1),
        "ssl_temp": (0.1, 0.2, 0.5, 1.0),
        "ssl_alpha": (0.01, 0.05, 0.1, 0.5, 1.0),
    }

    def __post_init__(self):
        if self.fusion not in FUSION_MODES:
            raise ValueError(f"SLMRecConfig.fusion: expected one of {FUSION_MODES}, got {self.fusion!r}")
        if self.temp <= 0 or self.ssl_temp <= 0:
            raise ValueError(f"SLMRecConfig: temperatures must be > 0, got temp={self.temp}, ssl_temp={self.ssl_temp}")


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Cross-entropy of a @ b.T / temperature against the diagonal (row i's positive is b[i])."""
    logits = a @ b.T / temperature
    return F.cross_entropy(logits, torch.arange(a.shape[0], device=a.device))


def _xavier_linear(n_in: int, n_out: int) -> nn.Linear:
    lin = nn.Linear(n_in, n_out)
    nn.init.xavier_uniform_(lin.weight)
    return lin


@register
class SLMRec(Backbone):
    name = "slmrec"
    Config = SLMRecConfig
    modalities = ("image", "text")

    def __init__(self, data, item_encoder, config: SLMRecConfig):
        super().__init__(data, item_encoder, config)
        d = config.embedding_dim
        self.user = nn.Parameter(nn.init.xavier_uniform_(torch.empty(data.n_users, d)))
        register_csr_pair(self, "norm_adj", normalized_adjacency(data.train))
        self.dense = nn.ModuleDict()
        for m in self.modalities:
            f = torch.from_numpy(np.ascontiguousarray(data.features[m], dtype=np.float32))
            self.register_buffer(f"raw_{m}", F.normalize(f, dim=1), persistent=False)
            self.dense[m] = _xavier_linear(f.shape[1], d)
        fused = d * (1 + len(self.modalities)) if config.fusion == "concat" else d
        self.user_after = _xavier_linear(fused, d)
        self.item_after = _xavier_linear(fused, d)
        # FAC heads: id<->image in the "iv" space, then id (via iv -> iva) <-> text in "ivat"
        self.g_i_iv = _xavier_linear(d, d)
        self.g_v_iv = _xavier_linear(d, d)
        self.g_iv_iva = _xavier_linear(d, d)
        self.g_iva_ivat = _xavier_linear(d, d // 2)
        self.g_t_ivat = _xavier_linear(d, d // 2)

    def _fuse(self, parts: list[torch.Tensor]) -> torch.Tensor:
        if self.config.fusion == "concat":
            return torch.cat(parts, dim=1)
        return torch.stack(parts).mean(dim=0)

    def compute(self):
        """Fused users and items, plus each branch's item output (id, image, text) for FAC."""
        d = self.config.embedding_dim
        inputs = [self.item_encoder()] + [self.dense[m](getattr(self, f"raw_{m}")) for m in self.modalities]
        # the three LightGCN passes share the graph and the user table: run them side by side as
        # one (U + I) x (3 * d) matrix (identical result, one sparse product per hop)
        ego = torch.cat([self.user.repeat(1, len(inputs)), torch.cat(inputs, dim=1)])
        layers, h = [ego], ego
        for _ in range(self.config.n_layers):
            h = propagate_csr(self.norm_adj, self.norm_adj_t, h)
            layers.append(h)
        out = torch.stack(layers).mean(dim=0)
        user_parts = list(out[: self.n_users].split(d, dim=1))
        item_parts = list(out[self.n_users :].split(d, dim=1))
        users = self.user_after(self._fuse(user_parts))
        items = self.item_after(self._fuse(item_parts))
        return users, items, item_parts

    def fac(self, item_parts: list[torch.Tensor], idx: torch.Tensor) -> torch.Tensor:
        id_i, image_i, text_i = (p[idx] for p in item_parts)
        t = self.config.ssl_temp
        x_iv = self.g_i_iv(id_i)
        loss_v = info_nce(x_iv, self.g_v_iv(image_i), t)
        x_ivat = self.g_iva_ivat(self.g_iv_iva(x_iv))
        loss_t = info_nce(x_ivat, self.g_t_ivat(text_i), t)
        return loss_v + loss_t

    def loss(self, batch: Batch):
        users, items, item_parts = self.compute()
        u = F.normalize(users[batch.users], dim=1)
        p = F.normalize(items[batch.pos], dim=1)
        main = info_nce(u, p, self.config.temp)
        return main + self.config.ssl_alpha * self.fac(item_parts, batch.pos)

    def scorer(self):
        users, items, _ = self.compute()
        return lambda idx: users[idx] @ items.T
