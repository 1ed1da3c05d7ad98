"""Paper-style tables rendered from the run records (never edited by hand).

    python -m benchmark.table [--results DIR] [--format md|latex|csv]
        [--metrics recall@10 recall@20 ndcg@10 ndcg@20] [--std] [--significance seeds|users]
        [--tables main cold-start space tuning datasets]

Every table goes to stdout and to ``<results>/tables/<name>.<md|tex|csv>`` (atomic writes):

- ``main``: protocol "standard"; rows = backbones; per dataset and metric the ID arm, the MOTOR arm
  (test split, mean over seeds) and the improvement ``(MOTOR - ID) / ID`` of the means, in %.
- ``cold-start``: the same layout for protocol "cold-start" records (their test metrics rank the
  held-out cold items); written only when such records exist.
- ``space``: item-representation and whole-model parameters and bytes per arm, MOTOR/ID ratios
  and MOTOR's code-table bytes, for the chosen configurations.
- ``tuning``: the chosen PQ setting (M, K per modality) of the MOTOR arm.
- ``datasets``: dataset statistics (from the records' ``dataset.stats``).

Which runs a cell uses (per dataset, backbone, arm and protocol):
  1. records with ``role == "final"`` (the chosen configuration rerun over seeds by
     benchmark.reproduce) when any exist;
  2. otherwise every record (tuning trials with ``role == "trial"`` and plain runs included).
  Within that pool the records are grouped by ``config_hash`` and the configuration with the best
  mean VALID Recall@20 over its seeds is used, all of its seeds (one record per seed). The test
  split never takes part in a choice.

Formatting (identical in the three formats): metrics 4 decimals; improvements in % with 1
decimal and a sign; integers in full (thousands separated in md/latex, plain in csv); ratios 3
decimals. Markers: the best value of each column (over at least two rows) is bold in md/latex;
a dagger marks a significant improvement (p < 0.05, paired t-test ``scipy.stats.ttest_rel`` over
the seeds both arms ran, paired by seed; ``--significance users`` pairs per-user test vectors,
averaged over seeds, instead). With fewer than two pairs no test is done: no mark, and a footnote
names the cell. In csv each marked column is followed by a ``<column> mark`` column holding a
``;``-joined subset of ``best``, ``sig``, ``untested`` (and, with ``--std``, a ``<column> std``
column); a missing value is ``-`` everywhere.
"""
from __future__ import annotations

import argparse
import csv
import io
import math
import os
import sys
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence

import numpy as np

from benchmark.store import RunStore, atomic_write_text

VALID_METRIC = "recall@20"
DEFAULT_METRICS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")
ALPHA = 0.05
FORMATS = {"md": "md", "latex": "tex", "csv": "csv"}
TABLES = ("main", "cold-start", "space", "tuning", "datasets")
MISSING = "-"
ARM_LABEL = {"id": "ID", "motor": "MOTOR"}
IMPR_LABEL = "Impr. %"
MODALITIES = ("image", "text")
BACKBONE_ORDER = ("pop", "vbpr", "mmgcn", "grcn", "dualgnn", "slmrec", "lattice", "bm3", "freedom", "lgmrec")
BACKBONE_NAME = {"pop": "Pop", "vbpr": "VBPR", "mmgcn": "MMGCN", "grcn": "GRCN", "dualgnn": "DualGNN",
                 "slmrec": "SLMRec", "lattice": "LATTICE", "bm3": "BM3", "freedom": "FREEDOM",
                 "lgmrec": "LGMRec"}
DATASET_ORDER = ("baby", "sports", "clothing")


def metric_label(metric: str) -> str:
    name, _, k = metric.partition("@")
    short = {"recall": "R", "ndcg": "N", "precision": "P", "map": "MAP"}.get(name, name)
    return f"{short}@{k}" if k else short


def backbone_label(name: str) -> str:
    return BACKBONE_NAME.get(name, name)


def _order(names: Iterable[str], preferred: Sequence[str]) -> list[str]:
    names = set(names)
    return [n for n in preferred if n in names] + sorted(names - set(preferred))


# ----------------------------------------------------------------------------- choosing runs


