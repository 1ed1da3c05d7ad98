import pytest
import torch
import torch.nn.functional as F

from backbones.base import Batch
from backbones.losses import emb_loss
from benchmark.run import RunSpec, build_model
from tests.backbone_contract import N_ITEMS, check_backbone, tiny_dataset


@pytest.mark.parametrize("arm", ["id", "motor"])
def test_bm3_contract(arm, tmp_path):
    check_backbone("bm3", arm, tmp_cache=tmp_path)


def _model(**params):
    torch.manual_seed(0)
    return build_model(RunSpec("tiny", "bm3", "id", params=params), tiny_dataset(), None)


BATCH = Batch(torch.tensor([0, 1, 2, 3]), torch.tensor([5, 6, 7, 8]), torch.tensor([9, 10, 11, 12]))


def test_loss_matches_hand_computation_without_dropout():
    model = _model(dropout=0.0, reg_weight=0.5, cl_weight=2.0)
    with torch.no_grad():
        got = model.loss(BATCH)
        # MMRec's order: predictor over all rows, then index the batch
        users, items = model.forward()
        pu, pi = model.predictor(users)[BATCH.users], model.predictor(items)[BATCH.pos]
        u, i = users[BATCH.users], items[BATCH.pos]

        def d(a, b):
            return 1 - F.cosine_similarity(a, b, dim=-1).mean()

        want = d(pu, i) + d(pi, u)
        modal = 0.0
        for m in ("image", "text"):
            f = model.projections[m](getattr(model, f"raw_{m}"))
            pf = model.predictor(f)[BATCH.pos]
            modal = modal + d(pf, i) + d(pf, f[BATCH.pos])
        want = want + 2.0 * modal + 0.5 * (users.norm() + items.norm()) / N_ITEMS
    assert torch.allclose(got, want, atol=1e-5)
    assert torch.allclose(emb_loss(users, items), (users.norm() + items.norm()) / N_ITEMS)


def test_negative_items_are_ignored():
    model = _model()
    other = Batch(BATCH.users, BATCH.pos, torch.tensor([20, 30, 40, 50]))
    torch.manual_seed(3)
    a = model.loss(BATCH)
    torch.manual_seed(3)
    b = model.loss(other)
    assert torch.equal(a, b)


def test_targets_carry_no_gradient_and_dropout_only_in_training_targets():
    model = _model(dropout=0.5)
    model.train()
    model.zero_grad()
    model.loss(BATCH).backward()
    assert model.predictor.weight.grad is not None
    assert all(p.grad is not None for p in model.projections.parameters())
    # scores are the predictor's outputs and involve no dropout
    users, items = model.forward()
    with torch.no_grad():
        want = model.predictor(users[:3]) @ model.predictor(items).T
    assert torch.allclose(model.score_users(torch.arange(3)), want, atol=1e-5)


def test_raw_features_are_frozen_buffers():
    model = _model()
    names = {n for n, _ in model.named_parameters()}
    assert not any(n.startswith("raw_") for n in names)
    assert "raw_text" not in model.state_dict() and not model.raw_text.requires_grad


def test_single_modality_works():
    torch.manual_seed(0)
    model = build_model(RunSpec("tiny", "bm3", "id"), tiny_dataset(modalities=("text",)), None)
    assert list(model.projections) == ["text"]
    assert torch.isfinite(model.loss(BATCH))
