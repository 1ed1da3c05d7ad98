"""The item-encoder contract and the ID arm's encoder.

A backbone never owns its item ID table. It receives an item encoder that returns one row per item;
the ID arm plugs in :class:`IdEmbedding`, the MOTOR arm plugs in ``MotorEncoder``. Everything else
in a backbone is identical between the arms.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

FP32_BYTES = 4


class ItemEncoder(nn.Module):
    """Maps item ids to ``dim``-dimensional representations.

    ``forward(None)`` returns the full ``(n_items, dim)`` matrix (graph backbones propagate all
    items); ``forward(items)`` returns only the requested rows, which lets non-graph backbones
    avoid computing every item on every step.
    """

    n_items: int
    dim: int

    def forward(self, items: Optional[Tensor] = None) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def n_parameters(self) -> int:
        """Learnable scalars of the item representation."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def parameter_bytes(self) -> int:
        """fp32 bytes of the learnable item representation."""
        return self.n_parameters() * FP32_BYTES

    def code_bytes(self) -> int:
        """Bytes of fixed, non-learned per-item data the encoder needs (MOTOR's token codes)."""
        return 0

    def storage_bytes(self) -> int:
        return self.parameter_bytes() + self.code_bytes()


class IdEmbedding(ItemEncoder):
    """One learnable vector per item: the classic ID table (Xavier-initialised, as in MMRec)."""

    def __init__(self, n_items: int, dim: int):
        super().__init__()
        if n_items <= 0 or dim <= 0:
            raise ValueError(f"IdEmbedding needs n_items > 0 and dim > 0, got {n_items}, {dim}")
        self.n_items, self.dim = int(n_items), int(dim)
        self.weight = nn.Parameter(torch.empty(n_items, dim))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, items: Optional[Tensor] = None) -> Tensor:
        return self.weight if items is None else self.weight[items]