@dataclass
class Selection:
    """The runs one (dataset, backbone, arm, protocol) cell stands for."""

    records: list  # one record per seed, sorted by seed
    source: str  # "final" or "best-valid"
    config_hash: str

    @property
    def seeds(self) -> list:
        return [r["seed"] for r in self.records]

    def values(self, metric: str, split: str = "test") -> dict:
        """seed -> metric value (records lacking the metric are left out)."""
        out = {}
        for r in self.records:
            v = _metric(r, split, metric)
            if v is not None:
                out[r["seed"]] = v
        return out


def _metric(record: Mapping, split: str, metric: str) -> Optional[float]:
    try:
        v = record["metrics"][split][metric]
    except (KeyError, TypeError):
        return None
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else v


def _valid_score(records: Sequence[Mapping]) -> float:
    vals = [v for v in (_metric(r, "valid", VALID_METRIC) for r in records) if v is not None]
    return float(np.mean(vals)) if vals else -math.inf


def choose(records: Sequence[Mapping]) -> Optional[Selection]:
    """Final records when any, else all; then the config with the best mean valid Recall@20."""
    if not records:
        return None
    finals = [r for r in records if r.get("role") == "final"]
    pool, source = (finals, "final") if finals else (list(records), "best-valid")
    by_config: dict[str, list] = defaultdict(list)
    for r in pool:
        by_config[str(r.get("config_hash", r.get("key")))].append(r)

    def rank(item):
        h, rs = item
        return (_valid_score(rs), len({r["seed"] for r in rs}), h)

    config_hash, chosen = max(by_config.items(), key=rank)
    per_seed: dict = {}
    for r in sorted(chosen, key=lambda r: str(r.get("created", ""))):
        per_seed[r["seed"]] = r  # the latest record of a seed wins
    return Selection([per_seed[s] for s in sorted(per_seed, key=str)], source, config_hash)


def select_runs(records: Iterable[Mapping], protocol: str = "standard") -> dict:
    """{(dataset, backbone, arm): Selection} for ``protocol``."""
    groups: dict[tuple, list] = defaultdict(list)
    for r in records:
        if r.get("protocol", "standard") != protocol:
            continue
        try:
            key = (r["dataset"]["name"], r["backbone"], r["arm"])
        except (KeyError, TypeError):
            continue
        groups[key].append(r)
    out = {}
    for key, rs in groups.items():
        sel = choose(rs)
        if sel is not None:
            out[key] = sel
    return out


# ----------------------------------------------------------------------------- table model


@dataclass
class Cell:
    text: str = MISSING  # the number as displayed, without markers
    std: Optional[str] = None
    best: bool = False
    sig: bool = False
    untested: bool = False
    comparable: bool = False  # takes part in the best-of-column mark

    @property
    def value(self) -> Optional[float]:
        if self.text == MISSING:
            return None
        try:
            return float(self.text.replace(",", ""))
        except ValueError:
            return None

    def marks(self) -> list[str]:
        return [m for m, on in (("best", self.best), ("sig", self.sig), ("untested", self.untested)) if on]


@dataclass
class Column:
    groups: tuple  # header levels, outermost first; the last is the column's own label
    marked: bool = False  # carries best/sig marks (csv: a "mark" column follows)
    has_std: bool = False
    align: str = "r"

    @property
    def label(self) -> str:
        return " ".join(self.groups)


@dataclass
class Table:
    name: str
    title: str
    columns: list
    rows: list  # list[list[Cell]]
    footnotes: list = field(default_factory=list)

    def mark_best(self) -> None:
        for j, col in enumerate(self.columns):
            if not col.marked:
                continue
            cells = [row[j] for row in self.rows if row[j].comparable and row[j].value is not None]
            if len(cells) < 2:
                continue
            top = max(c.value for c in cells)
            for c in cells:
                c.best = c.value == top


def fmt_metric(v: Optional[float]) -> str:
    return MISSING if v is None else f"{v:.4f}"


def fmt_int(v) -> str:
    return MISSING if v is None else f"{int(v):,}"


def fmt_ratio(v: Optional[float]) -> str:
    return MISSING if v is None or not math.isfinite(v) else f"{v:.3f}"


def fmt_impr(v: Optional[float]) -> str:
    return MISSING if v is None or not math.isfinite(v) else f"{100 * v:+.1f}"


def text_cell(s) -> Cell:
    return Cell(MISSING if s is None or s == "" else str(s))


# ----------------------------------------------------------------------------- significance


