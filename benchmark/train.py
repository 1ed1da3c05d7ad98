"""Training: BPR batches, Adam, early stopping on valid Recall@20, best state, one test read.

Validation is evaluated every ``eval_every`` epochs; test is evaluated exactly once, for the
best-validation state, after training stops (the usual toolbox scores test every epoch).
"""
from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from backbones.base import Backbone, Batch
from benchmark.dataset import Dataset
from benchmark.evaluate import DEFAULT_KS, EvalResult, evaluate
from benchmark.sampling import PairSampler


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 1000
    batch_size: int = 2048
    patience: int = 20  # evaluations without a better valid metric before stopping
    eval_every: int = 1
    valid_metric: str = "recall@20"
    eval_batch_size: int = 4096
    mask_valid_at_test: bool = False
    max_seconds: Optional[float] = None  # wall-clock budget for the training loop

    def __post_init__(self):
        if self.epochs < 0 or self.batch_size < 1 or self.patience < 1 or self.eval_every < 1:
            raise ValueError(f"invalid training settings: {self}")


class Pruned(Exception):
    """Raised by an epoch callback to stop a run early (Optuna pruning)."""


@dataclass
class TrainResult:
    best_epoch: int
    valid: EvalResult
    test: EvalResult
    history: list[dict] = field(default_factory=list)
    epochs_run: int = 0
    train_seconds: float = 0.0
    stop_reason: str = ""

    @property
    def seconds_per_epoch(self) -> float:
        times = [h["seconds"] for h in self.history if "seconds" in h]
        return float(np.mean(times)) if times else 0.0


def _scorer(model: Backbone):
    model.eval()
    return model.scorer()


def evaluate_model(model: Backbone, dataset: Dataset, split: str, cfg: TrainConfig, device,
                   target=None, candidates=None) -> EvalResult:
    masks = [dataset.train]
    if split == "test" and cfg.mask_valid_at_test:
        masks.append(dataset.valid)
    was_training = model.training
    with torch.no_grad():
        scorer = _scorer(model)
        result = evaluate(scorer, dataset.split(split) if target is None else target, masks,
                          ks=DEFAULT_KS, batch_size=cfg.eval_batch_size, device=device,
                          candidates=candidates)
    model.train(was_training)
    return result


def make_optimizer(model: Backbone) -> torch.optim.Optimizer:
    c = model.config
    return torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad],
        lr=c.learning_rate,
        weight_decay=getattr(c, "weight_decay", 0.0),
    )


def train(
    model: Backbone,
    dataset: Dataset,
    cfg: TrainConfig,
    rng: np.random.Generator,
    device: torch.device,
    progress: bool = True,
    on_epoch: Optional[Callable[[int, float], None]] = None,
    eval_target: Optional[dict] = None,
) -> TrainResult:
    """Train ``model`` and return best-validation metrics plus the single test evaluation.

    ``on_epoch(epoch, valid_metric)`` is called after each validation (raise Pruned to stop).
    ``eval_target`` optionally overrides what valid/test rank (cold-start protocol):
    {"valid": csr, "test": csr, "candidates": array or None, "negative_pool": array or None}.
    """
    model.to(device)
    tgt = eval_target or {}
    cand = tgt.get("candidates")

    def run_eval(split: str) -> EvalResult:
        return evaluate_model(model, dataset, split, cfg, device, tgt.get(split), cand)

    history: list[dict] = []
    t0 = time.perf_counter()
    if not model.trainable or cfg.epochs == 0:
        best_valid = run_eval("valid")
        test = run_eval("test")
        return TrainResult(0, best_valid, test, history, 0, time.perf_counter() - t0, "not trainable")

    sampler = PairSampler(dataset.train, cfg.batch_size, rng, negative_pool=tgt.get("negative_pool"))
    opt = make_optimizer(model)
    c = model.config
    decay, step = getattr(c, "lr_decay", 1.0), getattr(c, "lr_decay_step", 50)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: decay ** (e / step))
    best_metric, best_epoch, best_state, best_valid = -math.inf, -1, None, None
    since_best, stop_reason = 0, "max epochs"
    bar = tqdm(range(cfg.epochs), disable=not progress, file=sys.stderr, desc=model.name, leave=False)
    for epoch in bar:
        e0 = time.perf_counter()
        model.train()
        model.on_epoch_start(epoch)
        total, n = 0.0, 0
        for u, p, q in sampler.epoch():
            batch = Batch.from_numpy(u, p, q, device)
            loss = model.loss(batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{model.name}: loss became {loss.item()} at epoch {epoch}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
            n += 1
        sched.step()
        row = {"epoch": epoch, "loss": total / max(n, 1), "train_seconds": time.perf_counter() - e0}
        if (epoch + 1) % cfg.eval_every == 0 or epoch == cfg.epochs - 1:
            valid = run_eval("valid")
            metric = valid.means[cfg.valid_metric]
            row["valid"] = metric
            if metric > best_metric:
                best_metric, best_epoch, best_valid, since_best = metric, epoch, valid, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                since_best += 1
        row["seconds"] = time.perf_counter() - e0
        history.append(row)
        bar.set_postfix(loss=f"{row['loss']:.4f}", valid=f"{row.get('valid', float('nan')):.4f}",
                        best=f"{best_metric:.4f}", s_ep=f"{row['seconds']:.2f}")
        if on_epoch is not None and "valid" in row:
            on_epoch(epoch, row["valid"])
        if since_best >= cfg.patience:
            stop_reason = f"early stop: no better valid {cfg.valid_metric} in {cfg.patience} evaluations"
            break
        if cfg.max_seconds is not None and time.perf_counter() - t0 > cfg.max_seconds:
            stop_reason = f"time budget of {cfg.max_seconds:.0f}s reached"
            break
    bar.close()
    train_seconds = time.perf_counter() - t0
    if best_state is not None:
        model.load_state_dict(best_state)
    test = run_eval("test")  # read once, for the chosen state
    return TrainResult(best_epoch, best_valid, test, history, len(history), train_seconds, stop_reason)


def config_dict(cfg: TrainConfig) -> dict:
    return asdict(cfg)
