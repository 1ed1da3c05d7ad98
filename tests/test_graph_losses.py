"""The shared graph and loss helpers on hand-computed cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from backbones.graph import propagate_csr, register_csr_pair, row_normalize, sym_normalize
from backbones.losses import bpr_loss, id_pair_reg, log2_bpr_loss, preference_reg


def test_row_normalize_averages_neighbours_and_keeps_empty_rows_zero():
    a = sp.csr_matrix(np.array([[0, 1, 1], [1, 0, 0], [0, 0, 0]], dtype=np.float32))
    expected = np.array([[0, 0.5, 0.5], [1, 0, 0], [0, 0, 0]], dtype=np.float32)
    np.testing.assert_allclose(row_normalize(a).toarray(), expected)


def test_sym_normalize_hand_case():
    a = sp.csr_matrix(np.array([[0, 1], [1, 0]], dtype=np.float32))
    np.testing.assert_allclose(sym_normalize(a).toarray(), [[0, 1], [1, 0]], atol=1e-6)


def test_csr_pair_propagation_matches_dense_forward_and_backward():
    dense = torch.tensor([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    m = torch.nn.Module()
    register_csr_pair(m, "g", dense.to_sparse())
    x = torch.randn(3, 4, requires_grad=True)
    out = propagate_csr(m.g, m.g_t, x)
    out.pow(2).sum().backward()
    ref_x = x.detach().clone().requires_grad_(True)
    (dense @ ref_x).pow(2).sum().backward()
    torch.testing.assert_close(out, dense @ x.detach())
    torch.testing.assert_close(x.grad, ref_x.grad)
    assert set(dict(m.named_buffers())) == {"g", "g_t"}
    assert "g" not in m.state_dict()  # derived from the data, never saved with the weights


def test_log2_bpr_is_bpr_over_ln2():
    pos, neg = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0])
    expected = (math.log(1 + math.exp(-2.0)) + math.log(2.0)) / 2
    assert bpr_loss(pos, neg).item() == pytest.approx(expected)
    assert log2_bpr_loss(pos, neg).item() == pytest.approx(expected / math.log(2.0))


def test_id_pair_reg_and_preference_reg_hand_case():
    u = torch.tensor([[1.0, 1.0]])  # one pair, d = 2
    pos, neg = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 0.0]])
    # rows (u, pos) and (u, neg): (2 * 2 + 4 + 0) / (2 * 2) = 2
    assert id_pair_reg(u, pos, neg).item() == pytest.approx(2.0)
    prefs = [torch.tensor([[1.0, 3.0], [5.0, 5.0]]), torch.tensor([[2.0, 0.0], [0.0, 0.0]])]
    # batch user 0: mean(1, 9) + mean(4, 0) = 5 + 2
    assert preference_reg(prefs, torch.tensor([0])).item() == pytest.approx(7.0)

