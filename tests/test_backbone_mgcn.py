import pytest
import torch

from backbones.base import MissingFeatureError
from backbones.mgcn import in_batch_info_nce
from benchmark.run import RunSpec, build_model
from tests.backbone_contract import N_USERS, check_backbone, tiny_dataset


@pytest.mark.parametrize("arm", ["id", "motor"])
def test_contract(arm, tmp_path):
    check_backbone("mgcn", arm, tmp_cache=tmp_path)


def test_needs_both_modalities():
    with pytest.raises(MissingFeatureError, match="mgcn needs text"):
        build_model(RunSpec("tiny", "mgcn"), tiny_dataset(modalities=("image",)), None)


def test_in_batch_info_nce_matches_port_formula():
    g = torch.Generator().manual_seed(0)
    v1, v2 = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    n = torch.nn.functional.normalize
    pos = torch.exp((n(v1) * n(v2)).sum(-1) / 0.2)
    ttl = torch.exp(n(v1) @ n(v2).T / 0.2).sum(1)
    assert torch.allclose(in_batch_info_nce(v1, v2, 0.2), torch.mean(-torch.log(pos / ttl)), rtol=1e-5)


def test_user_view_uses_user_item_block_of_normalised_graph(tmp_path):
    model = build_model(RunSpec("tiny", "mgcn"), tiny_dataset(), tmp_path)
    block = model.norm_adj.to_dense()[:N_USERS, N_USERS:]
    assert torch.allclose(model.r_hat.to_dense(), block, atol=1e-6)


def test_lr_schedule_is_config_data():
    cfg = RunSpec("tiny", "mgcn").backbone_config()
    assert (cfg.lr_decay, cfg.lr_decay_step) == (0.96, 50)
