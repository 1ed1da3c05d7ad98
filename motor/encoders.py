"""The item-encoder contract and the ID arm's encoder.

A backbone never owns its item ID table. It receives an item encoder that returns one row per item;
the ID arm plugs in :class:`IdEmbedding`, the MOTOR arm plugs in ``MotorEncoder``. Everything else
in a backbone is identical between the arms.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn

from motor.tcn import TcnConfig, TokenCrossNetwork
from motor.tokenizer import TokenizerError, tokenize_modalities

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


def code_width_bytes(K: int) -> int:
    """Bytes to store one code in ``[0, K)``: ``ceil(log2(K) / 8)``."""
    return int(math.ceil(math.log2(int(K)) / 8))


class MotorEncoder(ItemEncoder):
    """MOTOR's ID-free item encoder: PQ tokens -> token embeddings -> Token Cross Network.

    ``codes`` maps each modality to its ``(n_items, M_m)`` integer code table and ``n_centroids``
    maps it to ``K_m``. Modalities are used in sorted name order (restricted to
    ``tcn.modalities`` when given), so the token order does not depend on dict order. Token id
    ``c`` of sub-space ``j`` of modality ``m`` becomes row ``offset(m, j) + c`` of ONE embedding
    table of ``sum_m M_m * K_m`` rows; the offset codes are a registered long *buffer*.

    ``token_init``: ``"xavier"`` (default; Xavier-uniform as MMRec initialises its ID tables, which
    keeps the TCN output on the ID arm's scale) or ``"normal"`` (``N(0, 0.1)``).

    No learnable tensor depends on ``n_items``; items with identical codes (e.g. identical
    features) get identical representations.
    """

    def __init__(
        self,
        codes: Mapping[str, Union[np.ndarray, Tensor]],
        n_centroids: Mapping[str, int],
        dim: int,
        tcn: Optional[TcnConfig] = None,
        token_init: str = "xavier",
    ):
        super().__init__()
        tcn = TcnConfig() if tcn is None else tcn
        if dim <= 0:
            raise ValueError(f"MotorEncoder needs dim > 0, got {dim}")
        if not codes:
            raise ValueError("MotorEncoder needs codes for at least one modality")
        if tcn.modalities is None:
            modalities = sorted(codes)
        else:
            missing = [m for m in tcn.modalities if m not in codes]
            if missing:
                raise ValueError(
                    f"MotorEncoder: TcnConfig.modalities names {missing} but codes are given for "
                    f"{sorted(codes)}"
                )
            modalities = sorted(tcn.modalities)
        tables = []
        spec = {}
        n_items = None
        offset = 0
        for m in modalities:
            if m not in n_centroids:
                raise ValueError(f"MotorEncoder: no K (n_centroids) for modality {m!r}")
            K = int(n_centroids[m])
            if K < 2:
                raise ValueError(f"MotorEncoder: modality {m!r} needs K >= 2, got {K}")
            c = codes[m]
            c = c.detach().cpu().numpy() if isinstance(c, Tensor) else np.asarray(c)
            if c.ndim != 2 or c.shape[1] < 1:
                raise ValueError(f"MotorEncoder: codes of {m!r} must be (n_items, M), got shape {c.shape}")
            if not np.issubdtype(c.dtype, np.integer):
                raise ValueError(f"MotorEncoder: codes of {m!r} must be integers, got {c.dtype}")
            if n_items is None:
                n_items = c.shape[0]
            elif c.shape[0] != n_items:
                raise ValueError(
                    f"MotorEncoder: codes of {m!r} have {c.shape[0]} items, expected {n_items}"
                )
            if c.size and (c.min() < 0 or c.max() >= K):
                raise ValueError(
                    f"MotorEncoder: codes of {m!r} must lie in [0, {K}), got [{c.min()}, {c.max()}]"
                )
            M = c.shape[1]
            offs = offset + K * np.arange(M, dtype=np.int64)
            tables.append(c.astype(np.int64) + offs)
            offset += M * K
            spec[m] = (M, K)
        if not n_items:
            raise ValueError("MotorEncoder: codes describe zero items")

        self.n_items, self.dim = int(n_items), int(dim)
        self.modalities: Tuple[str, ...] = tuple(modalities)
        self.spec = spec
        self.tcn_config = tcn
        self.n_tokens = sum(M for M, _ in spec.values())
        self.n_token_rows = offset
        self.register_buffer("codes", torch.from_numpy(np.concatenate(tables, axis=1)))
        self.token_embedding = nn.Embedding(offset, self.dim)
        if token_init == "xavier":
            nn.init.xavier_uniform_(self.token_embedding.weight)
        elif token_init == "normal":
            nn.init.normal_(self.token_embedding.weight, 0.0, 0.1)
        else:
            raise ValueError(f"MotorEncoder: token_init must be 'xavier' or 'normal', got {token_init!r}")
        self.tcn = TokenCrossNetwork.from_config(self.n_tokens, self.dim, tcn)
        self.tokenization: Optional[dict] = None  # PQResults when built by from_features

    @classmethod
    def from_features(
        cls,
        features: Mapping[str, np.ndarray],
        spec: Mapping[str, Tuple[int, int]],
        dim: int,
        tcn: Optional[TcnConfig] = None,
        seed: int = 0,
        cache_dir: Optional[Path] = None,
        fit_items: Union[None, Sequence[int], np.ndarray] = None,
        token_init: str = "xavier",
    ) -> "MotorEncoder":
        """Tokenize ``features`` per ``spec`` (``{modality: (M, K)}``) and build the encoder.

        Only the modalities in ``tcn.modalities`` (all of ``spec`` when None) are tokenized.
        ``fit_items`` restricts the PQ fit (cold start: warm items). The PQ results (reconstruction
        error, PCA) are kept in ``.tokenization``.
        """
        tcn = TcnConfig() if tcn is None else tcn
        if tcn.modalities is not None:
            missing = [m for m in tcn.modalities if m not in spec]
            if missing:
                raise TokenizerError(
                    f"TcnConfig.modalities names {missing} but the spec covers {sorted(spec)}"
                )
            spec = {m: spec[m] for m in tcn.modalities}
        results = tokenize_modalities(
            features, spec, seed=seed, fit_items=fit_items, cache_dir=cache_dir
        )
        enc = cls(
            {m: r.codes for m, r in results.items()},
            {m: r.K for m, r in results.items()},
            dim,
            tcn,
            token_init=token_init,
        )
        enc.tokenization = results
        return enc

    def token_embeddings(self, items: Optional[Tensor] = None) -> Tensor:
        """``(B, N, d)`` token embeddings of ``items`` (all items when None)."""
        idx = self.codes if items is None else self.codes[items]
        return self.token_embedding(idx)

    def forward(self, items: Optional[Tensor] = None) -> Tensor:
        """``(n_items, d)`` when ``items`` is None, else ``items.shape + (d,)``."""
        if items is None or items.dim() == 1:
            return self.tcn(self.token_embeddings(items))
        flat = self.tcn(self.token_embeddings(items.reshape(-1)))
        return flat.reshape(*items.shape, self.dim)

    def code_bytes(self) -> int:
        return sum(self.n_items * M * code_width_bytes(K) for M, K in self.spec.values())

    def extra_repr(self) -> str:
        return f"n_items={self.n_items}, dim={self.dim}, spec={self.spec}"