def paired_p(a: Sequence[float], b: Sequence[float]) -> Optional[float]:
    """Two-sided paired t-test p value; None when fewer than two pairs; nan-safe (nan -> 1)."""
    if len(a) < 2:
        return None
    from scipy.stats import ttest_rel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = float(ttest_rel(np.asarray(b, float), np.asarray(a, float)).pvalue)
    return 1.0 if math.isnan(p) else p


def _seed_pairs(id_sel: Selection, motor_sel: Selection, metric: str):
    a, b = id_sel.values(metric), motor_sel.values(metric)
    seeds = sorted(set(a) & set(b), key=str)
    return [a[s] for s in seeds], [b[s] for s in seeds]


def _user_means(store: RunStore, sel: Selection, metric: str) -> dict:
    """user -> per-user test metric averaged over the selection's seeds."""
    sums: dict = defaultdict(float)
    counts: dict = defaultdict(int)
    for r in sel.records:
        pu = store.per_user(r)
        users, vals = pu.get("test/users"), pu.get(f"test/{metric}")
        if users is None or vals is None:
            continue
        for u, v in zip(users.tolist(), vals.tolist()):
            sums[u] += v
            counts[u] += 1
    return {u: sums[u] / counts[u] for u in sums}


def _user_pairs(store: RunStore, id_sel: Selection, motor_sel: Selection, metric: str):
    a, b = _user_means(store, id_sel, metric), _user_means(store, motor_sel, metric)
    users = sorted(set(a) & set(b))
    return [a[u] for u in users], [b[u] for u in users]


# ----------------------------------------------------------------------------- tables


def comparison_table(
    selections: Mapping,
    name: str,
    title: str,
    metrics: Sequence[str] = DEFAULT_METRICS,
    show_std: bool = False,
    significance: str = "seeds",
    store: Optional[RunStore] = None,
) -> Optional[Table]:
    """Rows = backbones; per dataset and metric: ID, MOTOR, improvement (%)."""
    if not selections:
        return None
    datasets = _order({d for d, _, _ in selections}, DATASET_ORDER)
    backbones = _order({b for _, b, _ in selections}, BACKBONE_ORDER)
    columns = [Column(("Backbone",), align="l")]
    for d in datasets:
        for m in metrics:
            for arm in ("id", "motor"):
                columns.append(Column((d, metric_label(m), ARM_LABEL[arm]), marked=True, has_std=show_std))
            columns.append(Column((d, metric_label(m), IMPR_LABEL), marked=True))
    rows, untested, fallback = [], [], []
    counts: dict = defaultdict(set)
    for b in backbones:
        row = [Cell(backbone_label(b))]
        for d in datasets:
            sels = {arm: selections.get((d, b, arm)) for arm in ("id", "motor")}
            for arm, sel in sels.items():
                if sel is not None:
                    counts[len(sel.records)].add(f"{backbone_label(b)}/{d}/{ARM_LABEL[arm]}")
                    if sel.source != "final":
                        fallback.append(f"{backbone_label(b)} on {d} ({ARM_LABEL[arm]})")
            for m in metrics:
                means = {}
                for arm, sel in sels.items():
                    vals = list(sel.values(m).values()) if sel is not None else []
                    cell = Cell(comparable=True)
                    if vals:
                        means[arm] = float(np.mean(vals))
                        cell.text = fmt_metric(means[arm])
                        if show_std and len(vals) > 1:
                            cell.std = fmt_metric(float(np.std(vals, ddof=1)))
                    row.append(cell)
                impr = Cell(comparable=True)
                if "id" in means and "motor" in means:
                    base = means["id"]
                    impr.text = fmt_impr((means["motor"] - base) / base) if base != 0 else MISSING
                    if significance == "users" and store is not None:
                        a, b_ = _user_pairs(store, sels["id"], sels["motor"], m)
                    else:
                        a, b_ = _seed_pairs(sels["id"], sels["motor"], m)
                    p = paired_p(a, b_)
                    if p is None:
                        impr.untested = True
                        if f"{backbone_label(b)} on {d}" not in untested:
                            untested.append(f"{backbone_label(b)} on {d}")
                    else:
                        impr.sig = p < ALPHA
                row.append(impr)
        rows.append(row)
    table = Table(name, title, columns, rows)
    table.mark_best()
    split = "cold items, test split" if name == "cold-start" else "test split"
    notes = [
        f"Mean over seeds ({split}); {IMPR_LABEL} = (MOTOR - ID) / ID of the means. "
        "Bold: best in its column.",
        ("Dagger: p < 0.05, paired t-test over seeds (paired by seed)." if significance != "users" else
         "Dagger: p < 0.05, paired t-test over test users (per-user metrics averaged over seeds)."),
        "Runs: role=final records (chosen config rerun over seeds) where present, else all seeds of "
        "the config with the best mean valid Recall@20.",
    ]
    notes.append("Seeds per cell: " + "; ".join(
        f"{n}: {', '.join(sorted(cells)) if len(cells) <= 6 else str(len(cells)) + ' cells'}"
        for n, cells in sorted(counts.items())) + ".")
    if fallback:
        notes.append("No final records (best-valid config used): " + ", ".join(fallback) + ".")
    if untested:
        notes.append("Not tested (fewer than 2 paired " + ("users" if significance == "users" else "seeds")
                     + "), no mark: " + ", ".join(untested) + ".")
    if show_std:
        notes.append("+- : sample standard deviation over seeds.")
    table.footnotes = notes
    return table


