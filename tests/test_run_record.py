"""What a run record says about how it was made."""
from __future__ import annotations

from benchmark.run import RunSpec, execute
from benchmark.store import RunStore
from benchmark.train import TrainConfig
from tests.backbone_contract import tiny_dataset


def test_record_keeps_the_code_version_of_the_run_start(tmp_path, monkeypatch):
    import benchmark.run as run

    versions = iter(["at-start", "at-end"])
    monkeypatch.setattr(run, "code_version", lambda: next(versions))
    spec = RunSpec("tiny", "pop", "id", seed=3, train=TrainConfig(epochs=1, batch_size=256))
    rec = execute(spec, tiny_dataset(), RunStore(tmp_path), device="cpu", progress=False)
    assert rec["code_version"] == "at-start"
