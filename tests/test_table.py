"""benchmark.table and benchmark.figures on fake run records with known metrics."""
from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from benchmark import figures, table
from benchmark.store import RunStore

METRICS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")
STATS = {"name": "baby", "users": 100, "items": 50, "interactions": 900, "train": 700, "valid": 100,
         "test": 100, "sparsity": 0.82, "features": {"image": [50, 16], "text": [50, 8]}}

# recall@20 test values per seed (1, 2, 3): vbpr gains consistently (significant); freedom's
# differences change sign (not significant).
TEST_R20 = {
    ("vbpr", "id"): [0.100, 0.102, 0.098],
    ("vbpr", "motor"): [0.110, 0.1125, 0.1085],
    ("freedom", "id"): [0.120, 0.125, 0.115],
    ("freedom", "motor"): [0.130, 0.118, 0.121],
}


def motor_settings(M=4, K=256, **per):
    d = {"pq_m": M, "pq_k": K, "pq_m_image": None, "pq_k_image": None, "pq_m_text": None,
         "pq_k_text": None, "modalities": ["image", "text"], "tcn_hidden": None, "tcn_dropout": 0.0,
         "first_order": True, "second_order": True, "high_order": True, "combine": "sum"}
    d.update(per)
    return d


def record(backbone, arm, seed, test_r20, valid_r20, *, dataset="baby", role=None, config="c0",
           protocol="standard", motor=None, history=True, space=None, stats=STATS):
    test = {m: test_r20 * (1 + 0.1 * i) for i, m in enumerate(METRICS)}
    test["recall@20"] = test_r20
    valid = {m: valid_r20 for m in METRICS}
    r = {
        "schema": 1, "key": f"{backbone}-{arm}-{config}-{protocol}-s{seed}", "config_hash": config,
        "dataset": {"name": dataset, "stats": dict(stats, name=dataset)},
        "backbone": backbone, "arm": arm, "protocol": protocol, "seed": seed, "config": {},
        "motor": (motor or motor_settings()) if arm == "motor" else None,
        "metrics": {"valid": valid, "test": test},
        "space": space or ({"item_parameters": 3200, "item_bytes": 12800, "model_parameters": 10000,
                            "model_bytes": 40000, "code_bytes": 0} if arm == "id" else
                           {"item_parameters": 800, "item_bytes": 3200, "model_parameters": 7600,
                            "model_bytes": 30400, "code_bytes": 400}),
        "history": [{"epoch": e, "loss": 1.0 / (e + 1), "valid": valid_r20 * e / 4, "seconds": 0.1}
                    for e in range(5)] if history else [],
        "created": f"2024-01-01T00:00:0{seed % 10}",
    }
    if role:
        r["role"] = role
    return r


def write(store, rec, rng):
    users = np.arange(30)
    per_user = {"test/users": users, "valid/users": users}
    for m in METRICS:
        per_user[f"test/{m}"] = (rec["metrics"]["test"][m] + rng.normal(0, 0.01, 30)).astype(np.float32)
        per_user[f"valid/{m}"] = (rec["metrics"]["valid"][m] + rng.normal(0, 0.01, 30)).astype(np.float32)
    store.write(rec, per_user)


@pytest.fixture
def results(tmp_path):
    rng = np.random.default_rng(0)
    store = RunStore(tmp_path)
    for (b, arm), vals in TEST_R20.items():
        for seed, v in zip((1, 2, 3), vals):
            write(store, record(b, arm, seed, v, 0.09, role="final"), rng)
        # tuning trials: better test, worse valid, role trial -> must not be used (finals exist)
        write(store, record(b, arm, 999, 0.5, 0.05, role="trial", config="t1"), rng)
    # sports: no finals -> best config by VALID: config "good" (valid .2, test .05) beats
    # config "bad" (valid .1, test .9); one seed only -> untested
    write(store, record("vbpr", "id", 999, 0.05, 0.2, dataset="sports", config="good"), rng)
    write(store, record("vbpr", "id", 999, 0.9, 0.1, dataset="sports", config="bad"), rng)
    write(store, record("vbpr", "motor", 999, 0.06, 0.2, dataset="sports", config="m"), rng)
    return tmp_path


# ----------------------------------------------------------------------------- parsing helpers

def parse_md(text):
    lines = [l for l in text.splitlines() if l.startswith("|")]
    split = lambda l: [c.strip() for c in l.strip().strip("|").split("|")]
    header = split(lines[0])
    out = {}
    for l in lines[2:]:
        cells = split(l)
        for h, c in zip(header[1:], cells[1:]):
            sig = c.endswith("†")
            c = c.rstrip("†")
            best = c.startswith("**")
            c, _, std = c.replace("**", "").partition(" ± ")
            out[(cells[0], h)] = (c.replace(",", ""), best, sig, std or None)
    return out