def space_table(selections: Mapping) -> Optional[Table]:
    keys = sorted({(d, b) for d, b, _ in selections})
    if not keys:
        return None
    spec = [("Item params", "item_parameters", ("ID", "MOTOR", "ratio")),
            ("Item bytes", "item_bytes", ("ID", "MOTOR", "ratio")),
            ("Model params", "model_parameters", ("ID", "MOTOR", "ratio")),
            ("Model bytes", "model_bytes", ("ID", "MOTOR", "ratio"))]
    columns = [Column(("Dataset",), align="l"), Column(("Backbone",), align="l")]
    for label, _, parts in spec:
        columns += [Column((label, p)) for p in parts]
    columns.append(Column(("Code bytes", "MOTOR")))
    rows = []
    for d in _order({d for d, _ in keys}, DATASET_ORDER):
        for b in _order({b for dd, b in keys if dd == d}, BACKBONE_ORDER):
            space = {arm: (selections[(d, b, arm)].records[0].get("space") or {})
                     if (d, b, arm) in selections else {} for arm in ("id", "motor")}
            row = [Cell(d), Cell(backbone_label(b))]
            for _, key, _ in spec:
                i, m = space["id"].get(key), space["motor"].get(key)
                row += [Cell(fmt_int(i)), Cell(fmt_int(m)),
                        Cell(fmt_ratio(m / i if i and m is not None else None))]
            row.append(Cell(fmt_int(space["motor"].get("code_bytes"))))
            rows.append(row)
    return Table("space", "Space of the chosen configurations (parameters; bytes at fp32)", columns, rows,
                 ["ratio = MOTOR / ID. MOTOR item parameters = token table + Token Cross Network; code bytes "
                  "= the fixed (not learned) n_items x N code table, ceil(log2 K / 8) bytes per code.",
                  "Runs chosen as in the main table (role=final, else best valid Recall@20)."])


def motor_mk(motor: Optional[Mapping]) -> dict:
    """modality -> (M, K) of a record's motor settings (per-modality None = global pq_m/pq_k)."""
    if not motor:
        return {}
    mods = motor.get("modalities") or MODALITIES
    if isinstance(mods, str):
        mods = mods.split(",")
    out = {}
    for m in mods:
        pm, pk = motor.get(f"pq_m_{m}"), motor.get(f"pq_k_{m}")
        out[m] = (motor.get("pq_m") if pm is None else pm, motor.get("pq_k") if pk is None else pk)
    return out


def tuning_table(selections: Mapping) -> Optional[Table]:
    keys = sorted((d, b) for d, b, arm in selections if arm == "motor")
    if not keys:
        return None
    chosen = {k: selections[(k[0], k[1], "motor")] for k in keys}
    mods = _order({m for s in chosen.values() for m in motor_mk(s.records[0].get("motor"))}, MODALITIES)
    columns = [Column(("Dataset",), align="l"), Column(("Backbone",), align="l")]
    for m in mods:
        columns += [Column((m, "M")), Column((m, "K"))]
    columns += [Column(("Valid R@20",)), Column(("Seeds",)), Column(("Runs",), align="l")]
    rows = []
    for d in _order({d for d, _ in keys}, DATASET_ORDER):
        for b in _order({b for dd, b in keys if dd == d}, BACKBONE_ORDER):
            sel = chosen[(d, b)]
            mk = motor_mk(sel.records[0].get("motor"))
            row = [Cell(d), Cell(backbone_label(b))]
            for m in mods:
                M, K = mk.get(m, (None, None))
                row += [Cell(fmt_int(M)), Cell(fmt_int(K))]
            v = _valid_score(sel.records)
            row += [Cell(fmt_metric(v if math.isfinite(v) else None)), Cell(str(len(sel.records))),
                    Cell(sel.source)]
            rows.append(row)
    return Table("tuning", "Chosen PQ settings of the MOTOR arm (M sub-spaces, K centroids per modality)",
                 columns, rows,
                 ["Runs: final = chosen config rerun over seeds (role=final); best-valid = no final records, "
                  "config with the best mean valid Recall@20. '-': modality not tokenized."])


