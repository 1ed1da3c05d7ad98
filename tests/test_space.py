"""benchmark.space: measured space equals motor.space's formulas and the ID table's size."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from benchmark import space
from benchmark.data import write_mmrec
from benchmark.synthetic import SyntheticConfig, generate
from motor.encoders import IdEmbedding
from motor.space import code_bytes, id_item_parameters, motor_item_parameters
from motor.tcn import TcnConfig

D = 64  # the backbones' default embedding size


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    ds = generate(SyntheticConfig(n_users=50, n_items=64, n_interactions=400, n_clusters=4,
                                  image_dim=16, text_dim=8))
    folder = tmp_path_factory.mktemp("data") / "tiny"
    write_mmrec(ds, folder, "tiny")
    return ds, folder


def run_json(capsys, *argv):
    rc = space.main([*argv, "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    return json.loads(out.out)


def test_space_equals_formulas(tiny, tmp_path, capsys):
    ds, folder = tiny
    rep = run_json(capsys, "--dataset", str(folder), "--backbone", "vbpr", "--pq-m", "2", "--pq-k", "16",
                   "--cache-dir", str(tmp_path))
    assert set(rep) == {"id", "motor", "ratio"}
    for arm in ("id", "motor"):
        assert set(space.SPACE_KEYS) <= set(rep[arm])
        assert rep[arm]["item_bytes"] == 4 * rep[arm]["item_parameters"]
        assert rep[arm]["model_bytes"] == 4 * rep[arm]["model_parameters"]
    assert set(rep["ratio"]) == set(space.RATIO_KEYS) | {"item_storage_bytes"}

    n = ds.n_items
    spec = {"image": (2, 16), "text": (2, 16)}
    assert rep["id"]["item_parameters"] == id_item_parameters(n, D) == IdEmbedding(n, D).n_parameters()
    assert rep["id"]["code_bytes"] == 0
    assert rep["motor"]["item_parameters"] == motor_item_parameters(spec, D, TcnConfig())
    assert rep["motor"]["code_bytes"] == code_bytes(n, spec) == n * 4
    assert rep["motor"]["token_table_parameters"] == 4 * 16 * D
    # the rest of the backbone is the same in both arms
    assert (rep["id"]["model_parameters"] - rep["id"]["item_parameters"]
            == rep["motor"]["model_parameters"] - rep["motor"]["item_parameters"])
    assert rep["ratio"]["item_parameters"] == pytest.approx(
        rep["motor"]["item_parameters"] / rep["id"]["item_parameters"])
    assert rep["ratio"]["item_storage_bytes"] == pytest.approx(
        (rep["motor"]["item_bytes"] + rep["motor"]["code_bytes"]) / rep["id"]["item_bytes"])


def test_per_modality_settings_and_text_report(tiny, tmp_path, capsys):
    ds, folder = tiny
    rep = run_json(capsys, "--dataset", str(folder), "--backbone", "vbpr", "--pq-m", "image=4",
                   "--pq-m", "text=2", "--pq-k", "16", "--pq-k", "text=32", "--cache-dir", str(tmp_path))
    spec = {"image": (4, 16), "text": (2, 32)}
    assert rep["motor"]["pq"] == {m: {"M": M, "K": K} for m, (M, K) in spec.items()}
    assert rep["motor"]["item_parameters"] == motor_item_parameters(spec, D, TcnConfig())
    assert rep["motor"]["code_bytes"] == code_bytes(ds.n_items, spec)

    assert space.main(["--dataset", str(folder), "--backbone", "vbpr", "--pq-m", "2", "--pq-k", "16",
                       "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "item parameters" in out and f"{ds.n_items * D:,}" in out


def test_errors_exit_2(tiny, tmp_path, capsys):
    ds, folder = tiny
    cases = [
        ["--dataset", str(tmp_path / "nope"), "--backbone", "vbpr"],
        ["--dataset", str(folder), "--backbone", "no-such-backbone"],
        ["--dataset", str(folder), "--backbone", "vbpr", "--pq-m", "x"],
        ["--dataset", str(folder), "--backbone", "vbpr", "--set", "no_such_key=1"],
    ]
    bare = tmp_path / "bare"
    write_mmrec(replace(ds, features={}), bare, "bare")
    cases.append(["--dataset", str(bare), "--backbone", "vbpr"])  # no features
    for argv in cases:
        assert space.main(argv + ["--cache-dir", str(tmp_path)]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: "), (argv, err)


def test_clothing_sized_figures_by_formula():
    """The figures reported for Clothing (23,033 items, d = 64, M = 8, K = 256 per modality)."""
    n = 23_033
    assert id_item_parameters(n, D) == 1_474_112
    spec = {"image": (8, 256), "text": (8, 256)}
    assert motor_item_parameters(spec, D) == 331_920  # 262,144 token floats + 69,776 TCN
    assert round(331_920 / 1_474_112, 3) == 0.225
    grid = {(e["M"], e["K"]) for e in space.grid_within(n, D, ["image", "text"], 0.1)}
    assert (8, 256) not in grid and (8, 64) in grid and (4, 128) in grid and (1, 1024) in grid
    assert not any(M >= 16 for M, _ in grid)
