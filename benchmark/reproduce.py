"""The experiment grid: tune each (dataset, backbone, arm), rerun the chosen config over seeds, report.

    python -m benchmark.reproduce --profile smoke|default|paper [--results DIR] [--data-root DIR]
        [--datasets D ...] [--backbones B ...] [--arms id motor] [--trials N] [--seeds N]
        [--epochs E] [--device auto|cpu|cuda] [--protocol standard|cold-start] [--cache-dir DIR]

For every cell (dataset, backbone, arm) of the profile:
1. tune: an Optuna study of ``trials`` finished trials (benchmark.tune; the trials run with the
   tuning seed and write records with ``role: "trial"``), best config exported to
   ``<results>/best/<dataset>/<backbone>-<arm>.json``;
2. final: the chosen config rerun with ``seeds`` further seeds (tuning seed + 1, + 2, ...), records
   with ``role: "final"``;
then ``benchmark.table`` and ``benchmark.figures`` render ``<results>/tables`` and figures from the
records. Results go to ``<results>`` = ``--results``, else ``results/`` (or
``$MOTOR_BENCH_RESULTS``) for the default profile and ``results/<profile>`` for smoke and paper,
so those never mix their records with the main job's.

Resumable: a run whose record exists is never repeated, a study only adds its missing trials, and
the best configs are re-exported; rerun the same command after Ctrl-C or a killed process.
A cell that cannot run (a dataset without features for a multimodal backbone, a backbone not
registered) is skipped with a notice; a cell that fails is reported and the grid goes on.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
from tqdm.auto import tqdm

from backbones.base import MissingFeatureError, registered
from benchmark.arms import ARMS, MotorSettings
from benchmark.run import default_cache, default_results, execute
from benchmark.store import RunStore, atomic_write_json
from benchmark.train import TrainConfig
from benchmark.tune import (K_CHOICES, M_MAX, OBJECTIVE, TuneError, TuneSettings, motor_modalities,
                            protocol_setup, spec_from_best, tune)

#: The nine backbones of the paper, in its order.
NINE = ("vbpr", "mmgcn", "grcn", "dualgnn", "slmrec", "lattice", "bm3", "freedom", "lgmrec")


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    datasets: tuple[str, ...]
    backbones: tuple[str, ...]
    trials: int  # finished Optuna trials per (dataset, backbone, arm), same for both arms
    seeds: int  # final reruns of the chosen config
    epochs: int
    patience: int
    max_seconds: Optional[float] = None  # training time budget per run (safety net)
    batch_size: int = 2048
    arms: tuple[str, ...] = ARMS
    search_backbone: bool = False  # MOTOR arm: also search the backbone's own grid
    m_max: int = M_MAX  # MOTOR arm: largest PQ sub-space count M searched (per modality)
    k_max: int = K_CHOICES[-1]  # MOTOR arm: largest codebook size K searched
    tuning_seed: int = 999

    def train(self, epochs: Optional[int] = None) -> TrainConfig:
        return TrainConfig(epochs=self.epochs if epochs is None else epochs, patience=self.patience,
                           batch_size=self.batch_size, max_seconds=self.max_seconds)

    def final_seeds(self, n: Optional[int] = None) -> list[int]:
        return [self.tuning_seed + 1 + i for i in range(self.seeds if n is None else n)]


# default: calibrated on a shared 2-core machine (OMP_NUM_THREADS=2, load average 4-7 from other
# jobs): 18 cells x (2 trials + 2 final seeds) = 72 runs, each stopped by the 8 s training budget,
# 30 epochs or patience 5, batch 4096 (half MMRec's batches per epoch: under load a single epoch
# of a graph backbone took longer than the budget) -> 867 s wall. With batch 2048 it took
# 1405 s (budget 8 s) and 1643 s (budget 10 s). MOTOR searches M <= 16, K <= 256 here, so one
# epoch of the MOTOR arm costs about what the ID arm's does. The numbers are a pipeline check,
# not a replication: many runs stop after a few epochs.
PROFILES = {
    "smoke": Profile(
        name="smoke", description="one-minute pass: 2 backbones, both arms, 1 trial, 1 seed, 2 epochs",
        datasets=("synthetic",), backbones=("vbpr", "freedom"), trials=1, seeds=1, epochs=2, patience=2,
        m_max=8, k_max=64,
    ),
    "default": Profile(
        name="default",
        description="every registered backbone of the nine, both arms, synthetic data, 2 trials, 2 seeds, "
                    "8 s per run (~15 min on 2 cores)",
        datasets=("synthetic",), backbones=NINE, trials=2, seeds=2, epochs=30, patience=5, max_seconds=8,
        batch_size=4096, m_max=16, k_max=256,
    ),
    "paper": Profile(
        name="paper",
        description="method.md protocol: baby, sports, clothing; 30 trials, 5 seeds, 1000 epochs, patience 20",
        datasets=("baby", "sports", "clothing"), backbones=NINE, trials=30, seeds=5, epochs=1000,
        patience=20,
    ),
}


@dataclass
class Cell:
    dataset: str
    backbone: str
    arm: str
    status: str = "pending"
    trials_before: int = 0
    trials_ran: int = 0
    trials_done: int = 0
    finals_new: int = 0
    finals_reused: int = 0
    valid: Optional[float] = None  # best trial's valid Recall@20
    test: list = field(default_factory=list)  # final seeds' test Recall@20
    seconds: float = 0.0

    def row(self) -> list[str]:
        test = f"{np.mean(self.test):.4f}" if self.test else "-"
        if len(self.test) > 1:
            test += f" ±{np.std(self.test, ddof=1):.4f}"
        return [self.dataset, self.backbone, self.arm,
                f"{self.trials_ran} new / {self.trials_done}" if self.trials_done else "-",
                f"{self.finals_new} new, {self.finals_reused} reused" if self.finals_new + self.finals_reused else "-",
                "-" if self.valid is None else f"{self.valid:.4f}", test, f"{self.seconds:.0f}", self.status]


HEADER = ["dataset", "backbone", "arm", "trials", "final runs", f"valid {OBJECTIVE}", f"test {OBJECTIVE}",
          "s", "status"]


def format_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def default_best(dataset, backbone: str, arm: str, train: TrainConfig, protocol: str) -> dict:
    """The backbone's defaults, for a backbone with nothing to tune."""
    motor = MotorSettings(modalities=motor_modalities(dataset)).to_dict() if arm == "motor" else None
    return {"dataset": dataset.name, "backbone": backbone, "arm": arm, "protocol": protocol, "params": {},
            "motor": motor, "train": dataclasses.asdict(train), "value": None}


