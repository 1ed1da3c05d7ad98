import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from backbones.base import Batch, InteractionData
from backbones.bpr import BPR, BPRConfig
from motor.encoders import IdEmbedding
from tests.backbone_contract import check_backbone


@pytest.mark.parametrize("arm", ["id", "motor"])
def test_contract(arm, tmp_path):
    check_backbone("bpr", arm, tmp_cache=tmp_path)


def test_loss_and_scores_by_hand():
    data = InteractionData(n_users=2, n_items=3, train=sp.csr_matrix(np.eye(2, 3, dtype=np.float32)))
    model = BPR(data, IdEmbedding(3, 2), BPRConfig(embedding_dim=2, reg_weight=0.1))
    with torch.no_grad():
        model.user.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        model.item_encoder.weight.copy_(torch.tensor([[1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]]))
    batch = Batch(torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([2, 2]))
    # pos scores 1, 2; neg scores -1, 0
    bpr = (F.softplus(torch.tensor(-2.0)) + F.softplus(torch.tensor(-2.0))) / 2
    reg = (np.sqrt(5.0) + np.sqrt(3.0) + np.sqrt(2.0)) / 2
    assert torch.allclose(model.loss(batch), bpr + 0.1 * reg, atol=1e-6)
    assert torch.equal(model.score_users(torch.tensor([1])), torch.tensor([[2.0, 2.0, 0.0]]))
