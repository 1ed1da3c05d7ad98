"""Space accounting of the item representation, as pure functions (method.md, "Space accounting").

- ID arm: ``n_items * d`` learnable floats.
- MOTOR arm: ``(sum_m M_m*K_m) * d`` token floats + TCN parameters, plus a fixed (not learned)
  code table of ``n_items * sum_m M_m`` codes taking ``ceil(log2 K_m / 8)`` bytes each.

TCN parameters with ``N = sum_m M_m`` tokens and ``h = hidden`` (``d`` when None):
first order ``N``; high order ``(N*d*h + h) + (h*d + d)``; concat combine ``(n_branches*d)*d + d``.
The second order has no parameters. These must equal ``MotorEncoder(...).n_parameters()``.
"""
from __future__ import annotations

from typing import Dict, Iterable, Mapping, Optional, Tuple

from motor.encoders import FP32_BYTES, code_width_bytes
from motor.tcn import TcnConfig

Spec = Mapping[str, Tuple[int, int]]


def _used(spec: Spec, modalities: Optional[Iterable[str]]) -> Dict[str, Tuple[int, int]]:
    if modalities is None:
        return {m: (int(M), int(K)) for m, (M, K) in spec.items()}
    missing = [m for m in modalities if m not in spec]
    if missing:
        raise ValueError(f"modalities {missing} are not in the spec {sorted(spec)}")
    return {m: (int(spec[m][0]), int(spec[m][1])) for m in modalities}


def id_item_parameters(n_items: int, d: int) -> int:
    """Learnable floats of the ID arm's item table."""
    return int(n_items) * int(d)


def tcn_parameters(n_tokens: int, d: int, tcn: Optional[TcnConfig] = None) -> int:
    """Parameters of a Token Cross Network over ``n_tokens`` tokens of size ``d``."""
    tcn = TcnConfig() if tcn is None else tcn
    N, d, h = int(n_tokens), int(d), tcn.hidden_for(d)
    total = 0
    if tcn.first_order:
        total += N
    if tcn.high_order:
        total += (N * d * h + h) + (h * d + d)
    if tcn.combine == "concat":
        total += tcn.n_branches * d * d + d
    return total


def motor_parameter_breakdown(spec: Spec, d: int, tcn: Optional[TcnConfig] = None) -> Dict[str, int]:
    """``{"token_table", "tcn", "total"}`` learnable floats of the MOTOR item representation."""
    tcn = TcnConfig() if tcn is None else tcn
    used = _used(spec, tcn.modalities)
    token_rows = sum(M * K for M, K in used.values())
    n_tokens = sum(M for M, _ in used.values())
    table = token_rows * int(d)
    net = tcn_parameters(n_tokens, d, tcn)
    return {"token_table": table, "tcn": net, "total": table + net}


def motor_item_parameters(spec: Spec, d: int, tcn: Optional[TcnConfig] = None) -> int:
    """Learnable floats of the MOTOR item representation (token table + TCN)."""
    return motor_parameter_breakdown(spec, d, tcn)["total"]


def code_bytes(n_items: int, spec: Spec, modalities: Optional[Iterable[str]] = None) -> int:
    """Bytes of the fixed code table: ``sum_m n_items * M_m * ceil(log2 K_m / 8)``."""
    return sum(int(n_items) * M * code_width_bytes(K) for M, K in _used(spec, modalities).values())


def parameter_bytes(n_parameters: int) -> int:
    """fp32 bytes of ``n_parameters`` learnable floats."""
    return int(n_parameters) * FP32_BYTES
