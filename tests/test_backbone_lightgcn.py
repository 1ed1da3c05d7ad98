import numpy as np
import pytest
import scipy.sparse as sp
import torch

from backbones.base import Batch, InteractionData
from backbones.lightgcn import LightGCN, LightGCNConfig
from motor.encoders import IdEmbedding
from tests.backbone_contract import check_backbone


@pytest.mark.parametrize("arm", ["id", "motor"])
def test_contract(arm, tmp_path):
    check_backbone("lightgcn", arm, tmp_cache=tmp_path)


def _tiny(n_layers, reg_weight=0.0):
    train = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1]], dtype=np.float32))
    data = InteractionData(n_users=2, n_items=3, train=train)
    torch.manual_seed(0)
    cfg = LightGCNConfig(embedding_dim=4, n_layers=n_layers, reg_weight=reg_weight)
    return LightGCN(data, IdEmbedding(3, 4), cfg), train.toarray()


def test_propagation_matches_dense_lightgcn():
    model, r = _tiny(n_layers=2)
    a = np.block([[np.zeros((2, 2)), r], [r.T, np.zeros((3, 3))]])
    d = a.sum(1) ** -0.5
    a_hat = torch.tensor(d[:, None] * a * d[None, :], dtype=torch.float32)
    ego = torch.cat([model.user, model.item_encoder()]).detach()
    expected = (ego + a_hat @ ego + a_hat @ a_hat @ ego) / 3
    scores = model.score_users(torch.arange(2))
    assert torch.allclose(scores, expected[:2] @ expected[2:].T, atol=1e-5)


def test_zero_layers_is_matrix_factorisation():
    model, _ = _tiny(n_layers=0)
    scores = model.score_users(torch.arange(2))
    assert torch.allclose(scores, (model.user @ model.item_encoder().T).detach())


def test_reg_term_is_embloss_of_ego_embeddings():
    batch = Batch(torch.tensor([0, 1]), torch.tensor([0, 2]), torch.tensor([2, 0]))
    plain, _ = _tiny(n_layers=1)
    reg, _ = _tiny(n_layers=1, reg_weight=0.5)
    u, x = reg.user[batch.users], reg.item_encoder()
    expected = 0.5 * (u.norm() + x[batch.pos].norm() + x[batch.neg].norm()) / 2
    assert torch.allclose(reg.loss(batch) - plain.loss(batch), expected, atol=1e-6)