def run_cell(cell: Cell, dataset, profile: Profile, args, results: Path, store: RunStore, log) -> None:
    t0 = time.perf_counter()
    settings = TuneSettings(backbone=cell.backbone, arm=cell.arm, trials=args.trials or profile.trials,
                            seed=profile.tuning_seed, train=profile.train(args.epochs), protocol=args.protocol,
                            search_backbone=profile.search_backbone, m_max=profile.m_max, k_max=profile.k_max)
    try:
        out = tune(dataset, settings, results, args.cache_dir, device=args.device, log=log)
    except TuneError as e:
        if "nothing to tune" not in str(e):
            raise
        log(f"  {cell.dataset}/{cell.backbone}/{cell.arm}: {e}; using its defaults")
        best = default_best(dataset, cell.backbone, cell.arm, settings.train, args.protocol)
    else:
        cell.trials_before, cell.trials_ran, cell.trials_done = out.before, out.ran, out.finished
        best = out.best
        if best is None:
            cell.status = f"failed: no completed trial ({out.finished}/{out.requested} finished)"
            return
        cell.valid = best["value"]
    setup = protocol_setup(args.protocol, "final")
    for seed in profile.final_seeds(args.seeds):
        spec = spec_from_best(best, seed)
        found = store.find(dataset.name, spec.backbone, spec.key(dataset.fingerprint))
        if found is None:
            found = execute(spec, dataset, store, device=args.device, cache_dir=args.cache_dir,
                            progress=False, protocol_setup=setup)
            cell.finals_new += 1
        else:
            cell.finals_reused += 1
        cell.test.append(found["metrics"]["test"][OBJECTIVE])
    cell.status = "ok"
    cell.seconds = time.perf_counter() - t0


