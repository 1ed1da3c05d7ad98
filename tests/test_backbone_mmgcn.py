import numpy as np
import pytest
import scipy.sparse as sp
import torch

from backbones.base import Batch, MissingFeatureError
from backbones.mmgcn import MMGCNConfig, mean_adjacency
from benchmark.run import RunSpec, build_model
from tests.backbone_contract import check_backbone, tiny_dataset


@pytest.mark.parametrize("arm", ["id", "motor"])
def test_contract(arm, tmp_path):
    check_backbone("mmgcn", arm, tmp_cache=tmp_path)


def test_mean_adjacency_by_hand():
    # users 0, 1; items 0, 1, 2 -> nodes u0 u1 i0 i1 i2; item 2 has no interaction
    train = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 0]], dtype=np.float32))
    a = mean_adjacency(train).to_dense()
    expect = torch.zeros(5, 5)
    expect[0, 2] = expect[0, 3] = 0.5  # u0 averages i0, i1
    expect[1, 3] = 1.0
    expect[2, 0] = 1.0
    expect[3, 0] = expect[3, 1] = 0.5  # i1 averages u0, u1
    assert torch.allclose(a, expect)  # the isolated item 2 aggregates nothing


def _model(**params):
    return build_model(RunSpec("tiny", "mmgcn", "id", params=params), tiny_dataset(), None)


def test_layers_honoured_and_all_user_tables_trained():
    for n in (1, 3):
        model = _model(n_layers=n)
        assert all(len(g.conv) == n for g in model.gcns.values())
    model = _model(n_layers=2, reg_weight=1e-3)
    # the port's defect: ID and preference tables were not parameters; here they must learn
    names = {n for n, _ in model.named_parameters()}
    assert {"user_id", "gcns.image.preference", "gcns.text.preference", "item_encoder.weight"} <= names
    batch = Batch(torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5]), torch.tensor([6, 7, 8]))
    model.loss(batch).backward()
    for name in ("user_id", "gcns.image.preference", "gcns.text.preference", "item_encoder.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_item_id_rows_come_from_the_encoder_in_every_modality():
    model = _model()
    model.eval()
    with torch.no_grad():
        _, items_a, _ = model.forward()
        model.item_encoder.weight[5] += 1.0
        _, items_b, _ = model.forward()
    changed = (items_a - items_b).abs().sum(1) > 0
    assert changed[5]


def test_element_wise_combination_and_text_latent():
    model = _model(concat=False, text_latent_dim=16)
    assert model.gcns["text"].mlp.out_features == 16
    assert model.gcns["image"].combine[0].in_features == 256
    scores = model.score_users(torch.arange(4))
    assert scores.shape == (4, 157) and torch.isfinite(scores).all()


def test_single_modality_and_missing_features():
    model = build_model(RunSpec("tiny", "mmgcn"), tiny_dataset(modalities=("text",)), None)
    assert list(model.gcns) == ["text"]
    with pytest.raises(MissingFeatureError, match="mmgcn needs"):
        build_model(RunSpec("tiny", "mmgcn"), tiny_dataset(modalities=()), None)
    with pytest.raises(ValueError, match="n_layers"):
        MMGCNConfig(n_layers=0)
