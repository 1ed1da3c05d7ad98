"""Train one (dataset, backbone, arm, hyper-parameters, seed) and write its run record.

    python -m benchmark.run --dataset synthetic --backbone freedom --arm motor [--epochs N]
        [--seed S] [--device auto|cpu|cuda] [--set key=value ...] [--pq-m M] [--pq-k K] [--json]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import numpy as np

from backbones.base import MissingFeatureError, UnknownKeyError, get_backbone, registered
from benchmark.arms import ARMS, MotorSettings, build_item_encoder
from benchmark.dataset import Dataset
from benchmark.seeding import resolve_device, seed_everything
from benchmark.store import PER_USER_METRICS, RunStore, environment, code_version, peak_rss_mb, stable_hash
from benchmark.train import TrainConfig, TrainResult, train

REPORT_METRICS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")


def default_results() -> Path:
    return Path(os.environ.get("MOTOR_BENCH_RESULTS", "results"))


def default_cache() -> Path:
    return Path(os.environ.get("MOTOR_BENCH_CACHE", "cache"))


@dataclass(frozen=True)
class RunSpec:
    dataset: str
    backbone: str
    arm: str = "id"
    seed: int = 999
    params: Mapping[str, Any] = field(default_factory=dict)  # backbone config overrides
    motor: MotorSettings = field(default_factory=MotorSettings)
    train: TrainConfig = field(default_factory=TrainConfig)
    protocol: str = "standard"

    def __post_init__(self):
        if self.arm not in ARMS:
            raise ValueError(f"unknown arm {self.arm!r}; expected one of {', '.join(ARMS)}")

    def backbone_config(self):
        """The backbone's defaults, its per-dataset defaults (e.g. LGMRec), then overrides."""
        cls = get_backbone(self.backbone)
        per_dataset = getattr(cls.Config, "dataset_defaults", {}).get(self.dataset, {})
        return cls.Config.from_dict({**per_dataset, **dict(self.params)})

    def identity(self, dataset_fingerprint: str) -> dict:
        """Everything that determines the result, except the seed."""
        return {
            "dataset": dataset_fingerprint,
            "backbone": self.backbone,
            "arm": self.arm,
            "protocol": self.protocol,
            "config": self.backbone_config().to_dict(),
            "motor": self.motor.to_dict() if self.arm == "motor" else None,
            "train": dataclasses.asdict(self.train),
        }

    def config_hash(self, dataset_fingerprint: str) -> str:
        return stable_hash(self.identity(dataset_fingerprint))

    def key(self, dataset_fingerprint: str) -> str:
        return f"{self.backbone}-{self.arm}-{self.config_hash(dataset_fingerprint)}-s{self.seed}"


def build_model(spec: RunSpec, dataset: Dataset, cache_dir: Optional[Path], fit_items=None):
    cls = get_backbone(spec.backbone)
    config = spec.backbone_config()
    encoder = None
    if cls.uses_item_encoder:
        encoder = build_item_encoder(spec.arm, dataset, config.embedding_dim, spec.motor, spec.seed,
                                     cache_dir, fit_items=fit_items)
    return cls(dataset.to_input(cache_dir), encoder, config)


def space_of(model) -> dict:
    enc = model.item_encoder
    item_params = enc.n_parameters() if enc is not None else 0
    model_params = model.n_parameters()
    return {
        "item_parameters": item_params,
        "item_bytes": item_params * 4,
        "model_parameters": model_params,
        "model_bytes": model_params * 4,
        "code_bytes": enc.code_bytes() if enc is not None else 0,
    }


