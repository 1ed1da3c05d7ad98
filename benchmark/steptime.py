"""Time the training step of one backbone: forward (loss) and backward + optimiser step.

    python -m benchmark.steptime --dataset baby --data-root ../shared/datasets --backbone mmgcn \
        [--arm motor] [--steps 10] [--warmup 2] [--batch-size 2048] [--set key=value ...]

Prints the median seconds of each part over ``--steps`` batches after ``--warmup`` untimed ones,
the implied seconds per epoch (median step x batches per epoch, no evaluation) and the
process's peak RSS. For comparing implementations on one machine; a figure, not a test.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Optional

import torch

from backbones.base import Batch
from benchmark.run import RunSpec, add_motor_arguments, build_model, default_cache, motor_settings_from_args, parse_assignments
from benchmark.sampling import PairSampler
from benchmark.seeding import resolve_device, seed_everything
from benchmark.store import peak_rss_mb
from benchmark.train import make_optimizer


def time_steps(model, dataset, batch_size: int, steps: int, warmup: int, device, rng) -> dict:
    sampler = PairSampler(dataset.train, batch_size, rng)
    opt = make_optimizer(model)
    model.to(device).train()
    model.on_epoch_start(0)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    fwd, bwd = [], []
    batches = sampler.epoch()
    for i in range(warmup + steps):
        try:
            u, p, q = next(batches)
        except StopIteration:
            batches = sampler.epoch()
            u, p, q = next(batches)
        batch = Batch.from_numpy(u, p, q, device)
        sync()
        t0 = time.perf_counter()
        loss = model.loss(batch)
        sync()
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync()
        t2 = time.perf_counter()
        if i >= warmup:
            fwd.append(t1 - t0)
            bwd.append(t2 - t1)
    f, b = statistics.median(fwd), statistics.median(bwd)
    return {"forward_s": f, "backward_step_s": b, "step_s": f + b, "batches_per_epoch": len(sampler),
            "epoch_s_estimate": (f + b) * len(sampler), "steps": steps, "peak_rss_mb": peak_rss_mb()}


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.steptime", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--data-root", default=None)
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--backbone", required=True)
    p.add_argument("--arm", default="id", choices=("id", "motor"))
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=2048)
    p.add_argument("--seed", type=int, default=999)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json", action="store_true")
    add_motor_arguments(p)
    args = p.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.batch_size < 1:
        p.error("--steps and --batch-size must be >= 1, --warmup >= 0")
    from benchmark.data import DataError, resolve

    try:
        spec = RunSpec(dataset=args.dataset, backbone=args.backbone, arm=args.arm, seed=args.seed,
                       params=parse_assignments(args.set), motor=motor_settings_from_args(args))
        spec.backbone_config()
        dataset = resolve(args.dataset, data_root=args.data_root)
    except (DataError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rng = seed_everything(spec.seed)
    model = build_model(spec, dataset, Path(args.cache_dir) if args.cache_dir else default_cache())
    if not any(p.requires_grad for p in model.parameters()):
        print(f"error: {args.backbone} has nothing to train", file=sys.stderr)
        return 2
    out = time_steps(model, dataset, args.batch_size, args.steps, args.warmup, resolve_device(args.device), rng)
    out.update(backbone=args.backbone, arm=args.arm, dataset=dataset.name, threads=torch.get_num_threads())
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{args.backbone}/{args.arm} on {dataset.name}: forward {out['forward_s']:.3f} s, "
              f"backward+step {out['backward_step_s']:.3f} s per {args.batch_size}-pair batch (median of "
              f"{args.steps}); ~{out['epoch_s_estimate']:.1f} s per epoch of {out['batches_per_epoch']} "
              f"batches without evaluation; peak RSS {out['peak_rss_mb']:.0f} MiB; {out['threads']} threads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