def datasets_table(records: Iterable[Mapping]) -> Optional[Table]:
    stats = {}
    for r in records:
        ds = r.get("dataset") or {}
        if ds.get("name") and ds.get("stats") and ds["name"] not in stats:
            stats[ds["name"]] = ds["stats"]
    if not stats:
        return None
    mods = _order({m for s in stats.values() for m in (s.get("features") or {})}, MODALITIES)
    columns = [Column(("Dataset",), align="l")] + [Column((c,)) for c in
               ("Users", "Items", "Interactions", "Train", "Valid", "Test", "Sparsity %")]
    columns += [Column((f"{m} dim",)) for m in mods]
    rows = []
    for name in _order(stats, DATASET_ORDER):
        s = stats[name]
        row = [Cell(name)] + [Cell(fmt_int(s.get(k))) for k in
                              ("users", "items", "interactions", "train", "valid", "test")]
        sp = s.get("sparsity")
        row.append(Cell(MISSING if sp is None else f"{100 * sp:.4f}"))
        feats = s.get("features") or {}
        row += [Cell(fmt_int(feats[m][-1]) if m in feats else MISSING) for m in mods]
        rows.append(row)
    return Table("datasets", "Dataset statistics", columns, rows,
                 ["From the run records' dataset.stats (all splits; users and items as loaded)."])


def build_tables(
    records: Sequence[Mapping],
    metrics: Sequence[str] = DEFAULT_METRICS,
    show_std: bool = False,
    significance: str = "seeds",
    store: Optional[RunStore] = None,
    which: Sequence[str] = TABLES,
) -> list:
    standard = select_runs(records, "standard")
    out = []
    if "main" in which:
        out.append(comparison_table(standard, "main", "Main results: ID vs MOTOR (protocol standard)",
                                    metrics, show_std, significance, store))
    if "cold-start" in which:
        out.append(comparison_table(select_runs(records, "cold-start"), "cold-start",
                                    "Cold-start results: ID vs MOTOR on cold items (protocol cold-start)",
                                    metrics, show_std, significance, store))
    if "space" in which:
        out.append(space_table(standard))
    if "tuning" in which:
        out.append(tuning_table(standard))
    if "datasets" in which:
        out.append(datasets_table(records))
    return [t for t in out if t is not None]


# ----------------------------------------------------------------------------- rendering


def _display(cell: Cell, fmt: str, col: Column) -> str:
    text = cell.text
    if fmt == "md":
        if cell.best:
            text = f"**{text}**"
        if cell.std is not None:
            text = f"{text} ± {cell.std}"
        if cell.sig:
            text += "†"
        return text
    # latex
    text = latex_escape(text)
    if cell.best:
        text = f"\\textbf{{{text}}}"
    if cell.std is not None:
        text = f"{text} $\\pm$ {cell.std}"
    if cell.sig:
        text += "$^{\\dagger}$"
    return text


def render_md(table: Table) -> str:
    from tabulate import tabulate

    headers = [c.label for c in table.columns]
    body = [[_display(cell, "md", col) for cell, col in zip(row, table.columns)] for row in table.rows]
    text = tabulate(body, headers=headers, tablefmt="pipe", disable_numparse=True,
                    colalign=[("left" if c.align == "l" else "right") for c in table.columns])
    notes = "\n".join(f"- {n}" for n in table.footnotes)
    return f"{text}\n\n{notes}\n" if notes else text + "\n"


_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def latex_escape(s: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(s))


