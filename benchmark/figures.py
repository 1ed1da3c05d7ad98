"""Figures rendered from the run records (PNG, matplotlib's Agg canvas; no display needed).

    python -m benchmark.figures [--results DIR] [--out DIR]

Writes under ``<results>/figures/`` (atomic writes):

- ``sensitivity_<dataset>_<backbone>.png``: valid Recall@20 over the PQ grid M x K, from the
  tuning trials' records (``role == "trial"``, arm ``motor``). One heatmap per modality (one
  shared panel when no trial set a per-modality value). A cell holds the best valid Recall@20 of
  the trials with that (M, K) for the modality, whatever the other modality's setting, and the
  number of such trials; cells no trial visited stay grey (sparse grids are the rule with TPE).
  The best trial's cell is outlined.
- ``curves_<dataset>_<backbone>.png``: training loss and valid Recall@20 per epoch of the chosen
  runs of both arms, one line per seed. The runs are those the tables use (benchmark.table:
  ``role == "final"`` records when any, else the config with the best mean valid Recall@20).

Non-standard protocols get a ``_<protocol>`` suffix. With nothing to plot, says so and exits 0.
"""
from __future__ import annotations

import argparse
import io
import math
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence

import numpy as np

from benchmark.store import RunStore, atomic_write_bytes
from benchmark.table import (ARM_LABEL, BACKBONE_ORDER, DATASET_ORDER, MODALITIES, VALID_METRIC, _metric,
                             _order, backbone_label, default_results, motor_mk, select_runs)

ARM_COLOR = {"id": "tab:blue", "motor": "tab:orange"}


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("_") or "unnamed"


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
    return path


def _suffix(protocol: str) -> str:
    return "" if protocol == "standard" else f"_{_safe(protocol)}"


# ----------------------------------------------------------------------------- sensitivity


def trial_points(records: Iterable[Mapping]) -> dict:
    """{(dataset, backbone, protocol): [(motor settings, {modality: (M, K)}, valid R@20)]}."""
    out: dict = defaultdict(list)
    for r in records:
        if r.get("role") != "trial" or r.get("arm") != "motor" or not r.get("motor"):
            continue
        v = _metric(r, "valid", VALID_METRIC)
        if v is None:
            continue
        try:
            key = (r["dataset"]["name"], r["backbone"], r.get("protocol", "standard"))
        except (KeyError, TypeError):
            continue
        out[key].append((r["motor"], motor_mk(r["motor"]), v))
    return dict(out)


def _panels(points: Sequence) -> dict:
    """panel name -> {(M, K): [valid values]}; one 'all modalities' panel when nothing is per-modality."""
    shared = all(m.get(f"pq_{x}_{mod}") is None for m, _, _ in points for x in ("m", "k") for mod in MODALITIES)
    panels: dict = {}
    if shared:
        grid: dict = defaultdict(list)
        for m, _, v in points:
            grid[(m.get("pq_m"), m.get("pq_k"))].append(v)
        panels["all modalities"] = grid
        return panels
    for mod in MODALITIES:
        grid = defaultdict(list)
        for _, mk, v in points:
            if mod in mk:
                grid[mk[mod]].append(v)
        if grid:
            panels[mod] = grid
    return panels


def plot_sensitivity(points: Sequence, title: str, path: Path) -> Optional[Path]:
    panels = _panels(points)
    panels = {k: g for k, g in panels.items() if any(M is not None and K is not None for M, K in g)}
    if not panels:
        return None
    import matplotlib

    fig = _figure(4.6 * len(panels) + 0.6, 4.0)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    all_vals = [v for g in panels.values() for vs in g.values() for v in vs]
    vmin, vmax = min(all_vals), max(all_vals)
    if vmin == vmax:
        vmin, vmax = vmin - 1e-6, vmax + 1e-6
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#dddddd")
    best = max(all_vals)
    image = None
    for ax, (name, grid) in zip(axes, panels.items()):
        grid = {mk: vs for mk, vs in grid.items() if None not in mk}
        Ms = sorted({M for M, _ in grid})
        Ks = sorted({K for _, K in grid})
        z = np.full((len(Ms), len(Ks)), np.nan)
        n = np.zeros_like(z, dtype=int)
        for (M, K), vs in grid.items():
            z[Ms.index(M), Ks.index(K)] = max(vs)
            n[Ms.index(M), Ks.index(K)] = len(vs)
        image = ax.imshow(np.ma.masked_invalid(z), cmap=cmap, vmin=vmin, vmax=vmax, origin="lower",
                          aspect="auto")
        for i in range(len(Ms)):
            for j in range(len(Ks)):
                if math.isnan(z[i, j]):
                    continue
                ax.text(j, i, f"{z[i, j]:.4f}\n({n[i, j]})", ha="center", va="center", fontsize=7,
                        color="white" if z[i, j] < (vmin + vmax) / 2 else "black")
                if z[i, j] == best:
                    ax.add_patch(matplotlib.patches.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False,
                                                              edgecolor="red", linewidth=2))
        ax.set_xticks(range(len(Ks)), [str(k) for k in Ks])
        ax.set_yticks(range(len(Ms)), [str(m) for m in Ms])
        ax.set_xlabel("K (centroids)")
        ax.set_ylabel("M (sub-spaces)")
        ax.set_title(name)
    fig.colorbar(image, ax=list(axes), label=f"best valid {VALID_METRIC} (n trials)")
    fig.suptitle(title)
    return _save(fig, path)


