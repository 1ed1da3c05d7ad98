import pytest
import torch
import torch.nn.functional as F

import scipy.sparse as sp

from backbones.grcn import BipartiteEdges, edge_softmax, refine
from benchmark.run import RunSpec, build_model
from tests.backbone_contract import N_ITEMS, check_backbone, tiny_dataset


@pytest.mark.parametrize("arm", ["id", "motor"])
def test_contract(arm, tmp_path):
    check_backbone("grcn", arm, tmp_cache=tmp_path)


def test_edge_softmax_per_node():
    scores = torch.tensor([1.0, 2.0, 3.0, 50.0, -1.0])
    index = torch.tensor([0, 0, 2, 2, 1])
    a = edge_softmax(scores, index, 4)
    assert torch.allclose(a[:2], torch.softmax(scores[:2], 0))
    assert torch.allclose(a[2:4], torch.softmax(scores[2:4], 0))
    assert torch.allclose(a[4], torch.tensor(1.0))


def test_refine_matches_a_loop_over_nodes():
    g = torch.Generator().manual_seed(0)
    pref = F.normalize(torch.randn(3, 4, generator=g))
    feats = F.normalize(torch.randn(4, 4, generator=g))
    eu = torch.tensor([0, 0, 1, 1, 1, 2])
    ei = torch.tensor([0, 1, 1, 2, 3, 3])
    edges = BipartiteEdges(sp.csr_matrix((torch.ones(6).numpy(), (eu.numpy(), ei.numpy())), shape=(3, 4)))
    assert torch.equal(edges.user, eu) and torch.equal(edges.item, ei)
    users, items, a_item, a_user = refine(pref, feats, edges, n_routing=2)

    p = pref.clone()
    nbr_u = {u: [i for uu, i in zip(eu.tolist(), ei.tolist()) if uu == u] for u in range(3)}
    nbr_i = {i: [u for u, ii in zip(eu.tolist(), ei.tolist()) if ii == i] for i in range(4)}
    for _ in range(2):  # routing: each user attends over its items
        new = []
        for u in range(3):
            f = feats[nbr_u[u]]
            w = torch.softmax(f @ p[u], 0)
            new.append(F.normalize(p[u] + w @ f, dim=0))
        p = torch.stack(new)
    exp_u = torch.stack([p[u] + torch.softmax(feats[nbr_u[u]] @ p[u], 0) @ feats[nbr_u[u]] for u in range(3)])
    exp_i = torch.stack([feats[i] + torch.softmax(p[nbr_i[i]] @ feats[i], 0) @ p[nbr_i[i]] for i in range(4)])
    assert torch.allclose(users, exp_u, atol=1e-6)
    assert torch.allclose(items, exp_i, atol=1e-6)
    # edge 2 is (user 1, item 1): item 1's users are {0, 1}, user 1's items are {1, 2, 3}
    s = lambda u, i: p[u] @ feats[i]
    assert torch.allclose(a_item[2], torch.softmax(torch.stack([s(0, 1), s(1, 1)]), 0)[1])
    assert torch.allclose(a_user[2], torch.softmax(torch.stack([s(1, 1), s(1, 2), s(1, 3)]), 0)[0])


def test_item_confidence_is_read_off_the_item_encoder():
    model = build_model(RunSpec("tiny", "grcn", "id"), tiny_dataset(), None)
    names = [n for n, p in model.named_parameters() if N_ITEMS in p.shape]
    assert names == ["item_encoder.weight"]  # no per-item confidence table besides the ID arm's encoder
    assert tuple(model.item_conf.weight.shape) == (2, 64)
    # the refined edge weights depend on the encoder output: changing it moves the ID-GCN output
    model.eval()
    with torch.no_grad():
        model.item_conf.weight.zero_()
        model.item_conf.bias.fill_(-1.0)  # item -> user messages all pruned (ReLU of negatives)
        users, _, _ = model.forward()
        xu = F.normalize(model.user_id)
        n_users = xu.shape[0]
        # with no item -> user messages, the users' ID part is x + 0 + (x2: item -> user again) = x
        assert torch.allclose(users[:, :64], xu, atol=1e-6)
        model.item_conf.bias.fill_(1.0)
        users2, _, _ = model.forward()
        assert not torch.allclose(users2[:, :64], xu)
    assert users.shape == (n_users, 64 + 2 * 64)


def test_edge_products_match_dense_gradients():
    g = torch.Generator().manual_seed(1)
    train = sp.random(5, 7, density=0.4, random_state=3, format="csr")
    train.data[:] = 1.0
    edges = BipartiteEdges(train)
    dense = torch.zeros(5, 7)
    vals = torch.rand(edges.user.numel(), generator=g, requires_grad=True)
    xu = torch.randn(5, 3, generator=g, requires_grad=True)
    xi = torch.randn(7, 3, generator=g, requires_grad=True)

    def dense_of(v):
        return dense.index_put((edges.user, edges.item), v)

    out = (edges.to_users(vals, xi) ** 2).sum() + (edges.to_items(vals, xu) ** 3).sum() + edges.dot(xu, xi).exp().sum()
    grads = torch.autograd.grad(out, (vals, xu, xi))
    a = dense_of(vals)
    ref = (a @ xi).pow(2).sum() + (a.T @ xu).pow(3).sum() + (xu @ xi.T)[edges.user, edges.item].exp().sum()
    ref_grads = torch.autograd.grad(ref, (vals, xu, xi))
    assert torch.allclose(out, ref, rtol=1e-5)
    for got, want in zip(grads, ref_grads):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-5)
