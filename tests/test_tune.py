"""benchmark.tune: search spaces, the valid-only objective, records, resuming, pruning, the budget
scheme with concurrent workers (two real processes on one SQLite study)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import benchmark.tune as tune_mod
from benchmark.arms import MotorSettings
from benchmark.store import RunStore
from benchmark.train import TrainConfig
from benchmark.tune import (TuneError, TuneSettings, best_path, default_storage, divisors, k_choices,
                            load_best, mask_url, search_space, spec_from_best, tune)
from tests.backbone_contract import tiny_dataset

REPO = Path(__file__).resolve().parents[1]
TRAIN = TrainConfig(epochs=2, patience=5, batch_size=512)


@pytest.fixture(scope="module")
def tiny():
    return tiny_dataset()


def settings(**kw) -> TuneSettings:
    values = dict(backbone="vbpr", arm="id", trials=2, train=TRAIN, pruner_startup_trials=50)
    values.update(kw)
    return TuneSettings(**values)


def load_study(results: Path, name: str):
    return optuna.load_study(study_name=name, storage=default_storage(results))


def quiet(msg):  # tune's log hook
    pass


# ----------------------------------------------------------------------------- search space


def test_search_spaces(tiny):
    assert divisors(24) == (1, 2, 3, 4, 6, 8, 12, 24)
    assert divisors(128) == (1, 2, 4, 8, 16, 32, 64)
    assert k_choices(10_000) == (16, 32, 64, 128, 256, 512, 1024)
    assert k_choices(157) == (16, 32, 64, 128)
    assert k_choices(9) == (8,)

    motor = search_space(tiny, "vbpr", "motor")
    assert motor == {
        "motor.pq_m_image": divisors(24), "motor.pq_k_image": (16, 32, 64, 128),
        "motor.pq_m_text": divisors(20), "motor.pq_k_text": (16, 32, 64, 128),
    }
    # cold start: K is capped by the warm items the codebooks are fitted on
    assert search_space(tiny, "vbpr", "motor", n_fit=40)["motor.pq_k_text"] == (16, 32)
    # the ID arm searches the backbone's own grid; --search-backbone adds it to the MOTOR arm
    assert search_space(tiny, "vbpr", "id") == {"backbone.reg_weight": (2.0, 1.0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5)}
    assert set(search_space(tiny, "vbpr", "motor", search_backbone=True)) == set(motor) | {"backbone.reg_weight"}
    with pytest.raises(TuneError, match="nothing to tune"):
        search_space(tiny, "pop", "id")
    only_image = tiny_dataset(modalities=("image",))
    assert set(search_space(only_image, "vbpr", "motor")) == {"motor.pq_m_image", "motor.pq_k_image"}


def test_mask_url():
    assert mask_url("postgresql://bench:secret@127.0.0.1/motor") == "postgresql://bench:***@127.0.0.1/motor"
    assert mask_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


# ----------------------------------------------------------------------------- objective, records, resume


def test_objective_is_valid_recall_test_only_an_attribute(tiny, tmp_path):
    res = tmp_path / "results"
    out = tune(tiny, settings(trials=2), res, tmp_path / "cache", device="cpu", log=quiet)
    assert (out.finished, out.ran, out.before) == (2, 2, 0)
    store = RunStore(res)
    study = load_study(res, "tiny-vbpr-id")
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert [t.number for t in complete] == [0, 1]
    for t in complete:
        record = store.find("tiny", "vbpr", t.user_attrs["record_key"])
        assert record is not None and record["role"] == "trial"
        assert t.value == record["metrics"]["valid"]["recall@20"]
        assert t.user_attrs["test"] == record["metrics"]["test"]
        assert record["config"]["reg_weight"] == t.params["backbone.reg_weight"]
        assert len(t.intermediate_values) == TRAIN.epochs  # every validation reported to the pruner

    # the exported best config is the best *valid* trial and maps back to its run
    best = load_best(best_path(res, "tiny", "vbpr", "id"))
    chosen = max(complete, key=lambda t: (t.value, -t.number))
    assert best["trial"] == chosen.number and best["value"] == chosen.value
    assert best["params"] == {"reg_weight": chosen.params["backbone.reg_weight"]}
    assert best["motor"] is None and best["train"]["epochs"] == TRAIN.epochs
    spec = spec_from_best(best, best["seed"])
    assert spec.key(tiny.fingerprint) == chosen.user_attrs["record_key"] == best["record_key"]

    # resuming adds only the missing trials; the finished ones are untouched
    before = {t.number: t.datetime_complete for t in complete}
    out = tune(tiny, settings(trials=3), res, tmp_path / "cache", device="cpu", log=quiet)
    assert (out.finished, out.ran, out.before) == (3, 1, 2)
    out = tune(tiny, settings(trials=3), res, tmp_path / "cache", device="cpu", log=quiet)
    assert (out.finished, out.ran) == (3, 0)
    study = load_study(res, "tiny-vbpr-id")
    assert [(t.number, t.state) for t in study.trials] == [(i, TrialState.COMPLETE) for i in range(3)]
    assert {t.number: t.datetime_complete for t in study.trials[:2]} == before

    # a study is not resumed with other settings
    with pytest.raises(TuneError, match="created with train="):
        tune(tiny, settings(trials=3, train=TrainConfig(epochs=3, patience=5, batch_size=512)), res,
             tmp_path / "cache", device="cpu", log=quiet)


def test_motor_arm_exports_per_modality_pq(tiny, tmp_path):
    res = tmp_path / "results"
    out = tune(tiny, settings(arm="motor", trials=1), res, tmp_path / "cache", device="cpu", log=quiet)
    best = out.best
    t = load_study(res, "tiny-vbpr-motor").trials[0]
    motor = MotorSettings.from_dict(best["motor"])
    assert motor.spec() == {"image": (t.params["motor.pq_m_image"], t.params["motor.pq_k_image"]),
                            "text": (t.params["motor.pq_m_text"], t.params["motor.pq_k_text"])}
    assert best["params"] == {}
    record = RunStore(res).find("tiny", "vbpr", best["record_key"])
    assert record["motor"] == best["motor"]
    assert spec_from_best(best, 999).key(tiny.fingerprint) == best["record_key"]


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial):
        return True


def test_pruned_trial_writes_no_record(tiny, tmp_path):
    res = tmp_path / "results"
    out = tune(tiny, settings(trials=2), res, tmp_path / "cache", device="cpu", log=quiet, pruner=AlwaysPrune())
    assert out.finished == 2 and out.best is None and out.best_path is None
    study = load_study(res, "tiny-vbpr-id")
    assert [t.state for t in study.trials] == [TrialState.PRUNED] * 2
    assert all(len(t.intermediate_values) == 1 for t in study.trials)  # stopped after the first epoch
    assert not list(RunStore(res).records())


# ----------------------------------------------------------------------------- budget scheme


def test_race_loser_is_surplus_not_run(tiny, tmp_path, monkeypatch):
    """Two workers that both counted N-1: the higher-numbered trial is failed as surplus, untrained."""
    res = tmp_path / "results"
    tune(tiny, settings(trials=1), res, tmp_path / "cache", device="cpu", log=quiet)
    real = tune_mod._counts

    def stale_once(study):  # what a worker saw just before another one finished the last trial
        finished, running = real(study)
        return (finished - 1, running) if len(study.trials) == 1 else (finished, running)

    monkeypatch.setattr(tune_mod, "_counts", stale_once)
    out = tune(tiny, settings(trials=1), res, tmp_path / "cache", device="cpu", log=quiet)
    assert out.finished == 1 and out.ran == 0
    trials = load_study(res, "tiny-vbpr-id").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL]
    assert trials[1].user_attrs["surplus"] is True and "record_key" not in trials[1].user_attrs
    assert len(list(RunStore(res).records())) == 1


def test_trial_of_dead_local_worker_is_failed_and_replaced(tiny, tmp_path):
    res = tmp_path / "results"
    tune(tiny, settings(trials=1), res, tmp_path / "cache", device="cpu", log=quiet)
    study = load_study(res, "tiny-vbpr-id")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    space = {"backbone.reg_weight": optuna.distributions.CategoricalDistribution([2.0, 1.0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5])}
    orphan = study.ask(space)  # left RUNNING by a worker killed mid-trial
    orphan.set_user_attr("worker", {**tune_mod.worker_identity(), "pid": dead.pid, "start": "0"})
    t0 = time.perf_counter()
    out = tune(tiny, settings(trials=2), res, tmp_path / "cache", device="cpu", log=quiet)
    assert out.finished == 2 and time.perf_counter() - t0 < 60  # no waiting for the grace period
    trials = load_study(res, "tiny-vbpr-id").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    # the interrupted configuration is what the study resumes with
    assert trials[2].params == trials[1].params and trials[2].user_attrs["retry_of"] == 1


def test_two_worker_processes_share_one_study(tmp_path):
    from benchmark.data import write_mmrec

    write_mmrec(tiny_dataset(), tmp_path / "tiny")
    res, n = tmp_path / "results", 4
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    cmd = [sys.executable, "-m", "benchmark.tune", "--dataset", str(tmp_path / "tiny"), "--backbone", "vbpr",
           "--arm", "id", "--trials", str(n), "--storage", url, "--study", "two", "--epochs", "1",
           "--batch-size", "512", "--results", str(res), "--cache-dir", str(tmp_path / "cache"),
           "--device", "cpu", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    trials = optuna.load_study(study_name="two", storage=url).trials
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert sorted(t.number for t in finished) == list(range(n)), outputs
    others = [t for t in trials if t not in finished]
    assert all(t.state == TrialState.FAIL and t.user_attrs.get("surplus") for t in others)
    keys = {t.user_attrs["record_key"] for t in finished if t.state == TrialState.COMPLETE}
    assert {r["key"] for r in RunStore(res).records()} == keys
    best = json.loads(best_path(res, "tiny", "vbpr", "id").read_text())
    assert best["trials"]["complete"] + best["trials"]["pruned"] == n
