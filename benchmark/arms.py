"""The two arms: which item encoder a backbone receives.

``id``: a learnable ID table (the usual setting). ``motor``: PQ tokens of the frozen image and
text features -> token embeddings -> Token Cross Network (no per-item learnable table).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from benchmark.dataset import Dataset

ARMS = ("id", "motor")
MODALITIES = ("image", "text")


@dataclass(frozen=True)
class MotorSettings:
    """PQ and Token Cross Network settings of the MOTOR arm (defaults: ../shared/reference/method.md).

    ``pq_m``/``pq_k`` apply to every modality unless a per-modality value is given.
    """

    pq_m: int = 4
    pq_k: int = 256
    pq_m_image: Optional[int] = None
    pq_k_image: Optional[int] = None
    pq_m_text: Optional[int] = None
    pq_k_text: Optional[int] = None
    modalities: tuple[str, ...] = MODALITIES
    tcn_hidden: Optional[int] = None  # None: the embedding size
    tcn_dropout: float = 0.0
    first_order: bool = True
    second_order: bool = True
    high_order: bool = True
    combine: str = "sum"

    def __post_init__(self):
        bad = [m for m in self.modalities if m not in MODALITIES]
        if bad or not self.modalities:
            raise ValueError(f"MOTOR modalities must be a non-empty subset of {MODALITIES}, got {self.modalities}")
        if self.combine not in ("sum", "concat"):
            raise ValueError(f"combine must be 'sum' or 'concat', got {self.combine!r}")

    def spec(self) -> dict[str, tuple[int, int]]:
        """modality -> (M, K)."""
        out = {}
        for m in self.modalities:
            pm = getattr(self, f"pq_m_{m}")
            pk = getattr(self, f"pq_k_{m}")
            out[m] = (self.pq_m if pm is None else pm, self.pq_k if pk is None else pk)
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["modalities"] = list(self.modalities)
        return d

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "MotorSettings":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"MotorSettings: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        v = dict(values)
        if "modalities" in v:
            mods = v["modalities"]
            v["modalities"] = tuple(mods.split(",") if isinstance(mods, str) else mods)
        return cls(**v)


def build_item_encoder(
    arm: str,
    dataset: Dataset,
    dim: int,
    motor: MotorSettings,
    seed: int,
    cache_dir: Optional[Path],
    fit_items: Optional[np.ndarray] = None,
):
    """The item encoder for ``arm``; ``fit_items`` restricts PQ fitting (cold-start: warm items)."""
    from motor.encoders import IdEmbedding

    if arm == "id":
        return IdEmbedding(dataset.n_items, dim)
    if arm == "motor":
        from motor.encoders import MotorEncoder
        from motor.tcn import TcnConfig

        tcn = TcnConfig(
            hidden=motor.tcn_hidden or dim,
            dropout=motor.tcn_dropout,
            first_order=motor.first_order,
            second_order=motor.second_order,
            high_order=motor.high_order,
            combine=motor.combine,
        )
        return MotorEncoder.from_features(
            dataset.features, motor.spec(), dim, tcn, seed=seed,
            cache_dir=None if cache_dir is None else Path(cache_dir) / "pq", fit_items=fit_items,
        )
    raise ValueError(f"unknown arm {arm!r}; expected one of {', '.join(ARMS)}")
