import math

import pytest
import torch

from backbones.base import Batch
from backbones.slmrec import SLMRecConfig, info_nce
from benchmark.run import RunSpec, build_model
from tests.backbone_contract import check_backbone, tiny_dataset


@pytest.mark.parametrize("arm", ["id", "motor"])
def test_contract(arm, tmp_path):
    check_backbone("slmrec", arm, tmp_cache=tmp_path)


def test_info_nce_hand_checked():
    a = torch.eye(2)
    # logits = I / 1: each row's loss is -log(e / (e + 1)) = log(1 + e^-1)
    assert math.isclose(info_nce(a, a, 1.0).item(), math.log(1 + math.exp(-1)), rel_tol=1e-6)
    # temperature 0.5 doubles the logits
    assert math.isclose(info_nce(a, a, 0.5).item(), math.log(1 + math.exp(-2)), rel_tol=1e-6)


def _model(**params):
    torch.manual_seed(0)
    return build_model(RunSpec("tiny", "slmrec", "id", params=params), tiny_dataset(), None)


def test_loss_ignores_sampled_negatives_and_adds_fac():
    model = _model()
    users, pos = torch.tensor([0, 1, 2, 3]), torch.tensor([5, 6, 7, 8])
    a = model.loss(Batch(users, pos, torch.tensor([9, 10, 11, 12])))
    b = model.loss(Batch(users, pos, torch.tensor([20, 30, 40, 50])))
    assert torch.equal(a, b)
    # total = InfoNCE + ssl_alpha * FAC
    no_ssl = _model(ssl_alpha=0.0).loss(Batch(users, pos, pos))
    _, _, parts = model.compute()
    fac = model.fac(parts, pos)
    assert torch.allclose(a, no_ssl + model.config.ssl_alpha * fac, atol=1e-6)


def test_search_space_is_the_mmrec_grid_without_dead_reg():
    space = SLMRecConfig.search_space
    assert set(space) == {"learning_rate", "ssl_temp", "ssl_alpha"}
    assert SLMRecConfig().weight_decay == 1e-4