def parse_latex(text, header_labels):
    rows = [l for l in text.splitlines() if l.endswith("\\\\")]
    out = {}
    data = [l for l in rows if not l.startswith(" &") and "multicolumn" not in l and not l.startswith("Backbone")]
    for l in data:
        cells = [c.strip() for c in l[:-2].split(" & ")]
        for h, c in zip(header_labels[1:], cells[1:]):
            sig = c.endswith("$^{\\dagger}$")
            c = c.replace("$^{\\dagger}$", "")
            c, _, std = c.partition(" $\\pm$ ")
            best = c.startswith("\\textbf{")
            if best:
                c = c[len("\\textbf{"):-1]
            out[(cells[0], h)] = (c.replace(",", ""), best, sig, std or None)
    return out


def parse_csv(text):
    rows = list(csv.reader(io.StringIO(text)))
    header, out = rows[0], {}
    for row in rows[1:]:
        d = dict(zip(header, row))
        for h in header[1:]:
            if h.endswith(" mark") or h.endswith(" std"):
                continue
            marks = d.get(f"{h} mark", "").split(";")
            std = d.get(f"{h} std")
            out[(row[0], h)] = (d[h], "best" in marks, "sig" in marks, None if std in (None, "-") else std)
    return out, header


def run_table(results, fmt, capsys, *extra):
    assert table.main(["--results", str(results), "--format", fmt, *extra]) == 0
    capsys.readouterr()
    ext = {"md": "md", "latex": "tex", "csv": "csv"}[fmt]
    return {name: (results / "tables" / f"{name}.{ext}").read_text()
            for name in ("main", "space", "tuning", "datasets")
            if (results / "tables" / f"{name}.{ext}").exists()}


# ----------------------------------------------------------------------------- tests

def test_main_table_numbers_marks_and_formats_agree(results, capsys):
    md = run_table(results, "md", capsys)
    tex = run_table(results, "latex", capsys)
    cs = run_table(results, "csv", capsys)
    assert not (results / "tables" / "cold-start.md").exists()  # no cold-start records

    c, header = parse_csv(cs["main"])
    m = parse_md(md["main"])
    t = parse_latex(tex["main"], [h for h in header if not h.endswith((" mark", " std"))])
    assert c == m == t
    assert len(c) == 2 * 2 * 4 * 3  # rows (VBPR, FREEDOM) x datasets x metrics x (ID, MOTOR, Impr.)

    # means over the final seeds; improvement of the means
    assert c[("VBPR", "baby R@20 ID")][0] == "0.1000"
    assert c[("VBPR", "baby R@20 MOTOR")][0] == f"{np.mean(TEST_R20[('vbpr', 'motor')]):.4f}"
    assert c[("VBPR", "baby R@20 Impr. %")][0] == f"{100 * (0.110333333 - 0.1) / 0.1:+.1f}" == "+10.3"
    assert c[("FREEDOM", "baby R@20 Impr. %")][0] == "+2.5"
    # best per column
    assert c[("FREEDOM", "baby R@20 ID")][1] and not c[("VBPR", "baby R@20 ID")][1]
    assert c[("FREEDOM", "baby R@20 MOTOR")][1] and not c[("VBPR", "baby R@20 MOTOR")][1]
    assert c[("VBPR", "baby R@20 Impr. %")][1] and not c[("FREEDOM", "baby R@20 Impr. %")][1]
    # significance: consistent gain vs sign-changing differences
    assert c[("VBPR", "baby R@20 Impr. %")][2] is True
    assert c[("FREEDOM", "baby R@20 Impr. %")][2] is False
    # fallback (no finals): best VALID config (test .05, not the .9 of the worse-valid config);
    # one seed -> no test, marked untested in csv, footnote in md
    assert c[("VBPR", "sports R@20 ID")][0] == "0.0500"
    assert c[("VBPR", "sports R@20 Impr. %")][0] == "+20.0"
    assert c[("VBPR", "sports R@20 Impr. %")][2] is False
    assert "untested" in cs["main"]
    assert "Not tested (fewer than 2 paired seeds)" in md["main"] and "VBPR on sports." in md["main"]
    assert "No final records" in md["main"] and "VBPR on sports (ID)" in md["main"]
    assert c[("FREEDOM", "sports R@20 ID")][0] == "-"


def test_std_agrees_across_formats(results, capsys):
    parsed = {}
    for fmt in ("md", "latex", "csv"):
        text = run_table(results, fmt, capsys, "--std")["main"]
        if fmt == "csv":
            parsed[fmt], header = parse_csv(text)
        elif fmt == "md":
            parsed[fmt] = parse_md(text)
        else:
            tex = text
    parsed["latex"] = parse_latex(tex, [h for h in header if not h.endswith((" mark", " std"))])
    assert parsed["md"] == parsed["latex"] == parsed["csv"]
    sd = f"{np.std(TEST_R20[('freedom', 'motor')], ddof=1):.4f}"
    assert parsed["csv"][("FREEDOM", "baby R@20 MOTOR")] == ("0.1230", True, False, sd)
    assert parsed["csv"][("VBPR", "sports R@20 ID")][3] is None  # one seed: no std


