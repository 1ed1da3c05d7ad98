import pytest
import torch

from backbones.dualgnn import user_graph
from backbones.graph import to_csr
from benchmark.run import RunSpec, build_model
from tests.backbone_contract import N_ITEMS, N_USERS, check_backbone, tiny_dataset


@pytest.mark.parametrize("arm", ["id", "motor"])
def test_contract(arm, tmp_path):
    # the authors' lr 1e-4 barely moves the loss in two epochs on the tiny data
    check_backbone("dragon", arm, params={"learning_rate": 1e-3}, tmp_cache=tmp_path)


def test_clothing_defaults_are_data():
    assert RunSpec("clothing", "dragon").backbone_config().reg_weight == 0.1
    baby = RunSpec("baby", "dragon").backbone_config()
    assert (baby.learning_rate, baby.reg_weight) == (1e-4, 1e-3)


def test_attentive_concatenation_and_homogeneous_graphs(tmp_path):
    data = tiny_dataset()
    model = build_model(RunSpec("tiny", "dragon"), data, tmp_path)
    model.eval()
    with torch.no_grad():
        users, items = model.forward()
    assert users.shape == (N_USERS, 128) and items.shape == (N_ITEMS, 128)
    # the user-user graph is DualGNN's top-40 co-occurrence graph, rows softmax-normalised
    uu = model.uu_graph.to_sparse_coo().coalesce()
    assert torch.equal(uu.indices(), user_graph(data.to_input(tmp_path), 40).indices())
    assert torch.allclose(torch.sparse.sum(uu, 1).to_dense(), torch.ones(N_USERS), atol=1e-5)
    # with zero item-item hops the port's item <- item + S^0 item doubles the branches, and an
    # empty user graph leaves the users unchanged
    plain = build_model(RunSpec("tiny", "dragon", params={"n_mm_layers": 0}), data, tmp_path)
    plain.load_state_dict(model.state_dict())
    empty = to_csr(torch.sparse_coo_tensor(torch.zeros(2, 0, dtype=torch.long), torch.zeros(0), (N_USERS, N_USERS)))
    plain.uu_graph, plain.uu_graph_t = empty, empty
    with torch.no_grad():
        u0, i0 = plain.forward()
        branches = i0 / 2
        h = torch.sparse.mm(model.item_adj, branches)
    assert torch.allclose(items, branches + h, atol=1e-6)
    assert torch.allclose(users, u0 + torch.sparse.mm(uu, u0), atol=1e-6)