# ----------------------------------------------------------------------------- curves


def plot_curves(selections: Mapping, title: str, path: Path) -> Optional[Path]:
    """selections: {arm: Selection}; one line per seed, loss and valid Recall@20 per epoch."""
    series = []
    for arm, sel in selections.items():
        for r in sel.records:
            hist = [h for h in (r.get("history") or []) if isinstance(h, Mapping) and "epoch" in h]
            if hist:
                series.append((arm, r.get("seed"), hist))
    if not series:
        return None
    fig = _figure(10, 3.8)
    ax_loss, ax_valid = fig.subplots(1, 2)
    labelled = set()
    for arm, seed, hist in series:
        label = None if arm in labelled else ARM_LABEL.get(arm, arm)
        labelled.add(arm)
        color = ARM_COLOR.get(arm)
        ep = [h["epoch"] for h in hist if h.get("loss") is not None]
        ax_loss.plot(ep, [h["loss"] for h in hist if h.get("loss") is not None], color=color, alpha=0.7,
                     linewidth=1, label=label)
        ev = [(h["epoch"], h["valid"]) for h in hist if h.get("valid") is not None]
        if ev:
            ax_valid.plot([e for e, _ in ev], [v for _, v in ev], color=color, alpha=0.7, linewidth=1,
                          marker="." if len(ev) < 30 else None, label=label)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss")
    ax_valid.set_xlabel("epoch")
    ax_valid.set_ylabel(f"valid {VALID_METRIC}")
    for ax in (ax_loss, ax_valid):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
    seeds = sorted({str(s) for _, s, _ in series})
    fig.suptitle(f"{title} (one line per seed: {', '.join(seeds)})")
    return _save(fig, path)


# ----------------------------------------------------------------------------- all figures


def make_figures(records: Sequence[Mapping], out_dir: Path) -> list:
    written = []
    for (dataset, backbone, protocol), points in sorted(trial_points(records).items()):
        title = f"{dataset} / {backbone_label(backbone)}: MOTOR tuning trials"
        p = plot_sensitivity(points, title,
                             out_dir / f"sensitivity_{_safe(dataset)}_{_safe(backbone)}{_suffix(protocol)}.png")
        if p is not None:
            written.append(p)
    protocols = sorted({r.get("protocol", "standard") for r in records})
    for protocol in protocols:
        sel = select_runs(records, protocol)
        pairs = {(d, b) for d, b, _ in sel}
        for d in _order({d for d, _ in pairs}, DATASET_ORDER):
            for b in _order({b for dd, b in pairs if dd == d}, BACKBONE_ORDER):
                arms = {arm: sel[(d, b, arm)] for arm in ("id", "motor") if (d, b, arm) in sel}
                src = "/".join(sorted({s.source for s in arms.values()}))
                title = f"{d} / {backbone_label(b)} ({protocol}, runs: {src})"
                p = plot_curves(arms, title, out_dir / f"curves_{_safe(d)}_{_safe(b)}{_suffix(protocol)}.png")
                if p is not None:
                    written.append(p)
    return written


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.figures", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", type=Path, default=None,
                   help="results folder holding runs/ (default ./results or $MOTOR_BENCH_RESULTS)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default <results>/figures)")
    args = p.parse_args(argv)
    results = args.results or default_results()
    records = list(RunStore(results).records())
    if not records:
        print(f"nothing to plot: no run records under {results / 'runs'}", file=sys.stderr)
        return 0
    written = make_figures(records, args.out or results / "figures")
    if not written:
        print("nothing to plot: no tuning trials (role=trial, arm motor) and no training histories",
              file=sys.stderr)
        return 0
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
