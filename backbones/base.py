"""The backbone contract, its input type, typed configs and the registry.

Backbones never import the harness: what they need from a dataset arrives as
:class:`InteractionData` (plain arrays), and the item representation arrives as an
:class:`motor.encoders.ItemEncoder`.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Optional

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from motor.encoders import ItemEncoder


@dataclass(frozen=True)
class InteractionData:
    """What a backbone may know about a dataset: sizes, the train matrix and frozen features.

    ``train`` is a binary users x items CSR matrix of training interactions only.
    ``features`` maps a modality name ("image", "text") to a float32 (n_items, d) array.
    ``fingerprint`` identifies train matrix + features; derived caches are keyed by it.
    ``cache_dir`` is where derived artefacts (kNN graphs, co-occurrence graphs) may be stored;
    None disables on-disk caching.
    """

    n_users: int
    n_items: int
    train: sp.csr_matrix
    features: Mapping[str, np.ndarray] = field(default_factory=dict)
    cache_dir: Optional[Path] = None
    fingerprint: str = ""

    def feature(self, modality: str, model: str) -> np.ndarray:
        if modality not in self.features:
            have = ", ".join(sorted(self.features)) or "none"
            raise MissingFeatureError(
                f"{model} needs {modality} features, but the dataset has {have}"
            )
        return self.features[modality]

    def present_modalities(self, model: str) -> list[str]:
        """The feature modalities present (image before text); at least one is required."""
        present = [m for m in ("image", "text") if m in self.features]
        if not present:
            self.feature("image", model)  # raises the standard missing-feature error
        return present

    def cache_key(self, *parts: Any) -> str:
        """A key over the data fingerprint and the given parameters."""
        h = hashlib.sha256(self.fingerprint.encode())
        for p in parts:
            h.update(repr(p).encode())
        return h.hexdigest()[:20]


class MissingFeatureError(ValueError):
    """A multimodal backbone was given a dataset without a modality it needs."""


class UnknownKeyError(ValueError):
    pass


@dataclass(frozen=True)
class BackboneConfig:
    """Base of every backbone's typed config.

    Subclasses hold the original defaults as field defaults and their own search space as the
    class attribute ``search_space`` (name -> list of candidate values; MMRec's grid is the
    reference), so tuning is data, not code.
    """

    embedding_dim: int = 64
    learning_rate: float = 1e-3
    search_space: ClassVar[Mapping[str, tuple]] = {}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "BackboneConfig":
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise UnknownKeyError(
                f"{cls.__name__}: unknown key(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(names))}"
            )
        coerced = {k: _coerce(v, names[k].type, cls.__name__, k) for k, v in values.items()}
        return cls(**coerced)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "BackboneConfig":
        return type(self).from_dict({**self.to_dict(), **changes})


def _coerce(value: Any, annotation: Any, owner: str, key: str) -> Any:
    """Coerce CLI strings to the field's declared scalar type; reject what does not fit."""
    kind = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    try:
        if kind == "bool":
            if isinstance(value, str):
                low = value.lower()
                if low not in {"true", "false", "1", "0", "yes", "no"}:
                    raise ValueError(value)
                return low in {"true", "1", "yes"}
            return bool(value)
        if kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "str":
            return str(value)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}.{key}: expected {kind}, got {value!r}") from None
    return value


@dataclass
class Batch:
    """One training batch: users, their positive items and one sampled negative per pair."""

    users: Tensor
    pos: Tensor
    neg: Tensor

    @classmethod
    def from_numpy(cls, users, pos, neg, device) -> "Batch":
        """The sampler's index arrays as tensors on ``device``."""
        return cls(*(torch.from_numpy(a).to(device) for a in (users, pos, neg)))


class Backbone(nn.Module):
    """A recommender that takes its item representation from an item encoder.

    Subclasses set ``name`` and ``Config`` and implement ``loss`` and ``scorer``.
    ``scorer()`` is called once per evaluation, with the model in eval mode under no_grad; it
    recomputes every representation it needs (no state cached during training) and returns a
    function mapping a LongTensor of users to a (len(users), n_items) score matrix.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type[BackboneConfig]] = BackboneConfig
    modalities: ClassVar[tuple[str, ...]] = ()  # features the model cannot run without
    uses_item_encoder: ClassVar[bool] = True
    trainable: ClassVar[bool] = True

    def __init__(self, data: InteractionData, item_encoder: Optional[ItemEncoder], config: BackboneConfig):
        super().__init__()
        if not isinstance(config, self.Config):
            raise TypeError(f"{self.name} expects {self.Config.__name__}, got {type(config).__name__}")
        for m in self.modalities:
            data.feature(m, self.name)
        if self.uses_item_encoder:
            if item_encoder is None:
                raise ValueError(f"{self.name} needs an item encoder")
            if item_encoder.n_items != data.n_items or item_encoder.dim != config.embedding_dim:
                raise ValueError(
                    f"{self.name}: item encoder is ({item_encoder.n_items}, {item_encoder.dim}), "
                    f"expected ({data.n_items}, {config.embedding_dim})"
                )
        self.n_users, self.n_items = data.n_users, data.n_items
        self.config = config
        self.item_encoder = item_encoder

    def device(self) -> torch.device:
        for t in self.parameters():
            return t.device
        for t in self.buffers():
            return t.device
        return torch.device("cpu")

    def loss(self, batch: Batch) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def scorer(self) -> Callable[[Tensor], Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def score_users(self, users: Tensor) -> Tensor:
        """Scores of all items for ``users``, recomputed in eval mode."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                return self.scorer()(users)
        finally:
            self.train(was_training)

    def on_epoch_start(self, epoch: int) -> None:
        """Hook for per-epoch work (graph rebuilding, edge dropout resampling)."""

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


_REGISTRY: dict[str, type[Backbone]] = {}


def register(cls: type[Backbone]) -> type[Backbone]:
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"backbone {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def registered() -> dict[str, type[Backbone]]:
    import backbones  # noqa: F401  (importing the package registers every model)

    return dict(sorted(_REGISTRY.items()))


def get_backbone(name: str) -> type[Backbone]:
    models = registered()
    if name not in models:
        raise KeyError(f"unknown backbone {name!r}; registered: {', '.join(models)}")
    return models[name]