def execute(
    spec: RunSpec,
    dataset: Dataset,
    store: Optional[RunStore] = None,
    device: str = "auto",
    cache_dir: Optional[Path] = None,
    progress: bool = True,
    on_epoch: Optional[Callable[[int, float], None]] = None,
    force: bool = False,
    protocol_setup: Optional[Callable[[Dataset], tuple]] = None,
    tags: Optional[dict] = None,
) -> dict:
    """Run ``spec`` on ``dataset`` unless its record exists; return the record.

    ``tags`` (e.g. {"role": "trial", "trial": {...}} or {"role": "final"}) are stored in the
    record but are not part of its key: the same configuration and seed is one run.

    ``protocol_setup(dataset)`` (cold start) returns (train dataset, eval_target, fit_items, extra).
    """
    fingerprint = dataset.fingerprint
    key = spec.key(fingerprint)
    if store is not None and not force:
        found = store.find(dataset.name, spec.backbone, key)
        if found is not None:
            return found
    dev = resolve_device(device)
    version = code_version()  # the checkout as the run starts: it may change while it trains
    t0 = time.perf_counter()
    rng = seed_everything(spec.seed)
    train_data, eval_target, fit_items, extra = dataset, None, None, {}
    if protocol_setup is not None:
        train_data, eval_target, fit_items, extra = protocol_setup(dataset)
    model = build_model(spec, train_data, cache_dir, fit_items=fit_items)
    setup_seconds = time.perf_counter() - t0
    result = train(model, train_data, spec.train, rng, dev, progress=progress, on_epoch=on_epoch,
                   eval_target=eval_target)
    record = make_record(spec, dataset, key, model, result, dev, setup_seconds, time.perf_counter() - t0,
                         version)
    record.update(extra)
    record.update(tags or {})
    if store is not None:
        per_user = {}
        for split, res in (("valid", result.valid), ("test", result.test)):
            per_user[f"{split}/users"] = res.users
            for m in PER_USER_METRICS:
                per_user[f"{split}/{m}"] = res.per_user[m].astype(np.float32)
        store.write(record, per_user)
    return record


def make_record(spec: RunSpec, dataset: Dataset, key: str, model, result: TrainResult, dev,
                setup_seconds: float, total_seconds: float, version: str) -> dict:
    identity = spec.identity(dataset.fingerprint)
    return {
        "schema": 1,
        "key": key,
        "config_hash": spec.config_hash(dataset.fingerprint),
        "dataset": {"name": dataset.name, "source": dataset.source, "fingerprint": dataset.fingerprint,
                    "stats": dataset.stats()},
        "backbone": spec.backbone,
        "arm": spec.arm,
        "protocol": spec.protocol,
        "seed": spec.seed,
        "config": identity["config"],
        "motor": identity["motor"],
        "train": identity["train"],
        "metrics": {"valid": result.valid.means, "test": result.test.means},
        "n_eval_users": {"valid": int(len(result.valid.users)), "test": int(len(result.test.users))},
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "stop_reason": result.stop_reason,
        "space": space_of(model),
        "timings": {
            "setup_seconds": setup_seconds,
            "train_seconds": result.train_seconds,
            "seconds_per_epoch": result.seconds_per_epoch,
            "total_seconds": total_seconds,
            "peak_rss_mb": peak_rss_mb(),
        },
        "history": result.history,
        "code_version": version,
        "environment": environment(str(dev)),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


# ----------------------------------------------------------------------------- CLI

def parse_assignments(items: list[str]) -> dict[str, str]:
    out = {}
    for it in items or []:
        if "=" not in it:
            raise ValueError(f"--set expects key=value, got {it!r}")
        k, v = it.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def parse_per_modality(values: list[str], flag: str) -> dict[str, int]:
    """--pq-m 8 (all modalities) or --pq-m image=16 --pq-m text=4."""
    out: dict[str, int] = {}
    for v in values or []:
        for part in v.split(","):
            name, _, num = part.rpartition("=")
            try:
                out[name or "*"] = int(num)
            except ValueError:
                raise ValueError(f"{flag} expects an integer or modality=integer, got {part!r}") from None
    return out


def motor_settings_from_args(args) -> MotorSettings:
    values: dict[str, Any] = {}
    for flag, attr in (("--pq-m", "pq_m"), ("--pq-k", "pq_k")):
        for name, num in parse_per_modality(getattr(args, attr), flag).items():
            if name == "*":
                values[attr] = num
            elif name in ("image", "text"):
                values[f"{attr}_{name}"] = num
            else:
                raise ValueError(f"{flag}: unknown modality {name!r}; expected image or text")
    if args.motor_modalities:
        values["modalities"] = args.motor_modalities
    if args.tcn_hidden is not None:
        values["tcn_hidden"] = args.tcn_hidden
    if args.tcn_dropout is not None:
        values["tcn_dropout"] = args.tcn_dropout
    if args.tcn_combine:
        values["combine"] = args.tcn_combine
    if args.tcn_branches:
        on = set(args.tcn_branches.split(","))
        unknown = on - {"first", "second", "high"}
        if unknown:
            raise ValueError(f"--tcn-branches: unknown branch(es) {sorted(unknown)}; use first,second,high")
        values.update(first_order="first" in on, second_order="second" in on, high_order="high" in on)
    return MotorSettings.from_dict(values)


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="synthetic", help="baby, sports, clothing, synthetic or an MMRec folder")
    p.add_argument("--data-root", default=None, help="folder holding baby/ sports/ clothing/ (else $MOTOR_BENCH_DATA, else ./data)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--results", type=Path, default=None, help="results folder (default ./results or $MOTOR_BENCH_RESULTS)")
    p.add_argument("--cache-dir", type=Path, default=None, help="derived-artefact cache (default ./cache or $MOTOR_BENCH_CACHE)")
    p.add_argument("--protocol", default="standard", choices=("standard", "cold-start"))


