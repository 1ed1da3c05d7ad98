"""The Token Cross Network (motor.tcn)."""
import itertools

import pytest
import torch

from motor.space import tcn_parameters
from motor.tcn import TcnConfig, TokenCrossNetwork


def test_second_order_equals_explicit_pair_sum():
    torch.manual_seed(0)
    e = torch.randn(5, 6, 4, dtype=torch.float64)
    explicit = sum(e[:, j] * e[:, k] for j, k in itertools.combinations(range(6), 2))
    torch.testing.assert_close(TokenCrossNetwork.second_order_interaction(e), explicit)
    net = TokenCrossNetwork(6, 4, first_order=False, high_order=False).double()
    torch.testing.assert_close(net(e), explicit)


def test_first_order_is_weighted_sum_initialised_to_mean():
    e = torch.randn(3, 5, 7)
    net = TokenCrossNetwork(5, 7, second_order=False, high_order=False)
    torch.testing.assert_close(net.order1_weight.detach(), torch.full((5,), 0.2))
    torch.testing.assert_close(net(e), e.mean(1))


def test_sum_combines_branches_and_shapes():
    torch.manual_seed(1)
    e = torch.randn(3, 4, 8)
    net = TokenCrossNetwork(4, 8, hidden=16)
    h1 = torch.einsum("bnd,n->bd", e, net.order1_weight)
    h2 = TokenCrossNetwork.second_order_interaction(e)
    h3 = net.mlp(e.reshape(3, 32))
    torch.testing.assert_close(net(e), h1 + h2 + h3)
    cat = TokenCrossNetwork(4, 8, combine="concat", second_order=False)
    assert cat(e).shape == (3, 8) and cat.out.in_features == 16
    with pytest.raises(ValueError, match="expects"):
        net(torch.randn(3, 5, 8))


@pytest.mark.parametrize(
    "cfg",
    [TcnConfig(), TcnConfig(hidden=5), TcnConfig(combine="concat"),
     TcnConfig(first_order=False, combine="concat"), TcnConfig(high_order=False),
     TcnConfig(second_order=False, high_order=False)],
)
def test_parameter_count_formula(cfg):
    net = TokenCrossNetwork.from_config(6, 8, cfg)
    assert sum(p.numel() for p in net.parameters()) == tcn_parameters(6, 8, cfg)


def test_config_errors():
    with pytest.raises(ValueError, match="all three branches are off"):
        TcnConfig(first_order=False, second_order=False, high_order=False)
    with pytest.raises(ValueError, match="all three branches are off"):
        TokenCrossNetwork(3, 4, first_order=False, second_order=False, high_order=False)
    with pytest.raises(ValueError, match="combine"):
        TcnConfig(combine="max")
    with pytest.raises(ValueError, match="dropout"):
        TcnConfig(dropout=1.0)
    assert TcnConfig(modalities=["text"]).modalities == ("text",)


def test_gradients_flow_to_every_parameter():
    net = TokenCrossNetwork(4, 8, combine="concat", dropout=0.1)
    e = torch.randn(6, 4, 8, requires_grad=True)
    net(e).square().sum().backward()
    assert e.grad is not None
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
