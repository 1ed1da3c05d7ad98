import pytest
import torch

from backbones.base import MissingFeatureError, get_backbone
from backbones.lgmrec import hypergraph_pass, info_nce_sum
from benchmark.run import RunSpec, build_model
from tests.backbone_contract import check_backbone, tiny_dataset


@pytest.mark.parametrize("arm", ["id", "motor"])
def test_contract(arm, tmp_path):
    check_backbone("lgmrec", arm, tmp_cache=tmp_path)


@pytest.mark.parametrize("have", [("image",), ("text",)])
def test_needs_both_modalities(have):
    with pytest.raises(MissingFeatureError, match="lgmrec needs"):
        build_model(RunSpec("tiny", "lgmrec"), tiny_dataset(modalities=have), None)


def test_hypergraph_pass_by_hand():
    h_item = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    h_user = torch.tensor([[0.2, 0.8]])
    e = torch.tensor([[1.0], [2.0], [3.0]])
    u, i = hypergraph_pass(h_item, h_user, e, 1)
    lat = torch.tensor([[1.0 + 1.0], [1.0 + 3.0]])  # hyperedge 0: 1*1 + .5*2; hyperedge 1: .5*2 + 1*3
    assert torch.allclose(i, h_item @ lat)
    assert torch.allclose(u, torch.tensor([[0.2 * 2 + 0.8 * 4]]))
    u2, i2 = hypergraph_pass(h_item, h_user, e, 2)
    lat2 = h_item.T @ (h_item @ lat)
    assert torch.allclose(u2, h_user @ lat2) and torch.allclose(i2, h_item @ lat2)


def test_info_nce_matches_port_formula():
    g = torch.Generator().manual_seed(0)
    a, p, x = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g), torch.randn(9, 4, generator=g)
    n = torch.nn.functional.normalize
    pos = torch.exp((n(a) * n(p)).sum(1) / 0.2)
    ttl = torch.exp(n(a) @ n(x).T / 0.2).sum(1)
    assert torch.allclose(info_nce_sum(a, p, x, 0.2), -torch.log(pos / ttl).sum(), rtol=1e-5)


def test_gumbel_noise_only_while_training():
    torch.manual_seed(0)
    model = build_model(RunSpec("tiny", "lgmrec"), tiny_dataset(), None)
    logits = torch.randn(6, 4)
    model.train()
    assert not torch.equal(model._assign(logits), model._assign(logits))
    model.eval()
    assert torch.allclose(model._assign(logits), torch.softmax(logits / model.config.tau, dim=1))
    with torch.no_grad():
        first = model.forward()[0]
        assert torch.equal(first, model.forward()[0])


def test_user_mean_rows_average_train_items():
    data = tiny_dataset()
    model = build_model(RunSpec("tiny", "lgmrec"), data, None)
    dense = model.user_mean.to_dense()
    deg = torch.from_numpy(data.train.sum(axis=1).A.ravel()).float()
    assert torch.allclose(dense.sum(1), torch.ones_like(deg), atol=1e-5)
    assert torch.equal(dense > 0, torch.from_numpy(data.train.toarray() > 0))


def test_dataset_defaults_are_applied_and_overridable():
    cls = get_backbone("lgmrec")
    assert RunSpec("clothing", "lgmrec").backbone_config().hyper_num == 64
    baby = RunSpec("baby", "lgmrec").backbone_config()
    assert (baby.n_hyper_layer, baby.hyper_num, baby.keep_rate, baby.alpha) == (1, 4, 0.5, 0.3)
    assert RunSpec("clothing", "lgmrec", params={"alpha": 0.5}).backbone_config().alpha == 0.5
    fields = set(cls.Config().to_dict())
    for name, overrides in cls.Config.dataset_defaults.items():
        assert set(overrides) <= fields, name


def test_contrastive_gradient_matches_autograd():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    p = torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    x = torch.randn(8, 3, generator=g, dtype=torch.float64, requires_grad=True)
    info_nce_sum(a, p, x, 0.3).backward()
    got = [t.grad.clone() for t in (a, p, x)]
    for t in (a, p, x):
        t.grad = None
    n = torch.nn.functional.normalize
    ref = (torch.logsumexp(n(a) @ n(x).T / 0.3, 1) - (n(a) * n(p)).sum(1) / 0.3).sum()
    ref.backward()
    for mine, t in zip(got, (a, p, x)):
        assert torch.allclose(mine, t.grad)
