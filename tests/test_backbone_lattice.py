import pytest
import torch
import torch.nn.functional as F

from backbones.base import Batch
from backbones.graph import spmm_edges
from benchmark.run import RunSpec, build_model
from tests.backbone_contract import N_ITEMS, check_backbone, tiny_dataset


@pytest.mark.parametrize("arm", ["id", "motor"])
def test_lattice_contract(arm, tmp_path):
    check_backbone("lattice", arm, tmp_cache=tmp_path)


@pytest.fixture
def model(tmp_path):
    torch.manual_seed(0)
    return build_model(RunSpec("tiny", "lattice", "id"), tiny_dataset(), tmp_path)


def _dense_knn(x, k):
    """MMRec/authors' dense reference: cosine, keep each row's top-k values, zeros elsewhere."""
    x = F.normalize(x, dim=1)
    sim = x @ x.T
    val, ind = torch.topk(sim, k, dim=-1)
    return torch.zeros_like(sim).scatter_(-1, ind, val)


def _dense_norm(a):
    d = a.sum(-1).pow(-0.5)
    d[torch.isinf(d)] = 0.0
    return d[:, None] * a * d[None, :]


def test_learned_graph_is_sparse_with_k_entries_per_row(model):
    k = model.config.knn_k
    with torch.no_grad():
        feats = model.projected()
        entries = model.learned_entries(feats, model.learned_neighbours(feats))
    for m, (rows, cols, vals) in entries.items():
        assert rows.numel() == cols.numel() == vals.numel() == N_ITEMS * k
        per_row = torch.bincount(rows, minlength=N_ITEMS)
        assert torch.equal(per_row, torch.full((N_ITEMS,), k))
        # no repeated neighbour in a row, and values are the kept cosine similarities
        assert torch.unique(rows * N_ITEMS + cols).numel() == N_ITEMS * k
        dense = _dense_knn(feats[m], k)
        assert torch.allclose(vals, dense[rows, cols], atol=1e-5)
        assert int((dense != 0).sum()) == N_ITEMS * k


def test_item_graph_matches_dense_reference(model):
    lam, k = model.config.lambda_coeff, model.config.knn_k
    with torch.no_grad():
        model.modal_weight.copy_(torch.tensor([0.2, 0.9]))
        feats = model.projected()
        propagate = model.item_propagator(feats, model.learned_neighbours(feats))
        w = torch.softmax(model.modal_weight, 0)
        learned = sum(w[j] * _dense_knn(feats[m], k) for j, m in enumerate(model.mods))
        init = sum(w[j] * _dense_norm(_dense_knn(getattr(model, f"raw_{m}"), k))
                   for j, m in enumerate(model.mods))
        expected = lam * init + (1 - lam) * _dense_norm(learned)
        got = propagate(torch.eye(N_ITEMS))  # S @ I = S, on the tiny graph only
    assert torch.allclose(got, expected, atol=1e-5)


def test_edge_spmm_gradients_match_dense():
    torch.manual_seed(0)
    rows = torch.tensor([0, 0, 1, 2, 2, 2, 3])
    cols = torch.tensor([1, 2, 0, 0, 2, 2, 3])
    v = torch.rand(7, dtype=torch.double, requires_grad=True)
    x = torch.rand(4, 3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, x: spmm_edges(rows, cols, v, x), (v, x))


def test_scoring_two_batches_builds_the_graph_once(model):
    before = model.graph_builds
    model.eval()
    with torch.no_grad():
        score = model.scorer()
        a, b = score(torch.arange(5)), score(torch.arange(5, 12))
    assert model.graph_builds == before + 1
    assert a.shape == (5, N_ITEMS) and b.shape == (7, N_ITEMS)


def test_neighbours_fixed_per_epoch_but_projections_learn_every_step(model):
    model.train()
    model.on_epoch_start(0)
    builds = model.graph_builds
    batch = Batch(torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5]), torch.tensor([6, 7, 8]))
    for _ in range(3):  # every step, not only the first of the epoch, reaches the graph learner
        model.zero_grad()
        model.loss(batch).backward()
        for name, p in list(model.projections.named_parameters()) + [("modal_weight", model.modal_weight)]:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert model.graph_builds == builds
    model.on_epoch_start(1)
    assert model.graph_builds == builds + 1


def test_raw_features_are_frozen_buffers(model):
    names = {n for n, _ in model.named_parameters()}
    assert not any(n.startswith("raw_") for n in names)
    assert not model.raw_image.requires_grad and "raw_image" not in model.state_dict()


def test_initial_graph_is_cached_by_feature_contents(tmp_path):
    data = tiny_dataset()
    build_model(RunSpec("tiny", "lattice", "id"), data, tmp_path)
    files = sorted(p.name for p in (tmp_path / "knn").glob("*.npz"))
    assert len(files) == 2
    build_model(RunSpec("tiny", "lattice", "id"), tiny_dataset(seed=1), tmp_path)
    assert len(list((tmp_path / "knn").glob("*.npz"))) == 4
