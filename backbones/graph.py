"""The one shared graph module: user-item adjacency, item kNN graphs, propagation.

All graphs are torch sparse COO tensors (coalesced) so every backbone runs on any device with
plain ``torch.sparse.mm``; no dense n_items x n_items matrix is ever materialised.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor
import torch.nn.functional as F

from backbones.cache import load_or_build

_EPS = 1e-7


def sparse(indices: Tensor, values: Tensor, shape) -> Tensor:
    """A coalesced COO tensor (duplicates summed); the one constructor every model uses."""
    return torch.sparse_coo_tensor(indices, values, tuple(shape), check_invariants=False).coalesce()


def to_torch_sparse(m: sp.spmatrix, device: Optional[torch.device] = None) -> Tensor:
    coo = m.tocoo()
    idx = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    val = torch.from_numpy(coo.data.astype(np.float32))
    out = sparse(idx, val, coo.shape)
    return out if device is None else out.to(device)


def sym_normalize(a: sp.spmatrix) -> sp.csr_matrix:
    """D_r^-1/2 A D_c^-1/2 with row/column sums as degrees (epsilon avoids 0^-1/2)."""
    a = sp.csr_matrix(a, dtype=np.float32)
    dr = np.power(np.asarray(a.sum(axis=1)).ravel() + _EPS, -0.5)
    dc = np.power(np.asarray(a.sum(axis=0)).ravel() + _EPS, -0.5)
    return (sp.diags(dr) @ a @ sp.diags(dc)).tocsr().astype(np.float32)


def row_normalize(a: sp.spmatrix) -> sp.csr_matrix:
    """D^-1 A (row v averages v's neighbours); rows without entries stay all-zero."""
    a = sp.csr_matrix(a, dtype=np.float32)
    deg = np.asarray(a.sum(axis=1)).ravel()
    inv = np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)
    return (sp.diags(inv) @ a).tocsr().astype(np.float32)


def bipartite(train: sp.spmatrix) -> sp.csr_matrix:
    """The symmetric (U+I) x (U+I) binary adjacency of the user-item train graph."""
    r = sp.csr_matrix(train, dtype=np.float32)
    r.data[:] = 1.0
    return sp.bmat([[None, r], [r.T, None]], format="csr", dtype=np.float32)


def normalized_adjacency(train: sp.spmatrix, device: Optional[torch.device] = None) -> Tensor:
    """LightGCN's D^-1/2 A D^-1/2 over the user-item graph, as a torch sparse tensor."""
    return to_torch_sparse(sym_normalize(bipartite(train)), device)


def propagate_mean(adj: Tensor, ego: Tensor, n_layers: int) -> Tensor:
    """LightGCN propagation: mean of the embeddings after 0..n_layers hops."""
    layers = [ego]
    h = ego
    for _ in range(n_layers):
        h = torch.sparse.mm(adj, h)
        layers.append(h)
    return torch.stack(layers, dim=0).mean(dim=0)


_EDGE_CHUNK = 1 << 16


class _EdgeSpMM(torch.autograd.Function):
    """(n_rows x n_cols matrix given by edge lists) @ x with gradients for the edge values."""

    @staticmethod
    def forward(ctx, rows, cols, values, x, n_rows):
        ctx.save_for_backward(rows, cols, values, x)
        ctx.n_rows = n_rows
        adj = sparse(torch.stack([rows, cols]), values.detach(), (n_rows, x.shape[0]))
        return torch.sparse.mm(adj, x.detach())

    @staticmethod
    def backward(ctx, grad):
        rows, cols, values, x = ctx.saved_tensors
        grad_values = grad_x = None
        if ctx.needs_input_grad[2]:  # d out / d v_e = <grad[row_e], x[col_e]>, in edge chunks
            grad_values = torch.empty_like(values)
            for s in range(0, rows.numel(), _EDGE_CHUNK):
                e = s + _EDGE_CHUNK
                grad_values[s:e] = (grad[rows[s:e]] * x[cols[s:e]]).sum(-1)
        if ctx.needs_input_grad[3]:
            adj_t = sparse(torch.stack([cols, rows]), values.detach(), (x.shape[0], ctx.n_rows))
            grad_x = torch.sparse.mm(adj_t, grad)
        return None, None, grad_values, grad_x, None