def render(results: Path, log) -> None:
    for name in ("benchmark.table", "benchmark.figures"):
        try:
            mod = importlib.import_module(name)
        except ImportError as e:
            log(f"notice: {name} is not available ({e}); skipped")
            continue
        try:
            rc = mod.main(["--results", str(results)])
        except SystemExit as e:
            rc = e.code
        except Exception as e:  # a report must not lose the runs that made it
            log(f"notice: {name} failed: {type(e).__name__}: {e}")
            continue
        if rc not in (0, None):
            log(f"notice: {name} exited with status {rc}")


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.reproduce", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", choices=tuple(PROFILES), default="default")
    p.add_argument("--results", type=Path, default=None,
                   help="results folder (default: results/ for the default profile, results/<profile> otherwise)")
    p.add_argument("--data-root", default=None, help="folder holding baby/ sports/ clothing/")
    p.add_argument("--cache-dir", type=Path, default=None, help="derived-artefact cache (default ./cache)")
    p.add_argument("--datasets", nargs="+", default=None, help="override the profile's datasets")
    p.add_argument("--backbones", nargs="+", default=None, help="override the profile's backbones")
    p.add_argument("--arms", nargs="+", choices=ARMS, default=None)
    p.add_argument("--trials", type=int, default=None, help="Optuna trials per (dataset, backbone, arm)")
    p.add_argument("--seeds", type=int, default=None, help="final reruns of each chosen config")
    p.add_argument("--epochs", type=int, default=None, help="override the profile's maximum epochs")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--protocol", default="standard", choices=("standard", "cold-start"))
    p.add_argument("--no-report", action="store_true", help="do not render tables and figures")
    args = p.parse_args(argv)
    profile = PROFILES[args.profile]
    # the main job (default profile) writes to results/ itself, so tox -e reproduce leaves
    # results/tables/main.md; smoke and paper get their own subfolders and never mix records
    results = args.results or (default_results() if profile.name == "default" else default_results() / profile.name)
    args.cache_dir = args.cache_dir or default_cache()
    log = lambda msg: tqdm.write(str(msg), file=sys.stderr)

    known = registered()
    wanted = tuple(args.backbones or profile.backbones)
    missing = [b for b in wanted if b not in known]
    if missing:
        log(f"notice: not registered (skipped): {', '.join(missing)}; registered: {', '.join(known)}")
    backbones = [b for b in wanted if b in known]
    cells = [Cell(d, b, a) for d in (args.datasets or profile.datasets) for b in backbones
             for a in (args.arms or profile.arms)]
    n_trials, n_seeds = args.trials or profile.trials, profile.seeds if args.seeds is None else args.seeds
    log(f"profile {profile.name}: {profile.description}\n  {len(cells)} cells, {n_trials} trial(s) and "
        f"{n_seeds} final seed(s) each, results in {results}")

    from benchmark.data import DataError, resolve

    store = RunStore(results)
    t0 = time.perf_counter()
    datasets: dict[str, Any] = {}
    bar = tqdm(cells, desc="grid", unit="cell", file=sys.stderr, dynamic_ncols=True)
    interrupted = False
    try:
        for cell in bar:
            bar.set_postfix_str(f"{cell.dataset}/{cell.backbone}/{cell.arm}")
            if cell.dataset not in datasets:
                try:
                    datasets[cell.dataset] = resolve(cell.dataset, data_root=args.data_root)
                except DataError as e:
                    log(f"notice: {e}; skipping dataset {cell.dataset}")
                    datasets[cell.dataset] = e
            data = datasets[cell.dataset]
            if isinstance(data, Exception):
                cell.status = "skipped: dataset unavailable"
                continue
            try:
                run_cell(cell, data, profile, args, results, store, log)
            except MissingFeatureError as e:
                cell.status = "skipped: missing features"
                log(f"notice: {cell.dataset}/{cell.backbone}/{cell.arm} skipped: {e}")
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as e:
                cell.status = f"failed: {type(e).__name__}"
                log(f"error in {cell.dataset}/{cell.backbone}/{cell.arm}: {type(e).__name__}: {e}\n"
                    + "".join(traceback.format_exception(e)[-3:]))
    except KeyboardInterrupt:
        interrupted = True
        for cell in cells:
            if cell.status == "pending":
                cell.status = "interrupted"
                break
    finally:
        bar.close()
    wall = time.perf_counter() - t0
    print(f"\nreproduce --profile {profile.name}: {wall:.0f}s wall, results in {results}")
    print(format_table(HEADER, [c.row() for c in cells]))
    atomic_write_json(results / f"reproduce-{profile.name}.json", {
        "profile": dataclasses.asdict(profile), "overrides": {k: v for k, v in vars(args).items() if k != "cache_dir"},
        "wall_seconds": wall, "interrupted": interrupted, "cells": [dataclasses.asdict(c) for c in cells],
    })
    if interrupted:
        print("\ninterrupted: finished runs and trials are kept; rerun the same command to continue "
              "where it stopped", file=sys.stderr)
        return 130
    if not args.no_report:
        render(results, log)
    return 1 if any(c.status.startswith("failed") for c in cells) else 0


if __name__ == "__main__":
    sys.exit(main())
