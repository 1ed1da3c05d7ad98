"""Hand-computed full-ranking metrics with masking."""
import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from benchmark.evaluate import evaluate, metrics_from_hits


def csr(rows, n_users=2, n_items=6):
    r, c = zip(*rows)
    return sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(n_users, n_items))


# Scores rank items 0 > 1 > 2 > 3 > 4 > 5 for user 0 and 5 > 4 > ... > 0 for user 1.
SCORES = torch.tensor([[6.0, 5, 4, 3, 2, 1], [1.0, 2, 3, 4, 5, 6]])


def scorer(users):
    return SCORES[users]


def test_hand_computed_metrics_with_train_mask():
    train = csr([(0, 0), (1, 5)])  # masked: user 0 loses item 0, user 1 loses item 5
    test = csr([(0, 1), (0, 4), (1, 0)])
    res = evaluate(scorer, test, masks=[train], ks=(1, 2, 5))
    m = res.per_user
    # user 0 ranking after mask: 1,2,3,4,5 -> hits at ranks 1 and 4; |T| = 2
    # user 1 ranking after mask: 4,3,2,1,0 -> hit at rank 5; |T| = 1
    assert m["recall@1"].tolist() == [0.5, 0.0]
    assert m["recall@5"].tolist() == [1.0, 1.0]
    assert m["precision@2"].tolist() == [0.5, 0.0]
    assert m["precision@5"].tolist() == pytest.approx([0.4, 0.2])
    idcg2 = 1 + 1 / math.log2(3)
    assert m["ndcg@2"][0] == pytest.approx(1 / idcg2)
    assert m["ndcg@5"][0] == pytest.approx((1 + 1 / math.log2(5)) / idcg2)
    assert m["ndcg@5"][1] == pytest.approx(1 / math.log2(6))
    # MAP@5: user 0 (1/1 + 2/4) / min(2, 5); user 1 (1/5) / 1
    assert m["map@5"].tolist() == pytest.approx([0.75, 0.2])
    assert m["map@1"].tolist() == pytest.approx([1.0, 0.0])
    assert res.means["recall@5"] == pytest.approx(1.0)
    assert res.users.tolist() == [0, 1]


def test_without_mask_train_items_compete():
    test = csr([(0, 1), (0, 4), (1, 0)])
    res = evaluate(scorer, test, masks=[], ks=(1,))
    assert res.per_user["recall@1"].tolist() == [0.0, 0.0]  # item 0 / item 5 ranks first


def test_users_without_targets_are_skipped_and_extra_masks_apply():
    train = csr([(0, 0)])
    valid = csr([(0, 1)])
    test = csr([(0, 2)])
    plain = evaluate(scorer, test, masks=[train], ks=(1,))
    masked = evaluate(scorer, test, masks=[train, valid], ks=(1,))
    assert plain.users.tolist() == [0]
    assert plain.per_user["recall@1"].tolist() == [0.0]
    assert masked.per_user["recall@1"].tolist() == [1.0]


def test_candidates_restrict_ranking():
    test = csr([(0, 3)])
    res = evaluate(scorer, test, masks=[], ks=(1,), candidates=np.array([3, 4, 5]))
    assert res.per_user["recall@1"].tolist() == [1.0]


def test_metrics_from_hits_ndcg_ideal_uses_min_of_targets_and_k():
    hits = np.array([[1, 1, 0]])
    out = metrics_from_hits(hits, np.array([5]), ks=(2, 3))
    assert out["ndcg@2"][0] == pytest.approx(1.0)
    assert out["recall@3"][0] == pytest.approx(0.4)


def test_wrong_scorer_shape_is_an_error():
    test = csr([(0, 3)])
    with pytest.raises(ValueError, match="scorer returned shape"):
        evaluate(lambda u: torch.zeros(len(u), 3), test, ks=(1,))