def spmm_edges(rows: Tensor, cols: Tensor, values: Tensor, x: Tensor, n_rows: Optional[int] = None) -> Tensor:
    """A @ x for the sparse A with entries A[rows[e], cols[e]] += values[e], differentiable in
    ``values`` and ``x``. Unlike ``torch.sparse.mm`` with a values-requiring-grad sparse tensor
    (whose backward forms the dense grad @ x.T, an n x n matrix), the values' gradient is computed
    edge by edge in chunks, so memory stays O(nnz + n * d). For learnable edge weights."""
    n = x.shape[0] if n_rows is None else n_rows
    return _EdgeSpMM.apply(rows, cols, values, x, n)


def topk_cosine(features: Tensor, k: int, chunk: int = 2048) -> tuple[Tensor, Tensor]:
    """Each row's k most cosine-similar rows (itself included), computed in row chunks."""
    n = features.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"kNN graph needs 1 <= k <= n_items, got k={k}, n_items={n}")
    x = F.normalize(features.float(), dim=1)
    vals, idxs = [], []
    for start in range(0, n, chunk):
        sim = x[start : start + chunk] @ x.T
        v, i = torch.topk(sim, k, dim=1)
        vals.append(v)
        idxs.append(i)
    return torch.cat(idxs), torch.cat(vals)


def knn_sparse(indices: Tensor, values: Optional[Tensor], n: int) -> Tensor:
    """Sparse (n x n) graph from per-row neighbour lists, symmetrically normalised by row sums
    (MMRec's normalised Laplacian: v_ij = a_ij / sqrt(d_i d_j), d = row sums).
    ``values=None`` gives a binary graph."""
    k = indices.shape[1]
    rows = torch.arange(n, device=indices.device).repeat_interleave(k)
    cols = indices.reshape(-1)
    w = torch.ones_like(cols, dtype=torch.float32) if values is None else values.reshape(-1).float()
    deg = torch.zeros(n, device=indices.device).index_add_(0, rows, w)
    inv = (deg + _EPS).pow(-0.5)
    w = inv[rows] * w * inv[cols]
    return sparse(torch.stack([rows, cols]), w, (n, n))


def knn_graph(
    features: np.ndarray,
    k: int,
    weighted: bool = False,
    cache_dir=None,
    cache_key: str = "",
    device: Optional[torch.device] = None,
) -> Tensor:
    """Sparse top-k cosine item graph from frozen features, cached on disk when a key is given."""

    def build() -> dict[str, np.ndarray]:
        idx, val = topk_cosine(torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)), k)
        return {"indices": idx.numpy().astype(np.int64), "values": val.numpy()}

    arrays = load_or_build(cache_dir if cache_key else None, "knn", f"{cache_key}-k{k}", build)
    idx = torch.from_numpy(arrays["indices"])
    val = torch.from_numpy(arrays["values"]) if weighted else None
    graph = knn_sparse(idx, val, features.shape[0])
    return graph if device is None else graph.to(device)


def to_csr(t: Tensor) -> Tensor:
    """CSR layout for propagation (torch flags CSR support as beta: that warning is silenced)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return t.coalesce().to_sparse_csr()


class _PropagateWithTranspose(torch.autograd.Function):
    """A @ x whose gradient A^T @ grad uses a stored transpose: both directions are plain
    CSR x dense products (about twice as fast as COO on CPU, no per-step transpose)."""

    @staticmethod
    def forward(ctx, a, a_t, x):
        ctx.a_t = a_t
        return torch.sparse.mm(a, x)

    @staticmethod
    def backward(ctx, grad):
        return None, None, torch.sparse.mm(ctx.a_t, grad)


def propagate_csr(a: Tensor, a_t: Tensor, x: Tensor) -> Tensor:
    """A @ x for a fixed graph held as CSR ``a`` with its CSR transpose ``a_t`` (see to_csr)."""
    return _PropagateWithTranspose.apply(a, a_t, x)


def propagate_sum_csr(a: Tensor, a_t: Tensor, x: Tensor, n_layers: int) -> Tensor:
    """x + A x + ... + A^n_layers x (``aggr_mode = add`` hop sums) for a CSR pair."""
    out, h = x, x
    for _ in range(n_layers):
        h = propagate_csr(a, a_t, h)
        out = out + h
    return out


def register_csr_pair(module: torch.nn.Module, name: str, graph: Tensor) -> None:
    """Register a fixed graph as non-persistent CSR buffers ``name`` and ``name_t`` (its
    transpose), the pair ``propagate_csr`` takes; they follow ``module.to(device)``."""
    module.register_buffer(name, to_csr(graph), persistent=False)
    module.register_buffer(f"{name}_t", to_csr(graph.t()), persistent=False)
