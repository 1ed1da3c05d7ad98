import numpy as np
import pytest
import scipy.sparse as sp
import torch

import backbones.dualgnn as dualgnn
from backbones.dualgnn import DualGNNConfig, cooccurrence_topk, user_graph
from benchmark.dataset import Dataset
from backbones.graph import propagate_csr, to_csr
from tests.backbone_contract import check_backbone


@pytest.mark.parametrize("arm", ["id", "motor"])
def test_contract(arm, tmp_path):
    check_backbone("dualgnn", arm, tmp_cache=tmp_path)


def brute_force(train: np.ndarray, k: int):
    """Per user: users sharing >= 1 item, by shared count desc then index asc; softmax weights."""
    n = train.shape[0]
    out = {}
    for u in range(n):
        shared = [(int((train[u] & train[v]).sum()), v) for v in range(n) if v != u]
        shared = [(c, v) for c, v in shared if c > 0]
        shared.sort(key=lambda cv: (-cv[0], cv[1]))
        top = shared[:k]
        if top:
            c = np.array([t[0] for t in top], dtype=np.float64)
            w = np.exp(c - c.max())
            out[u] = ([t[1] for t in top], [t[0] for t in top], w / w.sum())
    return out


def tiny_train(seed=0, n_users=30, n_items=12):
    rng = np.random.default_rng(seed)
    m = (rng.random((n_users, n_items)) < 0.25).astype(np.int64)
    m[0] = 0  # a user without train items has no neighbours
    return m


@pytest.mark.parametrize("chunk", [1, 7, 10**9])
def test_user_graph_equals_brute_force(chunk):
    dense = tiny_train()
    k = 3
    rows, cols, counts = cooccurrence_topk(sp.csr_matrix(dense), k, max_chunk_nnz=chunk)
    expected = brute_force(dense, k)
    assert sorted(set(rows.tolist())) == sorted(expected)
    for u, (nbrs, cnts, _) in expected.items():
        assert cols[rows == u].tolist() == nbrs
        assert counts[rows == u].tolist() == cnts


def _data(dense, cache_dir, seed=0):
    n_users, n_items = dense.shape
    empty = sp.csr_matrix((n_users, n_items), dtype=np.float32)
    feats = {"image": np.random.default_rng(seed).normal(size=(n_items, 5)).astype(np.float32)}
    ds = Dataset("t", n_users, n_items, sp.csr_matrix(dense, dtype=np.float32), empty, empty, feats)
    return ds.to_input(cache_dir)


def test_user_graph_weights_are_softmax_of_counts(tmp_path):
    dense = tiny_train(1)
    g = user_graph(_data(dense, tmp_path), 3).to_dense().numpy()
    expected = brute_force(dense, 3)
    want = np.zeros_like(g)
    for u, (nbrs, _, w) in expected.items():
        want[u, nbrs] = w
    np.testing.assert_allclose(g, want, rtol=1e-6, atol=1e-7)
    assert np.all(g[0] == 0)


def test_user_graph_cache_key_follows_train_split(tmp_path, monkeypatch):
    a = tiny_train(2)
    b = a.copy()
    b[3, :] = 1 - b[3, :]  # a different train split, same features
    da, db = _data(a, tmp_path), _data(b, tmp_path)
    assert da.cache_key("dualgnn-uu", 40) != db.cache_key("dualgnn-uu", 40)
    ga, gb = user_graph(da, 3), user_graph(db, 3)
    assert len(list((tmp_path / "dualgnn-uu").glob("*.npz"))) == 2
    assert not torch.equal(ga.to_dense(), gb.to_dense())

    def fail(*args, **kwargs):
        raise AssertionError("should have been loaded from the cache")

    monkeypatch.setattr(dualgnn, "cooccurrence_topk", fail)
    assert torch.equal(user_graph(da, 3).to_dense(), ga.to_dense())


def test_unknown_aggr_mode_is_rejected():
    with pytest.raises(ValueError, match="aggr_mode"):
        DualGNNConfig.from_dict({"aggr_mode": "max"})


def test_propagation_gradient_uses_the_transpose():
    """The CSR propagation's backward (A^T grad from the stored transpose) matches dense autograd."""
    rng = np.random.default_rng(3)
    dense = rng.random((9, 9)) * (rng.random((9, 9)) < 0.4)  # not symmetric
    a = torch.tensor(dense, dtype=torch.float32).to_sparse()
    x = torch.randn(9, 4, requires_grad=True)
    w = torch.randn(9, 4)
    (propagate_csr(to_csr(a), to_csr(a.t()), x) * w).sum().backward()
    x2 = x.detach().clone().requires_grad_(True)
    (torch.tensor(dense, dtype=torch.float32) @ x2 * w).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)