def test_other_tables_agree_across_formats(results, capsys):
    md = run_table(results, "md", capsys)
    cs = run_table(results, "csv", capsys)
    for name in ("space", "tuning", "datasets"):
        c, _ = parse_csv(cs[name])
        m = parse_md(md[name])
        assert {k: v[0] for k, v in c.items()} == {k: v[0] for k, v in m.items()}, name
    rows = list(csv.DictReader(io.StringIO(cs["space"])))
    vb = next(r for r in rows if r["Dataset"] == "baby" and r["Backbone"] == "VBPR")
    assert vb["Item params ID"] == "3200" and vb["Item params MOTOR"] == "800"
    assert vb["Item params ratio"] == "0.250" and vb["Code bytes MOTOR"] == "400"
    rows = list(csv.DictReader(io.StringIO(cs["tuning"])))
    assert {r["image M"] for r in rows} == {"4"} and {r["text K"] for r in rows} == {"256"}
    assert {(r["Dataset"], r["Runs"]) for r in rows} == {("baby", "final"), ("sports", "best-valid")}
    rows = list(csv.DictReader(io.StringIO(cs["datasets"])))
    assert rows[0]["Dataset"] == "baby" and rows[0]["Users"] == "100" and rows[0]["Sparsity %"] == "82.0000"


def test_std_and_per_user_significance(results, capsys):
    assert table.main(["--results", str(results), "--format", "csv", "--std", "--significance", "users",
                       "--tables", "main", "--metrics", "recall@20"]) == 0
    out = capsys.readouterr().out
    rows = list(csv.DictReader(io.StringIO(out.split("\n", 1)[1])))
    vb = next(r for r in rows if r["Backbone"] == "VBPR")
    assert vb["baby R@20 ID std"] == f"{np.std(TEST_R20[('vbpr', 'id')], ddof=1):.4f}"
    assert "sig" in vb["baby R@20 Impr. % mark"]  # +10% over 30 users with noise 0.01


def test_cold_start_table_and_selection(tmp_path, capsys):
    rng = np.random.default_rng(1)
    store = RunStore(tmp_path)
    for seed in (1, 2):
        write(store, record("vbpr", "id", seed, 0.01 * seed, 0.1, protocol="cold-start", role="final"), rng)
        write(store, record("vbpr", "motor", seed, 0.03 * seed, 0.1, protocol="cold-start", role="final"), rng)
    assert table.main(["--results", str(tmp_path), "--format", "md"]) == 0
    out = capsys.readouterr().out
    text = (tmp_path / "tables" / "cold-start.md").read_text()
    assert "cold items" in text and "+200.0" in text
    assert not (tmp_path / "tables" / "main.md").exists()
    assert "cold-start" in out


def test_no_records_is_an_error(tmp_path, capsys):
    assert table.main(["--results", str(tmp_path)]) == 2
    assert "error:" in capsys.readouterr().err


def test_choose_never_uses_test():
    a = [record("vbpr", "id", s, 0.9, 0.1, config="a") for s in (1, 2)]
    b = [record("vbpr", "id", s, 0.1, 0.2, config="b") for s in (1, 2)]
    sel = table.choose(a + b)
    assert sel.config_hash == "b" and sel.source == "best-valid" and sel.seeds == [1, 2]
    sel = table.choose(a + b + [record("vbpr", "id", 7, 0.3, 0.0, role="final", config="c")])
    assert sel.config_hash == "c" and sel.source == "final"


# ----------------------------------------------------------------------------- figures

def test_figures_from_trials_and_finals(tmp_path, capsys):
    rng = np.random.default_rng(2)
    store = RunStore(tmp_path)
    n = 0
    for M, K in [(2, 16), (4, 16), (4, 64), (8, 256)]:  # sparse grid
        n += 1
        mot = motor_settings(M, K, pq_m_text=2 if M == 8 else None)
        rec = record("freedom", "motor", 999, 0.1, 0.01 * M + K / 1e4, role="trial", config=f"t{n}", motor=mot)
        rec["trial"] = {"study": "baby-freedom-motor", "number": n}
        write(store, rec, rng)
    for arm in ("id", "motor"):
        for seed in (1, 2):
            write(store, record("freedom", arm, seed, 0.1, 0.1, role="final"), rng)
    assert figures.main(["--results", str(tmp_path)]) == 0
    pngs = sorted(p.name for p in (tmp_path / "figures").glob("*.png"))
    assert pngs == ["curves_baby_freedom.png", "sensitivity_baby_freedom.png"]
    for p in pngs:
        assert (tmp_path / "figures" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figures_skip_cleanly(tmp_path, capsys):
    assert figures.main(["--results", str(tmp_path)]) == 0
    assert "nothing to plot" in capsys.readouterr().err
    store = RunStore(tmp_path)
    write(store, record("vbpr", "id", 1, 0.1, 0.1, history=False), np.random.default_rng(0))
    assert figures.main(["--results", str(tmp_path)]) == 0
    assert "nothing to plot" in capsys.readouterr().err
    assert not list(tmp_path.glob("figures/*.png"))
