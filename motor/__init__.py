"""MOTOR: ID-free item representations from product-quantized multimodal tokens.

This package depends on torch, numpy and faiss only; it knows nothing of the backbones or the
harness. Its public face is the item-encoder contract in :mod:`motor.encoders`.
"""
from motor.encoders import IdEmbedding, ItemEncoder

__all__ = ["ItemEncoder", "IdEmbedding"]
