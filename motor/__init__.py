"""MOTOR: ID-free item representations from product-quantized multimodal tokens.

This package depends on torch, numpy and faiss only; it knows nothing of the backbones or the
harness. Its public face is the item-encoder contract in :mod:`motor.encoders`.
"""
from motor.encoders import IdEmbedding, ItemEncoder, MotorEncoder
from motor.space import (
    code_bytes,
    id_item_parameters,
    motor_item_parameters,
    motor_parameter_breakdown,
    tcn_parameters,
)
from motor.tcn import TcnConfig, TokenCrossNetwork
from motor.tokenizer import PQResult, TokenizerError, tokenize, tokenize_modalities

__all__ = [
    "ItemEncoder",
    "IdEmbedding",
    "MotorEncoder",
    "TcnConfig",
    "TokenCrossNetwork",
    "PQResult",
    "TokenizerError",
    "tokenize",
    "tokenize_modalities",
    "id_item_parameters",
    "motor_item_parameters",
    "motor_parameter_breakdown",
    "tcn_parameters",
    "code_bytes",
]
