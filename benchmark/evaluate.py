"""Full-ranking evaluation with MMRec's conventions.

Every item is ranked for every evaluated user; the user's train items (and, optionally, valid
items at test time) are masked. A user is evaluated on a split when it holds at least one of
their interactions. Metrics (MMRec/RecBole definitions), for a user with target set T and top-K
hit indicators r_1..r_K:

- Recall@K    = sum_k r_k / |T|
- Precision@K = sum_k r_k / K
- NDCG@K      = sum_k r_k / log2(k+1)  /  sum_{k <= min(|T|,K)} 1 / log2(k+1)
- MAP@K       = sum_k r_k * Precision@k / min(|T|, K)

Per-user vectors are kept (for paired significance tests); the reported value is their mean.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

METRICS = ("recall", "ndcg", "precision", "map")
DEFAULT_KS = (5, 10, 20, 50)


@dataclass
class EvalResult:
    users: np.ndarray  # evaluated user ids
    per_user: dict[str, np.ndarray] = field(default_factory=dict)  # "recall@20" -> (n_users,)

    @property
    def means(self) -> dict[str, float]:
        return {k: float(v.mean()) if v.size else 0.0 for k, v in self.per_user.items()}


def metrics_from_hits(hits: np.ndarray, n_pos: np.ndarray, ks: Sequence[int]) -> dict[str, np.ndarray]:
    """Metrics from a (users, K_max) 0/1 hit matrix of ranked lists and each user's |T|."""
    hits = hits.astype(np.float64)
    n_pos = n_pos.astype(np.float64)
    kmax = hits.shape[1]
    ranks = np.arange(1, kmax + 1, dtype=np.float64)
    discount = 1.0 / np.log2(ranks + 1.0)
    cum_hits = np.cumsum(hits, axis=1)
    dcg = np.cumsum(hits * discount, axis=1)
    ideal = np.cumsum(discount)
    prec_at = cum_hits / ranks
    ap_sum = np.cumsum(prec_at * hits, axis=1)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        if k > kmax:
            raise ValueError(f"cutoff {k} exceeds the ranked list length {kmax}")
        c = k - 1
        denom = np.minimum(n_pos, k)
        out[f"recall@{k}"] = cum_hits[:, c] / n_pos
        out[f"ndcg@{k}"] = dcg[:, c] / ideal[denom.astype(int) - 1]
        out[f"precision@{k}"] = cum_hits[:, c] / k
        out[f"map@{k}"] = ap_sum[:, c] / denom
    return out


def _rows_to_tensor(m: sp.csr_matrix, users: np.ndarray, device: torch.device) -> tuple[Tensor, Tensor]:
    """(row-in-batch, item) index pairs of the given users' entries in m."""
    sub = m[users].tocoo()
    return (
        torch.from_numpy(sub.row.astype(np.int64)).to(device),
        torch.from_numpy(sub.col.astype(np.int64)).to(device),
    )


def evaluate(
    scorer: Callable[[Tensor], Tensor],
    target: sp.csr_matrix,
    masks: Iterable[sp.csr_matrix] = (),
    ks: Sequence[int] = DEFAULT_KS,
    batch_size: int = 4096,
    device: torch.device | str = "cpu",
    candidates: Optional[np.ndarray] = None,
) -> EvalResult:
    """Rank all items (or only ``candidates``) for every user with a target interaction.

    ``scorer`` maps a LongTensor of users to a (len(users), n_items) score matrix; items in
    ``masks`` (train, optionally valid) are excluded from each user's ranking.
    """
    device = torch.device(device)
    target = sp.csr_matrix(target)
    masks = [sp.csr_matrix(m) for m in masks]
    n_items = target.shape[1]
    n_pos_all = np.diff(target.indptr)
    users = np.flatnonzero(n_pos_all > 0)
    kmax = max(ks)
    blocked = None
    if candidates is not None:
        blocked = torch.ones(n_items, dtype=torch.bool, device=device)
        blocked[torch.as_tensor(candidates, dtype=torch.long, device=device)] = False
    hit_rows = []
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        scores = scorer(torch.from_numpy(batch).to(device)).float()
        if scores.shape != (len(batch), n_items):
            raise ValueError(f"scorer returned shape {tuple(scores.shape)}, expected {(len(batch), n_items)}")
        for m in masks:
            r, c = _rows_to_tensor(m, batch, device)
            scores[r, c] = -torch.inf
        if blocked is not None:
            scores[:, blocked] = -torch.inf
        top = torch.topk(scores, min(kmax, n_items), dim=1).indices
        r, c = _rows_to_tensor(target, batch, device)
        truth = torch.zeros(len(batch), n_items, dtype=torch.bool, device=device)
        truth[r, c] = True
        hits = torch.gather(truth, 1, top).cpu().numpy()
        if hits.shape[1] < kmax:  # fewer items than the largest cutoff
            hits = np.pad(hits, ((0, 0), (0, kmax - hits.shape[1])))
        hit_rows.append(hits)
    hits = np.concatenate(hit_rows) if hit_rows else np.zeros((0, kmax), dtype=bool)
    per_user = metrics_from_hits(hits, n_pos_all[users], ks)
    return EvalResult(users=users, per_user=per_user)