def add_motor_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("MOTOR arm")
    g.add_argument("--pq-m", action="append", help="PQ sub-spaces per modality: M, or image=M / text=M")
    g.add_argument("--pq-k", action="append", help="PQ codebook size (power of two): K, or image=K / text=K")
    g.add_argument("--motor-modalities", help="comma list of modalities to tokenize (default image,text)")
    g.add_argument("--tcn-hidden", type=int, help="hidden size of the high-order MLP (default: embedding size)")
    g.add_argument("--tcn-dropout", type=float)
    g.add_argument("--tcn-branches", help="comma list of TCN branches to keep: first,second,high")
    g.add_argument("--tcn-combine", choices=("sum", "concat"))


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(p)
    p.add_argument("--backbone", help="registered backbone name (see --list)")
    p.add_argument("--arm", default="id", choices=ARMS)
    p.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    p.add_argument("--patience", type=int, default=TrainConfig.patience)
    p.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    p.add_argument("--seed", type=int, default=999)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="backbone config override")
    p.add_argument("--mask-valid-at-test", action="store_true")
    p.add_argument("--force", action="store_true", help="rerun even if the record exists")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print the run record as JSON on stdout")
    p.add_argument("--list", action="store_true", help="list registered backbones")
    add_motor_arguments(p)
    args = p.parse_args(argv)

    if args.list:
        for name, cls in registered().items():
            doc = (cls.__doc__ or sys.modules[cls.__module__].__doc__ or "").strip()
            print(f"{name:10s} {doc.splitlines()[0] if doc else ''}")
        return 0
    if not args.backbone:
        p.error("--backbone is required (see --list)")
    try:
        from benchmark.data import DataError, resolve

        spec = RunSpec(
            dataset=args.dataset, backbone=args.backbone, arm=args.arm, seed=args.seed,
            params=parse_assignments(args.set), motor=motor_settings_from_args(args),
            train=TrainConfig(epochs=args.epochs, patience=args.patience, batch_size=args.batch_size,
                              mask_valid_at_test=args.mask_valid_at_test),
            protocol=args.protocol,
        )
        spec.backbone_config()  # validate overrides before loading data
        dataset = resolve(args.dataset, data_root=args.data_root)
        setup = None
        if args.protocol == "cold-start":
            from benchmark.coldstart import cold_start_setup

            setup = cold_start_setup()
        store = RunStore(args.results or default_results())
        record = execute(spec, dataset, store, device=args.device, cache_dir=args.cache_dir or default_cache(),
                         progress=not args.no_progress, force=args.force, protocol_setup=setup)
    except (DataError, MissingFeatureError, UnknownKeyError, KeyError, ValueError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {msg}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(record, indent=2, sort_keys=True, default=str))
    else:
        print(summary(record))
    return 0


def summary(record: dict) -> str:
    lines = [f"{record['dataset']['name']} / {record['backbone']} / {record['arm']} (seed {record['seed']}, "
             f"best epoch {record['best_epoch']}, {record['epochs_run']} epochs, "
             f"{record['timings']['seconds_per_epoch']:.2f} s/epoch)"]
    for split in ("valid", "test"):
        m = record["metrics"][split]
        lines.append(f"  {split:5s} " + "  ".join(f"{k}={m[k]:.4f}" for k in REPORT_METRICS))
    s = record["space"]
    lines.append(f"  item parameters {s['item_parameters']:,}  model parameters {s['model_parameters']:,}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
