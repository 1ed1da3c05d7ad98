"""Recommender backbones. Importing this package registers every model."""
from backbones.base import (
    Backbone,
    BackboneConfig,
    Batch,
    InteractionData,
    MissingFeatureError,
    get_backbone,
    register,
    registered,
)

# Each model module registers itself on import.
from backbones import freedom, pop, vbpr  # noqa: E402,F401

__all__ = [
    "Backbone",
    "BackboneConfig",
    "Batch",
    "InteractionData",
    "MissingFeatureError",
    "get_backbone",
    "register",
    "registered",
]
