import numpy as np
import pytest

from benchmark.coldstart import ColdStart, choose_cold_items, cold_start_setup, split_cold
from benchmark.run import RunSpec, execute
from benchmark.store import RunStore
from benchmark.train import TrainConfig
from tests.backbone_contract import TINY_MOTOR, tiny_dataset


def test_cold_items_are_seeded_and_sized():
    a = choose_cold_items(100, 0.2, seed=3)
    assert len(a) == 20 and np.array_equal(a, choose_cold_items(100, 0.2, seed=3))
    assert not np.array_equal(a, choose_cold_items(100, 0.2, seed=4))


def test_cold_items_leave_training_and_targets_hold_only_cold_items():
    data = tiny_dataset()
    warm_ds, target, fit_items, extra = split_cold(data, ColdStart(fraction=0.25, split_seed=1))
    cold = warm_ds.cold_items
    assert warm_ds.train[:, cold].nnz == 0
    assert set(np.unique(target["test"].indices)) <= set(cold)
    assert set(np.unique(target["valid"].indices)) <= set(cold)
    assert np.intersect1d(fit_items, cold).size == 0
    assert np.array_equal(np.sort(np.concatenate([fit_items, cold])), np.arange(data.n_items))
    assert extra["cold_start"]["removed_train_interactions"] == data.train[:, cold].nnz
    assert target["test"].nnz == data.test[:, cold].nnz


def test_bad_fraction_is_rejected():
    with pytest.raises(ValueError, match="fraction"):
        ColdStart(fraction=1.5)


@pytest.mark.parametrize("arm", ["id", "motor"])
def test_cold_start_run_records_protocol(arm, tmp_path):
    spec = RunSpec("tiny", "vbpr", arm, seed=2, protocol="cold-start", motor=TINY_MOTOR,
                   train=TrainConfig(epochs=2, batch_size=256))
    rec = execute(spec, tiny_dataset(), RunStore(tmp_path), device="cpu", cache_dir=tmp_path / "cache",
                  progress=False, protocol_setup=cold_start_setup(ColdStart(fraction=0.3)))
    assert rec["protocol"] == "cold-start"
    assert rec["cold_start"]["n_cold_items"] == round(0.3 * 157)
    # only users with a cold test item are evaluated
    _, target, _, _ = split_cold(tiny_dataset(), ColdStart(fraction=0.3))
    assert rec["n_eval_users"]["test"] == int((target["test"].getnnz(axis=1) > 0).sum()) > 0
    assert rec["cold_start"]["cold_test_interactions"] == target["test"].nnz
    assert 0.0 <= rec["metrics"]["test"]["recall@20"] <= 1.0