def render_latex(table: Table) -> str:
    cols = table.columns
    depth = max(len(c.groups) for c in cols)
    lines = [f"% {table.name}: {latex_escape(table.title)} -- generated by benchmark.table from the run "
             "records; do not edit",
             "\\begin{tabular}{" + "".join(c.align for c in cols) + "}", "\\toprule"]
    for level in range(depth):
        cells, rules = [], []
        j = 0
        while j < len(cols):
            c = cols[j]
            pad = depth - len(c.groups)
            if level < pad:
                cells.append("")
                j += 1
                continue
            g = c.groups[: level - pad + 1]
            k = j + 1
            while k < len(cols) and level < depth - 1 and depth - len(cols[k].groups) == pad \
                    and cols[k].groups[: level - pad + 1] == g:
                k += 1
            label = latex_escape(g[-1])
            if k - j > 1 or (level < depth - 1):
                cells.append(f"\\multicolumn{{{k - j}}}{{c}}{{{label}}}")
                if level < depth - 1:
                    rules.append(f"\\cmidrule(lr){{{j + 1}-{k}}}")
            else:
                cells.append(label)
            j = k
        lines.append(" & ".join(cells) + " \\\\")
        if rules:
            lines.append(" ".join(rules))
    lines.append("\\midrule")
    for row in table.rows:
        lines.append(" & ".join(_display(cell, "latex", col) for cell, col in zip(row, cols)) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    if table.footnotes:
        lines.append("\\par\\footnotesize " + " ".join(latex_escape(n) for n in table.footnotes)
                     .replace("Dagger", "$\\dagger$").replace("+- ", "$\\pm$ "))
    return "\n".join(lines) + "\n"


def render_csv(table: Table) -> str:
    header = []
    for c in table.columns:
        header.append(c.label)
        if c.has_std:
            header.append(f"{c.label} std")
        if c.marked:
            header.append(f"{c.label} mark")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for row in table.rows:
        out = []
        for cell, c in zip(row, table.columns):
            out.append(cell.text.replace(",", "") if cell.value is not None else cell.text)
            if c.has_std:
                out.append(cell.std or MISSING)
            if c.marked:
                out.append(";".join(cell.marks()))
        w.writerow(out)
    return buf.getvalue()


RENDER = {"md": render_md, "latex": render_latex, "csv": render_csv}


def render(table: Table, fmt: str) -> str:
    return RENDER[fmt](table)


# ----------------------------------------------------------------------------- CLI


def default_results() -> Path:
    return Path(os.environ.get("MOTOR_BENCH_RESULTS", "results"))


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.table", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", type=Path, default=None,
                   help="results folder holding runs/ (default ./results or $MOTOR_BENCH_RESULTS)")
    p.add_argument("--format", choices=tuple(FORMATS), default="md")
    p.add_argument("--metrics", nargs="+", default=list(DEFAULT_METRICS), metavar="METRIC")
    p.add_argument("--std", action="store_true", help="show the standard deviation over seeds")
    p.add_argument("--significance", choices=("seeds", "users"), default="seeds",
                   help="paired t-test over seeds (default) or over per-user test metrics")
    p.add_argument("--tables", nargs="+", choices=TABLES, default=list(TABLES), metavar="TABLE",
                   help=f"which tables ({', '.join(TABLES)}; default all that have records)")
    p.add_argument("--no-write", action="store_true", help="print only; do not write results/tables/")
    args = p.parse_args(argv)

    results = args.results or default_results()
    store = RunStore(results)
    records = list(store.records())
    if not records:
        print(f"error: no run records under {store.runs}", file=sys.stderr)
        return 2
    tables = build_tables(records, args.metrics, args.std, args.significance, store, args.tables)
    if not tables:
        print("error: the records hold nothing for the requested tables", file=sys.stderr)
        return 2
    ext = FORMATS[args.format]
    comment = {"md": "## ", "csv": "# "}.get(args.format, "")
    for i, t in enumerate(tables):
        text = render(t, args.format)
        if not args.no_write:
            atomic_write_text(results / "tables" / f"{t.name}.{ext}", text)
        if i:
            print()
        if args.format != "latex":  # a LaTeX table names itself in its first (comment) line
            print(f"{comment}{t.name}: {t.title}")
        if args.format == "md":
            print()
        sys.stdout.write(text)
    if not args.no_write:
        print(f"\nwrote {len(tables)} table(s) to {results / 'tables'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
