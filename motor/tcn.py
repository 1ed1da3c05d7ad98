"""The Token Cross Network (TCN): item token embeddings -> one item representation.

Three parallel branches over an item's ``N`` token embeddings ``e_1..e_N`` (each in ``R^d``),
combined by a sum node (MOTOR's framework figure):

- first order:  ``h1 = sum_j w_j e_j`` with learnable scalars ``w_j`` initialised to ``1/N``;
- second order: ``h2 = sum_{j<k} e_j * e_k = 0.5 [(sum_j e_j)^2 - sum_j e_j^2]`` (FM identity,
  element-wise), no parameters;
- high order:   ``h3 = MLP(concat(e_1..e_N))`` with ``N*d -> hidden -> d``, ReLU and dropout on
  the hidden layer.

Output ``h = h1 + h2 + h3`` (``combine="sum"``, default) or ``Linear(concat(enabled branches))``
(``combine="concat"``, ``n_enabled*d -> d``).

Our choices where the paper body is unavailable to us (each switchable):

- ``hidden = d`` (the backbone size): the smallest MLP that is not a bottleneck below ``d``; it
  keeps the TCN's parameter count at ``N*d^2 + d^2 + O(d)``, small against the ID table.
- ``dropout = 0.0``: the ID arm has no dropout on its item table, so adding it to the MOTOR arm
  only would be an untuned, one-sided regulariser; it is a tunable field.
- The MLP's linear layers keep PyTorch's default initialisation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import Tensor, nn

COMBINES = ("sum", "concat")


@dataclass(frozen=True)
class TcnConfig:
    """Options of the Token Cross Network and of which modalities feed it.

    ``hidden=None`` means ``hidden = d``. ``modalities=None`` means every modality given to the
    encoder; a tuple (e.g. ``("text",)``) keeps only those (the one-modality ablation).
    """

    hidden: Optional[int] = None
    dropout: float = 0.0
    first_order: bool = True
    second_order: bool = True
    high_order: bool = True
    combine: str = "sum"
    modalities: Optional[Tuple[str, ...]] = None

    def __post_init__(self) -> None:
        if not (self.first_order or self.second_order or self.high_order):
            raise ValueError("TcnConfig: all three branches are off; enable at least one of "
                             "first_order, second_order, high_order")
        if self.combine not in COMBINES:
            raise ValueError(f"TcnConfig: combine must be one of {COMBINES}, got {self.combine!r}")
        if self.hidden is not None and (isinstance(self.hidden, bool) or int(self.hidden) < 1):
            raise ValueError(f"TcnConfig: hidden must be a positive integer or None, got {self.hidden!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"TcnConfig: dropout must be in [0, 1), got {self.dropout!r}")
        if self.modalities is not None:
            if isinstance(self.modalities, str):
                mods: Tuple[str, ...] = (self.modalities,)
            else:
                mods = tuple(self.modalities)
            if not mods:
                raise ValueError("TcnConfig: modalities is empty; use None for all modalities")
            if len(set(mods)) != len(mods):
                raise ValueError(f"TcnConfig: modalities has duplicates: {mods}")
            object.__setattr__(self, "modalities", mods)

    def hidden_for(self, dim: int) -> int:
        return int(dim if self.hidden is None else self.hidden)

    @property
    def n_branches(self) -> int:
        return int(self.first_order) + int(self.second_order) + int(self.high_order)


class TokenCrossNetwork(nn.Module):
    """``(B, N, d)`` token embeddings -> ``(B, d)`` item representations."""

    def __init__(
        self,
        n_tokens: int,
        dim: int,
        hidden: Optional[int] = None,
        dropout: float = 0.0,
        first_order: bool = True,
        second_order: bool = True,
        high_order: bool = True,
        combine: str = "sum",
    ):
        super().__init__()
        if n_tokens < 1 or dim < 1:
            raise ValueError(f"TokenCrossNetwork needs n_tokens >= 1 and dim >= 1, got {n_tokens}, {dim}")
        cfg = TcnConfig(hidden=hidden, dropout=dropout, first_order=first_order,
                        second_order=second_order, high_order=high_order, combine=combine)
        self.n_tokens, self.dim = int(n_tokens), int(dim)
        self.hidden = cfg.hidden_for(dim)
        self.first_order, self.second_order, self.high_order = first_order, second_order, high_order
        self.combine = combine

        self.order1_weight = (
            nn.Parameter(torch.full((self.n_tokens,), 1.0 / self.n_tokens)) if first_order else None
        )
        self.mlp = (
            nn.Sequential(
                nn.Linear(self.n_tokens * self.dim, self.hidden),
                nn.ReLU(),
                nn.Dropout(float(dropout)),
                nn.Linear(self.hidden, self.dim),
            )
            if high_order
            else None
        )
        self.out = nn.Linear(cfg.n_branches * self.dim, self.dim) if combine == "concat" else None

    @classmethod
    def from_config(cls, n_tokens: int, dim: int, config: TcnConfig) -> "TokenCrossNetwork":
        return cls(n_tokens, dim, hidden=config.hidden, dropout=config.dropout,
                   first_order=config.first_order, second_order=config.second_order,
                   high_order=config.high_order, combine=config.combine)

    @staticmethod
    def second_order_interaction(e: Tensor) -> Tensor:
        """``sum_{j<k} e_j * e_k`` over dim 1 via the FM identity."""
        s = e.sum(dim=1)
        return 0.5 * (s * s - (e * e).sum(dim=1))

    def forward(self, e: Tensor) -> Tensor:
        if e.dim() != 3 or e.shape[1] != self.n_tokens or e.shape[2] != self.dim:
            raise ValueError(
                f"TokenCrossNetwork expects (B, {self.n_tokens}, {self.dim}) token embeddings, "
                f"got {tuple(e.shape)}"
            )
        parts = []
        if self.order1_weight is not None:
            parts.append(torch.einsum("bnd,n->bd", e, self.order1_weight))
        if self.second_order:
            parts.append(self.second_order_interaction(e))
        if self.mlp is not None:
            parts.append(self.mlp(e.reshape(e.shape[0], self.n_tokens * self.dim)))
        if self.out is not None:
            return self.out(torch.cat(parts, dim=1))
        h = parts[0]
        for p in parts[1:]:
            h = h + p
        return h
