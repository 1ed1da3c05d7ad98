"""Loading, validating, writing and resolving MMRec folders; the data CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from benchmark.data import DataError, DataWarning, load_mmrec, main, resolve, write_mmrec
from benchmark.synthetic import SyntheticConfig, generate

REPO_ROOT = Path(__file__).resolve().parents[1]
HEADER = "userID\titemID\tx_label"
# 3 users x (3 train, 1 valid, 1 test) over 6 items
GOOD_ROWS = [
    (u, i, lab)
    for u in range(3)
    for i, lab in zip(range(u, u + 5), (0, 0, 0, 1, 2))
]
N_ITEMS = 7  # max itemID = 2 + 4 = 6


def make_folder(tmp_path: Path, rows=GOOD_ROWS, header=HEADER, name="toy", sep="\t", features=None) -> Path:
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    lines = [header] + [sep.join(str(v) for v in row) for row in rows]
    (folder / f"{name}.inter").write_text("\n".join(lines) + "\n")
    for modality, arr in (features or {}).items():
        np.save(folder / f"{modality}_feat.npy", arr)
    return folder


def load_error(folder: Path, **kw) -> str:
    with pytest.raises(DataError) as info:
        load_mmrec(folder, **kw)
    message = str(info.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- loading


def test_load_small_folder(tmp_path):
    feats = np.arange(N_ITEMS * 4, dtype=np.float64).reshape(N_ITEMS, 4)
    d = load_mmrec(make_folder(tmp_path, features={"image": feats}))
    assert (d.name, d.n_users, d.n_items) == ("toy", 3, N_ITEMS)
    assert (d.train.nnz, d.valid.nnz, d.test.nnz) == (9, 3, 3)
    assert d.train.shape == d.valid.shape == d.test.shape == (3, N_ITEMS)
    assert set(d.train.data) == {1.0}
    assert d.test[0, 4] == 1 and d.train[2, 2] == 1
    assert set(d.features) == {"image"}
    assert d.features["image"].dtype == np.float32
    np.testing.assert_array_equal(d.features["image"], feats.astype(np.float32))


def test_extra_columns_are_ignored(tmp_path):
    rows = [(u, i, 5, 1234567, lab) for u, i, lab in GOOD_ROWS]
    d = load_mmrec(make_folder(tmp_path, rows, header="userID\titemID\trating\ttimestamp\tx_label"))
    assert d.train.nnz == 9


def test_trailing_blank_line_is_harmless_but_inner_one_is_not(tmp_path):
    folder = make_folder(tmp_path)
    inter = folder / "toy.inter"
    inter.write_text(inter.read_text() + "\n")
    assert load_mmrec(folder).train.nnz == 9
    lines = inter.read_text().splitlines()
    inter.write_text("\n".join(lines[:3] + [""] + lines[3:]) + "\n")
    assert "toy.inter line 4: empty line" in load_error(folder)


def test_missing_folder(tmp_path):
    msg = load_error(tmp_path / "nope")
    assert "nope" in msg and "no such folder" in msg


def test_missing_inter_file_names_alternatives(tmp_path):
    folder = make_folder(tmp_path, name="toy")
    msg = load_error(folder, name="other")
    assert "other.inter" in msg and "missing interactions file" in msg and "toy.inter" in msg


def test_missing_column(tmp_path):
    rows = [(u, i) for u, i, _ in GOOD_ROWS]
    msg = load_error(make_folder(tmp_path, rows, header="userID\titemID"))
    assert "toy.inter line 1" in msg and "missing column(s) x_label" in msg


@pytest.mark.parametrize("sep,what", [(",", "comma"), (" ", "space")])
def test_wrong_separator(tmp_path, sep, what):
    msg = load_error(make_folder(tmp_path, header=HEADER.replace("\t", sep), sep=sep))
    assert "toy.inter line 1" in msg and f"{what}-separated" in msg and "tab-separated" in msg


@pytest.mark.parametrize(
    "bad,expected",
    [
        ("x", "line 4: non-integer value 'x' in column itemID"),
        ("1.5", "line 4: non-integer value '1.5' in column itemID"),
        ("-3", "line 4: negative itemID -3"),
        ("3.0", "line 4: non-integer value '3.0' in column itemID"),
        ("", "line 4: missing value in column itemID"),
    ],
)
def test_bad_item_id(tmp_path, bad, expected):
    rows = list(GOOD_ROWS)
    rows[2] = (rows[2][0], bad, rows[2][2])
    msg = load_error(make_folder(tmp_path, rows))
    assert "toy.inter" in msg and expected in msg


def test_negative_user_id(tmp_path):
    rows = list(GOOD_ROWS)
    rows[0] = (-1, 0, 0)
    assert "line 2: negative userID -1" in load_error(make_folder(tmp_path, rows))


def test_bad_x_label(tmp_path):
    rows = list(GOOD_ROWS)
    rows[6] = (rows[6][0], rows[6][1], 3)
    msg = load_error(make_folder(tmp_path, rows))
    assert "toy.inter line 8: x_label 3 is not 0 (train), 1 (valid) or 2 (test)" in msg


def test_duplicate_pair(tmp_path):
    rows = GOOD_ROWS + [(1, 2, 2)]  # (1, 2) first appears as row 7 -> line 8
    msg = load_error(make_folder(tmp_path, rows))
    assert f"line {len(rows) + 1}: duplicate (userID 1, itemID 2) pair, first seen on line 8" in msg


def test_unparseable_rows(tmp_path):
    rows = GOOD_ROWS + [(1, 2, 2, 9)]
    msg = load_error(make_folder(tmp_path, rows))
    assert "toy.inter" in msg and "cannot parse" in msg


def test_header_only(tmp_path):
    assert "no interactions" in load_error(make_folder(tmp_path, rows=[]))


@pytest.mark.parametrize("label,split", [(1, "valid"), (2, "test"), (0, "train")])
def test_empty_split(tmp_path, label, split):
    rows = [(u, i, lab) for u, i, lab in GOOD_ROWS if lab != label]
    if label == 0:  # without train rows everything else is dropped first
        with pytest.warns(DataWarning):
            msg = load_error(make_folder(tmp_path, rows))
    else:
        msg = load_error(make_folder(tmp_path, rows))
    assert f"the {split} split is empty" in msg


def test_feature_row_count_mismatch(tmp_path):
    folder = make_folder(tmp_path, features={"text": np.zeros((N_ITEMS + 1, 3), np.float32)})
    msg = load_error(folder)
    assert "text_feat.npy" in msg and f"{N_ITEMS + 1} rows" in msg and f"{N_ITEMS} items" in msg


def test_feature_nan_and_inf(tmp_path):
    feats = np.ones((N_ITEMS, 3), np.float32)
    feats[2, 0] = np.nan
    feats[5, 1] = np.inf
    msg = load_error(make_folder(tmp_path, features={"image": feats}))
    assert "image_feat.npy" in msg and "image features have NaN or inf in 2 of 7 rows (first: row 2)" in msg


@pytest.mark.parametrize("shape", [(N_ITEMS,), (N_ITEMS, 2, 2)])
def test_feature_not_2d(tmp_path, shape):
    msg = load_error(make_folder(tmp_path, features={"image": np.zeros(shape, np.float32)}))
    assert "image_feat.npy" in msg and "2-D" in msg and str(shape) in msg


def test_feature_wrong_dtype_and_garbage(tmp_path):
    folder = make_folder(tmp_path, features={"image": np.zeros((N_ITEMS, 2), np.int64)})
    assert "float32 or float64, got int64" in load_error(folder)
    (folder / "image_feat.npy").write_bytes(b"not a numpy file")
    assert "cannot read image features" in load_error(folder)


def test_mmrec_drop_rule(tmp_path):
    rows = GOOD_ROWS + [(3, 0, 1), (3, 1, 2), (3, 2, 2)]  # user 3 has no train rows
    with pytest.warns(DataWarning, match="dropped 3 valid/test rows of 1 users without train rows"):
        d = load_mmrec(make_folder(tmp_path, rows))
    assert d.n_users == 4  # max userID + 1; the user stays, with empty rows
    assert (d.train.nnz, d.valid.nnz, d.test.nnz) == (9, 3, 3)
    assert d.valid[3].nnz == 0 and d.test[3].nnz == 0


# --------------------------------------------------------------------------- writing


def test_write_load_round_trip(tmp_path):
    d = generate(SyntheticConfig(n_users=60, n_items=40, n_interactions=400, seed=3))
    folder = tmp_path / "syn"
    write_mmrec(d, folder)
    assert sorted(p.name for p in folder.iterdir()) == ["image_feat.npy", "syn.inter", "text_feat.npy"]
    back = load_mmrec(folder)
    assert (back.n_users, back.n_items) == (d.n_users, d.n_items)
    for split in ("train", "valid", "test"):
        assert (back.split(split) != d.split(split)).nnz == 0
    for m in ("image", "text"):
        np.testing.assert_array_equal(back.features[m], d.features[m])
    assert back.fingerprint == d.fingerprint


def test_write_removes_stale_features(tmp_path):
    folder = make_folder(tmp_path, features={"image": np.zeros((N_ITEMS, 2), np.float32)})
    d = load_mmrec(folder)
    bare = type(d)(**{**d.__dict__, "features": {}})
    write_mmrec(bare, folder)
    assert not (folder / "image_feat.npy").exists()
    assert load_mmrec(folder).features == {}


# --------------------------------------------------------------------------- resolving


def test_resolve_synthetic_with_options():
    d = resolve("synthetic", seed=5, n_users=50, n_items=50, n_interactions=400)
    assert (d.name, d.n_users, d.n_items) == ("synthetic", 50, 50)
    with pytest.raises(DataError, match="unexpected keyword"):
        resolve("synthetic", n_userz=3)


def test_resolve_real_name_missing_root(tmp_path, monkeypatch):
    monkeypatch.delenv("MOTOR_BENCH_DATA", raising=False)
    with pytest.raises(DataError) as info:
        resolve("baby", data_root=str(tmp_path))
    msg = str(info.value)
    assert str(tmp_path / "baby") in msg and "--data-root" in msg and "MOTOR_BENCH_DATA" in msg
    assert "REPRODUCE.md" in msg


def test_resolve_uses_env_root_and_paths(tmp_path, monkeypatch):
    make_folder(tmp_path, name="sports")
    monkeypatch.setenv("MOTOR_BENCH_DATA", str(tmp_path))
    assert resolve("sports").name == "sports"
    assert resolve(str(tmp_path / "sports")).train.nnz == 9
    with pytest.raises(DataError, match="no such dataset folder"):
        resolve(str(tmp_path / "elsewhere"))
    with pytest.raises(DataError, match="apply only to 'synthetic'"):
        resolve("sports", n_users=3)


# --------------------------------------------------------------------------- CLI


def test_cli_stats_text_and_json(tmp_path, capsys):
    folder = make_folder(tmp_path)
    assert main(["stats", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "users         3" in out and "sparsity      28.5714%" in out and "features      none" in out
    assert main(["stats", str(folder), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["interactions"] == 15 and stats["features"] == {}


def test_cli_stats_reports_dropped_rows(tmp_path, capsys):
    folder = make_folder(tmp_path, rows=GOOD_ROWS + [(3, 0, 1)])
    assert main(["stats", str(folder)]) == 0
    assert capsys.readouterr().err.startswith("warning: ")


def test_cli_bad_dir_exits_2_without_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark.data", "stats", str(tmp_path / "missing")],
        capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error:") and "Traceback" not in proc.stderr
    assert "missing" in proc.stderr


def test_cli_build_amazon_unavailable(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "benchmark.amazon", None)  # makes the import fail
    assert main(["build-amazon", "--whatever", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: build-amazon is unavailable")


def test_cli_build_amazon_delegates(monkeypatch):
    seen = {}
    fake = types.ModuleType("benchmark.amazon")
    fake.add_arguments = lambda parser: parser.add_argument("--raw")

    def fake_main(args):
        seen["raw"] = args.raw
        return 0

    fake.main = fake_main
    monkeypatch.setitem(sys.modules, "benchmark.amazon", fake)
    assert main(["build-amazon", "--raw", "/some/dir"]) == 0
    assert seen == {"raw": "/some/dir"}


# --------------------------------------------------------------------------- real data

REAL = {
    "baby": (19_445, 7_050, 160_792, 118_551, 20_559, 21_682, True),
    "sports": (35_598, 18_357, 296_337, 218_409, 37_899, 40_029, True),
    "clothing": (39_387, 23_033, 278_677, 197_338, 40_150, 41_189, False),
}


@pytest.mark.realdata
@pytest.mark.parametrize("name", sorted(REAL))
def test_real_dataset_counts(real_data_root, name):
    users, items, total, train, valid, test, has_features = REAL[name]
    d = resolve(name, data_root=str(real_data_root))
    s = d.stats()
    assert (s["users"], s["items"], s["interactions"]) == (users, items, total)
    assert (s["train"], s["valid"], s["test"]) == (train, valid, test)
    if has_features:
        assert s["features"] == {"image": [items, 128], "text": [items, 128]}
        assert all(f.dtype == np.float32 for f in d.features.values())
    else:
        assert s["features"] == {}


@pytest.mark.realdata
def test_real_cli_stats(real_data_root, capsys):
    assert main(["stats", "baby", "--data-root", str(real_data_root)]) == 0
    out = capsys.readouterr().out
    assert "160,792" in out and "99.8827%" in out


def test_generate_writes_a_loadable_folder_with_the_asked_widths(tmp_path, capsys):
    out = tmp_path / "gen"
    assert main(["generate", "--image-dim", "12", "--text-dim", "5", "--seed", "3", "--out", str(out)]) == 0
    assert f"--dataset {out}" in capsys.readouterr().out
    ds = load_mmrec(out)
    assert (ds.n_users, ds.n_items) == (1500, 800)
    assert ds.features["image"].shape == (800, 12) and ds.features["text"].shape == (800, 5)


def test_generate_rejects_bad_widths(tmp_path, capsys):
    assert main(["generate", "--image-dim", "0", "--out", str(tmp_path / "g")]) == 2
    assert "image_dim" in capsys.readouterr().err
