import numpy as np
import pytest
import scipy.sparse as sp

from benchmark.sampling import PairSampler


def test_negatives_never_hit_train_items_and_epoch_covers_all_pairs():
    rng = np.random.default_rng(0)
    dense = rng.random((50, 30)) < 0.5
    train = sp.csr_matrix(dense.astype(np.float32))
    s = PairSampler(train, batch_size=64, rng=np.random.default_rng(1))
    seen = []
    for u, p, q in s.epoch():
        assert dense[u, p].all()
        assert not dense[u, q].any()
        seen.extend(zip(u.tolist(), p.tolist()))
    assert sorted(seen) == sorted(zip(*np.nonzero(dense)))
    assert len(list(s.epoch())) == len(s)


def test_user_with_every_item_is_rejected():
    train = sp.csr_matrix(np.ones((2, 3)))
    with pytest.raises(ValueError, match="every item"):
        PairSampler(train, 4, np.random.default_rng(0))
