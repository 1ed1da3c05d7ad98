"""Space of one backbone in both arms, measured on the built models (no training).

    python -m benchmark.space --dataset NAME [--data-root DIR] --backbone NAME
        [--pq-m M | --pq-m image=M --pq-m text=M] [--pq-k K | --pq-k image=K ...]
        [--set key=value ...] [--seed S] [--cache-dir DIR] [--target-ratio R] [--json]

For arm ``id`` and arm ``motor`` it reports ``item_parameters`` (learnable floats of the item
representation: the ID table, or MOTOR's token table + Token Cross Network), ``item_bytes`` (fp32),
``model_parameters`` and ``model_bytes`` (the whole backbone) and ``code_bytes`` (MOTOR's fixed code
table: n_items x N codes of ceil(log2 K / 8) bytes), plus the ratios MOTOR / ID
(``item_storage_bytes`` = (item bytes + code bytes) / ID item bytes). The numbers come from
``benchmark.run.build_model`` and ``space_of``, the same code that fills run records.

``--json`` prints ``{"id": {...}, "motor": {...}, "ratio": {...}}`` (with ``--target-ratio`` also
``"grid"``: the uniform (M, K) settings whose MOTOR item parameters, by motor.space's formulas,
are at most R times the ID table's). ``synthetic-clothing`` falls back to a generated dataset of
Amazon Clothing's size (23,033 items) when benchmark.data does not know the name.
Errors (unknown dataset, missing features, bad settings) print ``error: ...`` and exit 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from benchmark.arms import ARMS, MotorSettings

SPACE_KEYS = ("item_parameters", "item_bytes", "model_parameters", "model_bytes", "code_bytes")
RATIO_KEYS = ("item_parameters", "item_bytes", "model_parameters", "model_bytes")
GRID_M = (1, 2, 4, 8, 16, 32, 64)
GRID_K = (16, 32, 64, 128, 256, 512, 1024)


def load_dataset(name: str, data_root: Optional[str] = None):
    from benchmark.data import DataError, resolve

    try:
        return resolve(name, data_root=data_root)
    except DataError:
        if name != "synthetic-clothing":
            raise
    from benchmark.synthetic import SyntheticConfig, generate

    return dataclasses.replace(generate(SyntheticConfig.clothing_sized()), name="synthetic-clothing")


def _tcn_of(encoder):
    return getattr(encoder, "tcn_config", None)


def measure(dataset, backbone: str, params: Optional[Mapping[str, Any]] = None,
            motor: Optional[MotorSettings] = None, seed: int = 999, cache_dir: Optional[Path] = None) -> dict:
    """``{"id": space, "motor": space, "ratio": ...}`` of ``backbone`` built on ``dataset``."""
    from benchmark.run import RunSpec, build_model, space_of

    motor = motor or MotorSettings()
    out: dict = {}
    for arm in ARMS:
        spec = RunSpec(dataset=dataset.name, backbone=backbone, arm=arm, seed=seed,
                       params=dict(params or {}), motor=motor)
        model = build_model(spec, dataset, cache_dir)
        space = space_of(model)
        enc = model.item_encoder
        if arm == "motor" and enc is not None and hasattr(enc, "spec"):
            from motor.space import motor_parameter_breakdown

            parts = motor_parameter_breakdown(enc.spec, enc.dim, _tcn_of(enc))
            space["token_table_parameters"] = parts["token_table"]
            space["tcn_parameters"] = parts["tcn"]
            space["pq"] = {m: {"M": M, "K": K} for m, (M, K) in enc.spec.items()}
        if enc is not None:
            space["n_items"], space["dim"] = int(enc.n_items), int(enc.dim)
        out[arm] = space
    out["ratio"] = ratios(out["id"], out["motor"])
    return out


def ratios(id_space: Mapping, motor_space: Mapping) -> dict:
    def div(a, b):
        return None if not b else a / b

    out = {k: div(motor_space[k], id_space[k]) for k in RATIO_KEYS}
    out["item_storage_bytes"] = div(motor_space["item_bytes"] + motor_space["code_bytes"],
                                    id_space["item_bytes"] + id_space["code_bytes"])
    return out


def grid_within(n_items: int, dim: int, modalities: Sequence[str], target: float, tcn=None,
                Ms: Sequence[int] = GRID_M, Ks: Sequence[int] = GRID_K,
                max_m: Optional[Mapping[str, int]] = None) -> list:
    """Uniform (M, K) settings (same for every modality) whose MOTOR item parameters are at most
    ``target`` times the ID table's ``n_items * dim`` floats, by motor.space's formulas."""
    from motor.space import id_item_parameters, motor_item_parameters

    id_params = id_item_parameters(n_items, dim)
    out = []
    for M in Ms:
        if max_m and any(M > max_m.get(m, M) for m in modalities):
            continue
        for K in Ks:
            if K > n_items:
                continue
            p = motor_item_parameters({m: (M, K) for m in modalities}, dim, tcn)
            if p <= target * id_params:
                out.append({"M": M, "K": K, "item_parameters": p, "ratio": p / id_params})
    return out


def format_report(dataset, backbone: str, report: Mapping) -> str:
    idr, mot, rat = report["id"], report["motor"], report["ratio"]
    pq = mot.get("pq") or {}
    head = (f"dataset {dataset.name}: {dataset.n_items:,} items; backbone {backbone}"
            + (f"; d = {mot['dim']}" if "dim" in mot else "")
            + ("; MOTOR PQ " + ", ".join(f"{m} M={v['M']} K={v['K']}" for m, v in pq.items()) if pq else ""))
    rows = [("", "ID", "MOTOR", "MOTOR/ID")]
    for k in SPACE_KEYS:
        r = rat.get(k)
        rows.append((k.replace("_", " "), f"{idr[k]:,}", f"{mot[k]:,}", "-" if r is None else f"{r:.4f}"))
    r = rat["item_storage_bytes"]
    rows.append(("item bytes + code bytes", f"{idr['item_bytes'] + idr['code_bytes']:,}",
                 f"{mot['item_bytes'] + mot['code_bytes']:,}", "-" if r is None else f"{r:.4f}"))
    w = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [head] + ["  ".join([row[0].ljust(w[0])] + [row[i].rjust(w[i]) for i in (1, 2, 3)]) for row in rows]
    if "token_table_parameters" in mot:
        lines.append(f"MOTOR item parameters = token table {mot['token_table_parameters']:,} "
                     f"+ Token Cross Network {mot['tcn_parameters']:,}")
    if "grid" in report:
        g = report["grid"]
        lines.append(f"uniform (M, K) with MOTOR item parameters <= {report['target_ratio']} x ID "
                     f"({len(g)} of the {len(GRID_M)}x{len(GRID_K)} grid):")
        lines += [f"  M={e['M']:<3d} K={e['K']:<5d} {e['item_parameters']:>10,}  ratio {e['ratio']:.4f}" for e in g]
    return "\n".join(lines)


def main(argv: Optional[list] = None) -> int:
    from benchmark.run import add_motor_arguments, default_cache, motor_settings_from_args, parse_assignments

    p = argparse.ArgumentParser(prog="python -m benchmark.space", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True,
                   help="baby, sports, clothing, synthetic, synthetic-clothing or an MMRec folder")
    p.add_argument("--data-root", default=None, help="folder holding baby/ sports/ clothing/")
    p.add_argument("--backbone", required=True, help="registered backbone name")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="backbone config override")
    p.add_argument("--seed", type=int, default=999, help="PQ seed (the counts do not depend on it)")
    p.add_argument("--cache-dir", type=Path, default=None, help="derived-artefact cache (default ./cache)")
    p.add_argument("--target-ratio", type=float, default=None,
                   help="also list the uniform (M, K) settings reaching this MOTOR/ID item-parameter ratio")
    p.add_argument("--json", action="store_true", help='print {"id": ..., "motor": ..., "ratio": ...}')
    add_motor_arguments(p)
    args = p.parse_args(argv)

    from backbones.base import MissingFeatureError, UnknownKeyError
    from benchmark.data import DataError

    try:
        motor = motor_settings_from_args(args)
        params = parse_assignments(args.set)
        dataset = load_dataset(args.dataset, args.data_root)
        report = measure(dataset, args.backbone, params, motor, args.seed, args.cache_dir or default_cache())
        if args.target_ratio is not None:
            from motor.tcn import TcnConfig

            mot = report["motor"]
            if "dim" not in mot:
                raise ValueError(f"{args.backbone} has no item encoder; no (M, K) grid to search")
            tcn = TcnConfig(hidden=motor.tcn_hidden or mot["dim"], dropout=motor.tcn_dropout,
                            first_order=motor.first_order, second_order=motor.second_order,
                            high_order=motor.high_order, combine=motor.combine)
            max_m = {m: f.shape[1] for m, f in dataset.features.items()}
            report["grid"] = grid_within(mot["n_items"], mot["dim"], list(motor.modalities), args.target_ratio,
                                         tcn, max_m=max_m)
            report["target_ratio"] = args.target_ratio
    except (DataError, MissingFeatureError, UnknownKeyError, KeyError, ValueError, OSError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {msg}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(format_report(dataset, args.backbone, report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
