"""Recommender backbones. Importing this package registers every model module in it.

A new backbone is one module here that defines a ``Backbone`` subclass decorated with
``@register``; nothing else needs editing.
"""
import importlib
import pkgutil

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

_SUPPORT = {"base", "cache", "graph", "losses"}  # shared mechanisms, not models
for _mod in pkgutil.iter_modules(__path__):
    if _mod.name not in _SUPPORT and not _mod.name.startswith("_"):
        importlib.import_module(f"backbones.{_mod.name}")

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
