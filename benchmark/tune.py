"""Optuna studies: one per (dataset, backbone, arm[, protocol]), shared by any number of workers.

    python -m benchmark.tune --dataset D --backbone B --arm id|motor --trials N
        [--storage URL] [--study NAME] [--data-root DIR] [--results DIR] [--cache-dir DIR]
        [--epochs E] [--patience P] [--batch-size B] [--max-seconds S] [--seed S] [--m-max M] [--k-max K]
        [--device auto|cpu|cuda] [--protocol standard|cold-start] [--search-backbone]
        [--heartbeat-interval S] [--grace-period S] [--no-wait] [--no-progress]

Search space (every parameter categorical, so any value the study proposes is a valid setting):
- arm ``motor``: per modality the dataset has, the PQ sub-space count ``motor.pq_m_<modality>``
  (divisors of the feature size within 1..64, ``--m-max``; the tokenizer could PCA-reduce to fit
  other values, but we keep exact divisors) and codebook size ``motor.pq_k_<modality>`` (powers of
  two 16..1024, ``--k-max``, at most the number of items the codebooks are fitted on: all items, or
  the warm ones under the cold-start protocol). ``--search-backbone`` adds the backbone's own grid (``backbone.<name>``).
- arm ``id``: the backbone's own grid (``Config.search_space``, MMRec's grids), same trial budget.

Objective: the best valid Recall@20 of the trial's run (early stopping state). The test metrics
are stored as a trial user attribute (``test``) and never take part in a choice. TPE is seeded
(per trial: ``seed`` mixed with the trial number, so concurrent workers do not propose the same
start-up points and a single worker is reproducible); a median pruner sees every validation.
Each completed trial writes its run record through RunStore (``role: "trial"``); the trial's user
attribute ``record_key`` names it. A pruned trial writes no record.

Budget across concurrent workers (``--trials N``: exactly N finished = COMPLETE + PRUNED trials):
1. Each worker loops. It first fails abandoned RUNNING trials: those whose heartbeat is older
   than ``--grace-period`` (Optuna's RDBStorage heartbeat, any machine), and at once those of a
   dead process on this machine (pid, process start time and pid namespace are stored with the
   trial). The configuration of such a trial (and of one stopped by Ctrl-C) is queued again
   (Optuna's WAITING trials, at most twice), so the next trial resumes it: a run whose record was
   written before the kill is reused, not repeated.
2. It counts FINISHED (complete + pruned) and RUNNING trials. FINISHED >= N: stop. FINISHED +
   RUNNING >= N: wait for the running ones (they finish, or go stale and are failed), then
   recount (``--no-wait`` stops instead). Otherwise it asks for one new trial.
3. Admission: the new trial runs only if fewer than N trials numbered below it are alive
   (RUNNING, COMPLETE or PRUNED). Trial numbers are assigned under a row lock on the study
   (Optuna's RDB storage), so every lower-numbered trial is visible when a worker checks. If two
   workers raced past step 2, the higher-numbered trial is not admitted: it is told FAIL at once
   with the user attribute ``surplus`` (no training, no record). FAIL trials are never counted,
   so the finished trials are exactly numbers 0..N-1 unless some trial failed.
4. A trial that fails by an error of its configuration (non-finite loss, out of memory) is FAIL
   and the budget refills it; other errors (missing features, bad data) stop the worker.
Resuming (rerun the command, or raise ``--trials``) therefore only adds what is missing.

The best COMPLETE trial is exported (atomically) to ``<results>/best/<dataset>/<backbone>-<arm>.json``
(``-cold-start`` before ``.json`` for that protocol); :func:`spec_from_best` turns it back into a
RunSpec. The storage defaults to ``sqlite:///<results>/studies.db``; any SQLAlchemy URL Optuna
accepts (e.g. ``postgresql://user:pw@host/db``) lets workers on several machines share a study.
A study remembers what it was created for (dataset fingerprint, training settings, search
space); resuming it with other settings is refused.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import socket
import sys
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import numpy as np
import optuna
from optuna.trial import TrialState

from backbones.base import MissingFeatureError, UnknownKeyError, get_backbone
from benchmark.arms import ARMS, MotorSettings
from benchmark.dataset import Dataset
from benchmark.run import RunSpec, default_cache, default_results, execute
from benchmark.store import RunStore, atomic_write_json
from benchmark.train import Pruned, TrainConfig

OBJECTIVE = "recall@20"
M_MAX = 64  # PQ sub-spaces per modality: divisors of the feature size in 1..M_MAX
K_CHOICES = tuple(2**b for b in range(4, 11))  # 16 .. 1024 centroids
BACKBONE_PREFIX, MOTOR_PREFIX = "backbone.", "motor."
SCHEMA = 1


def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # we print our own trial lines
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


class TuneError(ValueError):
    """A study cannot be run as asked (nothing to tune, mismatched study, bad settings)."""


# ----------------------------------------------------------------------------- search space


def divisors(d: int, hi: int = M_MAX) -> tuple[int, ...]:
    return tuple(m for m in range(1, min(hi, d) + 1) if d % m == 0)


def k_choices(n_fit: int, hi: int = K_CHOICES[-1]) -> tuple[int, ...]:
    """Powers of two 16..``hi`` not above ``n_fit``; with fewer than 16 items the largest power <= n_fit."""
    ks = tuple(k for k in K_CHOICES if k <= min(n_fit, hi))
    if ks:
        return ks
    if n_fit < 2:
        raise TuneError(f"PQ needs at least 2 items to fit codebooks on, got {n_fit}")
    return (2 ** int(math.log2(n_fit)),)


def motor_modalities(dataset: Dataset, base: MotorSettings = MotorSettings()) -> tuple[str, ...]:
    mods = tuple(m for m in base.modalities if m in dataset.features)
    if not mods:
        have = ", ".join(sorted(dataset.features)) or "none"
        raise MissingFeatureError(
            f"the MOTOR arm needs {' or '.join(base.modalities)} features, but dataset "
            f"{dataset.name!r} has {have}"
        )
    return mods


def search_space(dataset: Dataset, backbone: str, arm: str, search_backbone: bool = False,
                 n_fit: Optional[int] = None, m_max: int = M_MAX, k_max: int = K_CHOICES[-1]) -> dict[str, tuple]:
    """Parameter name -> candidate values (all categorical); ``n_fit``: items the codebooks are fit on."""
    cls = get_backbone(backbone)
    space: dict[str, tuple] = {}
    if arm == "motor":
        if not cls.uses_item_encoder:
            raise TuneError(f"{backbone} has no item encoder, so it has no MOTOR arm")
        n_fit = dataset.n_items if n_fit is None else n_fit
        for m in motor_modalities(dataset):
            space[f"{MOTOR_PREFIX}pq_m_{m}"] = divisors(int(dataset.features[m].shape[1]), m_max)
            space[f"{MOTOR_PREFIX}pq_k_{m}"] = k_choices(min(n_fit, dataset.n_items), k_max)
    if arm == "id" or search_backbone:
        for name, choices in cls.Config.search_space.items():
            space[f"{BACKBONE_PREFIX}{name}"] = tuple(choices)
    if not space:
        why = "it is not trainable" if not cls.trainable else "its Config.search_space is empty"
        raise TuneError(f"{backbone} (arm {arm}): nothing to tune ({why})")
    if not cls.trainable:
        raise TuneError(f"{backbone} is not trainable; nothing to tune")
    return space


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def suggest(trial, space: Mapping[str, tuple]) -> dict[str, Any]:
    """Sample every parameter; values Optuna cannot store (tuples, ...) are picked by index."""
    out = {}
    for name, choices in space.items():
        if all(_plain(c) for c in choices):
            out[name] = trial.suggest_categorical(name, list(choices))
        else:
            out[name] = choices[trial.suggest_categorical(name + "#", list(range(len(choices))))]
    return out


def split_params(values: Mapping[str, Any], dataset: Dataset, arm: str) -> tuple[dict, MotorSettings]:
    """Sampled values -> (backbone overrides, MotorSettings)."""
    params = {k[len(BACKBONE_PREFIX):]: v for k, v in values.items() if k.startswith(BACKBONE_PREFIX)}
    motor = MotorSettings()
    if arm == "motor":
        mv = {k[len(MOTOR_PREFIX):]: v for k, v in values.items() if k.startswith(MOTOR_PREFIX)}
        motor = MotorSettings.from_dict({**mv, "modalities": motor_modalities(dataset)})
    return params, motor


def values_of(frozen_trial, space: Mapping[str, tuple]) -> dict[str, Any]:
    out = {}
    for name, choices in space.items():
        if name in frozen_trial.params:
            out[name] = frozen_trial.params[name]
        elif name + "#" in frozen_trial.params:
            out[name] = choices[frozen_trial.params[name + "#"]]
    return out


# ----------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class TuneSettings:
    backbone: str
    arm: str
    trials: int
    seed: int = 999
    train: TrainConfig = field(default_factory=TrainConfig)
    protocol: str = "standard"
    search_backbone: bool = False
    m_max: int = M_MAX  # largest PQ sub-space count searched
    k_max: int = K_CHOICES[-1]  # largest codebook size searched
    study: Optional[str] = None  # default: <dataset>-<backbone>-<arm>[-cold-start]
    storage: Optional[str] = None  # default: sqlite:///<results>/studies.db
    heartbeat_interval: int = 15
    grace_period: int = 120
    pruner_startup_trials: int = 5
    pruner_warmup_steps: int = 10
    max_failures: Optional[int] = None  # per worker; default max(3, trials)
    wait: bool = True
    poll_seconds: float = 2.0

    def __post_init__(self):
        if self.arm not in ARMS:
            raise TuneError(f"unknown arm {self.arm!r}; expected one of {', '.join(ARMS)}")
        if self.trials < 1:
            raise TuneError(f"--trials must be at least 1, got {self.trials}")
        if self.protocol not in ("standard", "cold-start"):
            raise TuneError(f"unknown protocol {self.protocol!r}; expected standard or cold-start")
        if self.grace_period <= self.heartbeat_interval:
            raise TuneError("--grace-period must be longer than --heartbeat-interval")


def suffix(protocol: str) -> str:
    return "" if protocol == "standard" else f"-{protocol}"


def study_name(dataset: str, backbone: str, arm: str, protocol: str = "standard") -> str:
    return f"{dataset}-{backbone}-{arm}{suffix(protocol)}"


def best_path(results: Path, dataset: str, backbone: str, arm: str, protocol: str = "standard") -> Path:
    return Path(results) / "best" / dataset / f"{backbone}-{arm}{suffix(protocol)}.json"


def default_storage(results: Path) -> str:
    return f"sqlite:///{(Path(results) / 'studies.db').resolve()}"


def protocol_setup(protocol: str, role: str) -> Callable[[Dataset], tuple]:
    """execute()'s protocol hook; its ``extra`` dict also tags the record with ``role``."""
    if protocol == "cold-start":
        from benchmark.coldstart import cold_start_setup

        cold = cold_start_setup()

        def setup(dataset):
            train, target, fit_items, extra = cold(dataset)
            return train, target, fit_items, {**extra, "role": role}

        return setup
    return lambda dataset: (dataset, None, None, {"role": role})


def n_fit_items(dataset: Dataset, protocol: str) -> int:
    if protocol == "standard":
        return dataset.n_items
    _, _, fit, _ = protocol_setup(protocol, "trial")(dataset)
    if fit is None:
        return dataset.n_items
    fit = np.asarray(fit)
    return int(fit.sum()) if fit.dtype == bool else int(fit.size)


def mask_url(url: str) -> str:
    """The storage URL without its password (safe to print and to write into results)."""
    if "://" not in url or "@" not in url.split("://", 1)[1]:
        return url
    scheme, rest = url.split("://", 1)
    cred, host = rest.rsplit("@", 1)
    user = cred.split(":", 1)[0]
    return f"{scheme}://{user}{':***' if ':' in cred else ''}@{host}"


# ----------------------------------------------------------------------------- optuna plumbing


def driver_url(url: str) -> str:
    """``postgresql://`` with the driver that is installed: SQLAlchemy 2.1 assumes psycopg 3 there,
    while the ``postgres`` extra installs psycopg2-binary."""
    import importlib.util

    scheme, sep, rest = url.partition("://")
    if scheme in ("postgresql", "postgres") and sep:
        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
            return f"postgresql+psycopg2://{rest}"
    return url


def make_storage(url: str, heartbeat_interval: int, grace_period: int):
    _quiet_optuna()
    url = driver_url(url)
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs["connect_args"] = {"timeout": 300}  # several workers wait for the file lock
    else:
        engine_kwargs["pool_pre_ping"] = True
    import sqlalchemy.exc

    for attempt in range(6):  # workers creating a fresh database at once race on its schema stamp
        try:
            return optuna.storages.RDBStorage(
                url, engine_kwargs=dict(engine_kwargs), heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=lambda study, trial: retry_interrupted(study, trial))
        except ImportError as e:
            raise TuneError(f"storage {mask_url(url)}: {e} (PostgreSQL: pip install psycopg2-binary)") from None
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError):
            if attempt == 5:
                raise
            time.sleep(0.2 + random.random())


class TrialSeededTPE(optuna.samplers.BaseSampler):
    """TPE whose random state is (seed, trial number): reproducible for one worker, and concurrent
    workers sharing a seed do not propose the same start-up configurations."""

    def __init__(self, seed: int, **tpe_kwargs):
        self.seed, self.tpe_kwargs = seed, tpe_kwargs
        self._inner = optuna.samplers.TPESampler(seed=seed, **tpe_kwargs)

    def before_trial(self, study, trial):
        mixed = (self.seed * 1_000_003 + trial.number) % 2**32
        self._inner = optuna.samplers.TPESampler(seed=mixed, **self.tpe_kwargs)
        self._inner.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values):
        self._inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:  # each trial already gets its own seed
        pass


# ----------------------------------------------------------------------------- worker liveness


def _machine_token() -> Optional[str]:
    """Same kernel boot and pid namespace => pids are comparable (None off Linux)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        ns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None
    return f"{socket.gethostname()}/{boot}/{ns}"


def _start_time(pid: int) -> Optional[str]:
    """The process's start time (clock ticks since boot), None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


def worker_identity() -> dict:
    return {"host": socket.gethostname(), "machine": _machine_token(), "pid": os.getpid(),
            "start": _start_time(os.getpid())}


def _dead_local_worker(attrs: Mapping[str, Any], me: dict) -> bool:
    w = attrs.get("worker")
    if not isinstance(w, dict) or me["machine"] is None or w.get("machine") != me["machine"]:
        return False
    if w.get("pid") == me["pid"]:
        return False
    return _start_time(int(w["pid"])) != w.get("start")


# ----------------------------------------------------------------------------- tuning


@dataclass
class TuneOutcome:
    study: str
    storage: str
    finished: int
    requested: int
    ran: int  # trials this call ran to the end (complete or pruned)
    before: int  # finished trials when this call started
    best: Optional[dict]
    best_path: Optional[Path]
    seconds: float


def _identity(dataset: Dataset, s: TuneSettings, space: Mapping[str, tuple]) -> dict:
    return json.loads(json.dumps({
        "dataset": dataset.name,
        "dataset_fingerprint": dataset.fingerprint,
        "backbone": s.backbone,
        "arm": s.arm,
        "protocol": s.protocol,
        "seed": s.seed,
        "train": dataclasses.asdict(s.train),
        "search_space": {k: list(v) for k, v in space.items()},
    }, default=str))


def _check_identity(study, want: dict, name: str) -> None:
    have = study.user_attrs
    for key, value in want.items():
        if key not in have:
            study.set_user_attr(key, value)
        elif have[key] != value:
            raise TuneError(
                f"study {name!r} was created with {key}={json.dumps(have[key])[:200]}, now "
                f"{json.dumps(value)[:200]}; pass --study NEW_NAME (or another --results/--storage) "
                "to start a separate study"
            )


def _counts(study) -> tuple[int, int]:
    finished = running = 0
    for t in study.get_trials(deepcopy=False):
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
            finished += 1
        elif t.state == TrialState.RUNNING:
            running += 1
    return finished, running


MAX_RETRIES = 2


def retry_interrupted(study, trial) -> bool:
    """Queue the configuration of an interrupted trial (worker killed, stale, Ctrl-C) again.

    The next trial of any worker takes it (Optuna's WAITING queue), so resuming continues with the
    same configuration: if its run had finished, the record is reused and nothing is repeated.
    """
    retries = int(trial.user_attrs.get("retries", 0))
    if not trial.params or trial.user_attrs.get("surplus") or retries >= MAX_RETRIES:
        return False
    study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number, "retries": retries + 1})
    return True


def _reap(study, me: dict, log) -> None:
    """Fail stale RUNNING trials (heartbeat, any machine; the storage's callback requeues them) and
    at once those of dead processes on this machine, requeueing their configurations."""
    optuna.storages.fail_stale_trials(study)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if _dead_local_worker(t.user_attrs, me):
            try:
                study.tell(t.number, state=TrialState.FAIL)
            except (ValueError, RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
                continue  # another worker got there first
            again = retry_interrupted(study, t)
            log(f"  trial {t.number}: its worker (pid {t.user_attrs['worker']['pid']}) is gone; marked FAIL"
                + ("; its configuration is queued again" if again else ""))


class _Surplus(Exception):
    pass


def _trial(study, number: int):
    return next(t for t in study.get_trials(deepcopy=False) if t.number == number)


def tune(dataset: Dataset, s: TuneSettings, results: Path, cache_dir: Optional[Path] = None,
         device: str = "auto", progress: bool = False, log: Callable[[str], None] | None = None,
         pruner=None) -> TuneOutcome:
    """Run this worker's share of the study (see the module docstring) and export the best trial."""
    _quiet_optuna()
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    t_start = time.perf_counter()
    results = Path(results)
    cache_dir = default_cache() if cache_dir is None else cache_dir
    for m in get_backbone(s.backbone).modalities:
        if m not in dataset.features:
            dataset.to_input().feature(m, s.backbone)  # raises the standard MissingFeatureError
    space = search_space(dataset, s.backbone, s.arm, s.search_backbone,
                         n_fit_items(dataset, s.protocol) if s.arm == "motor" else None, s.m_max, s.k_max)
    name = s.study or study_name(dataset.name, s.backbone, s.arm, s.protocol)
    url = s.storage or default_storage(results)
    storage = make_storage(url, s.heartbeat_interval, s.grace_period)
    study = optuna.create_study(
        study_name=name, storage=storage, direction="maximize", load_if_exists=True,
        sampler=TrialSeededTPE(s.seed, constant_liar=True),
        pruner=pruner or optuna.pruners.MedianPruner(n_startup_trials=s.pruner_startup_trials,
                                                     n_warmup_steps=s.pruner_warmup_steps),
    )
    _check_identity(study, _identity(dataset, s, space), name)

    store = RunStore(results)
    setup = protocol_setup(s.protocol, "trial")
    me = worker_identity()
    n = s.trials
    max_failures = s.max_failures if s.max_failures is not None else max(3, n)

    last_error: list[str] = []
    current: list[int] = []

    def objective(trial):
        current[:] = [trial.number]
        try:
            return _objective(trial)
        except BaseException as e:
            last_error[:] = [f"{type(e).__name__}: {e}"]
            raise

    def _objective(trial):
        trial.set_user_attr("worker", me)
        alive = study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.COMPLETE,
                                                         TrialState.PRUNED))
        if sum(1 for t in alive if t.number < trial.number) >= n:
            trial.set_user_attr("surplus", True)
            raise _Surplus(f"trial {trial.number} is over the budget of {n}")
        params, motor = split_params(suggest(trial, space), dataset, s.arm)
        spec = RunSpec(dataset=dataset.name, backbone=s.backbone, arm=s.arm, seed=s.seed, params=params,
                       motor=motor, train=s.train, protocol=s.protocol)
        key = spec.key(dataset.fingerprint)
        trial.set_user_attr("record_key", key)
        trial.set_user_attr("reused_record", store.find(dataset.name, s.backbone, key) is not None)

        def on_epoch(epoch: int, valid: float) -> None:
            trial.report(valid, epoch)
            if trial.should_prune():
                raise Pruned(f"pruned at epoch {epoch} (valid {OBJECTIVE} {valid:.4f})")

        t0 = time.perf_counter()
        try:
            record = execute(spec, dataset, store, device=device, cache_dir=cache_dir, progress=progress,
                             on_epoch=on_epoch, protocol_setup=setup)
        except Pruned as e:  # raised before execute() writes anything: no record
            trial.set_user_attr("seconds", time.perf_counter() - t0)
            raise optuna.TrialPruned(str(e)) from None
        trial.set_user_attr("seconds", time.perf_counter() - t0)
        trial.set_user_attr("config_hash", record["config_hash"])
        trial.set_user_attr("valid", record["metrics"]["valid"])
        trial.set_user_attr("test", record["metrics"]["test"])  # kept for reports, never chosen on
        trial.set_user_attr("best_epoch", record["best_epoch"])
        return float(record["metrics"]["valid"][OBJECTIVE])

    import torch

    catch = (FloatingPointError, _Surplus, getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError))
    before = _counts(study)[0]
    ran = failures = 0
    waiting_said = False
    while True:
        _reap(study, me, log)
        finished, running = _counts(study)
        if finished >= n:
            break
        if finished + running >= n:
            if not s.wait:
                log(f"  {name}: {running} trial(s) still running elsewhere; not waiting (--no-wait)")
                break
            if not waiting_said:
                log(f"  {name}: waiting for {running} trial(s) running in other workers")
                waiting_said = True
            time.sleep(s.poll_seconds)
            continue
        waiting_said = False
        if failures >= max_failures:
            log(f"  {name}: {failures} failed trial(s) in this worker; stopping with {finished}/{n} finished")
            break
        t0 = time.perf_counter()
        last_error.clear()
        current.clear()
        try:
            study.optimize(objective, n_trials=1, catch=catch, gc_after_trial=False)
        except KeyboardInterrupt:  # optuna has marked the trial FAIL; resume with its configuration
            if current:
                retry_interrupted(study, _trial(study, current[0]))
            raise
        if not current:
            continue
        t = _trial(study, current[0])
        if t.state == TrialState.FAIL:
            if not t.user_attrs.get("surplus"):
                failures += 1
                log(f"  trial {t.number}: FAILED ({(last_error or ['unknown error'])[0][:300]})")
            continue
        ran += 1
        shown = ", ".join(f"{k.split('.', 1)[1]}={v}" for k, v in values_of(t, space).items())
        if t.state == TrialState.COMPLETE:
            reused = " (record reused)" if t.user_attrs.get("reused_record") else ""
            log(f"  trial {t.number} [{_counts(study)[0]}/{n}]: valid {OBJECTIVE}={t.value:.4f} "
                f"test {OBJECTIVE}={t.user_attrs['test'][OBJECTIVE]:.4f} "
                f"({time.perf_counter() - t0:.1f}s){reused}  {shown}")
        else:
            log(f"  trial {t.number} [{_counts(study)[0]}/{n}]: pruned after "
                f"{len(t.intermediate_values)} validation(s) ({time.perf_counter() - t0:.1f}s)  {shown}")

    finished = _counts(study)[0]
    best, path = export_best(study, dataset, s, space, results, url)
    return TuneOutcome(name, mask_url(url), finished, n, ran, before, best, path,
                       time.perf_counter() - t_start)


def export_best(study, dataset: Dataset, s: TuneSettings, space: Mapping[str, tuple], results: Path,
                url: str) -> tuple[Optional[dict], Optional[Path]]:
    """Write the best COMPLETE trial as the config the reproduce step reads (None if none)."""
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        return None, None
    best_trial = max(complete, key=lambda t: (t.value, -t.number))  # ties: the earliest trial
    params, motor = split_params(values_of(best_trial, space), dataset, s.arm)
    best = {
        "schema": SCHEMA,
        "dataset": dataset.name,
        "dataset_fingerprint": dataset.fingerprint,
        "backbone": s.backbone,
        "arm": s.arm,
        "protocol": s.protocol,
        "seed": s.seed,
        "params": params,
        "motor": motor.to_dict() if s.arm == "motor" else None,
        "train": dataclasses.asdict(s.train),
        "objective": f"valid {OBJECTIVE}",
        "value": best_trial.value,
        "trial": best_trial.number,
        "record_key": best_trial.user_attrs.get("record_key"),
        "config_hash": best_trial.user_attrs.get("config_hash"),
        "test": best_trial.user_attrs.get("test"),
        "study": study.study_name,
        "storage": mask_url(url),
        "trials": {
            "requested": s.trials,
            "complete": len(complete),
            "pruned": sum(t.state == TrialState.PRUNED for t in trials),
            "failed": sum(t.state == TrialState.FAIL for t in trials),
        },
        "search_space": {k: list(v) for k, v in space.items()},
        "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    path = best_path(results, dataset.name, s.backbone, s.arm, s.protocol)
    atomic_write_json(path, best)
    return best, path


def load_best(path: Path) -> dict:
    try:
        best = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise TuneError(f"{path}: no exported best configuration (run benchmark.tune first)") from None
    except json.JSONDecodeError as e:
        raise TuneError(f"{path} line {e.lineno}: not valid JSON ({e.msg})") from None
    for key in ("dataset", "backbone", "arm", "params", "train"):
        if key not in best:
            raise TuneError(f"{path}: field {key!r} is missing")
    return best


def spec_from_best(best: Mapping[str, Any], seed: int) -> RunSpec:
    """The RunSpec of an exported best configuration, for ``seed``."""
    motor = MotorSettings.from_dict(best["motor"]) if best.get("motor") else MotorSettings()
    return RunSpec(dataset=best["dataset"], backbone=best["backbone"], arm=best["arm"], seed=seed,
                   params=dict(best["params"]), motor=motor, train=TrainConfig(**best["train"]),
                   protocol=best.get("protocol", "standard"))


# ----------------------------------------------------------------------------- CLI


def main(argv: Optional[list[str]] = None) -> int:
    from benchmark.run import add_common_arguments

    p = argparse.ArgumentParser(prog="python -m benchmark.tune", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(p)
    p.add_argument("--backbone", required=True, help="registered backbone name")
    p.add_argument("--arm", required=True, choices=ARMS)
    p.add_argument("--trials", type=int, required=True, help="finished trials the study should end with")
    p.add_argument("--storage", default=None, help="Optuna RDB URL (default sqlite:///<results>/studies.db)")
    p.add_argument("--study", default=None, help="study name (default <dataset>-<backbone>-<arm>[-cold-start])")
    p.add_argument("--search-backbone", action="store_true",
                   help="MOTOR arm: also search the backbone's own hyper-parameters")
    p.add_argument("--m-max", type=int, default=M_MAX, help="largest PQ sub-space count M searched")
    p.add_argument("--k-max", type=int, default=K_CHOICES[-1], help="largest PQ codebook size K searched")
    p.add_argument("--seed", type=int, default=999, help="run seed of every trial and TPE seed")
    p.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    p.add_argument("--patience", type=int, default=TrainConfig.patience)
    p.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    p.add_argument("--max-seconds", type=float, default=None, help="training time budget per trial")
    p.add_argument("--heartbeat-interval", type=int, default=TuneSettings.heartbeat_interval)
    p.add_argument("--grace-period", type=int, default=TuneSettings.grace_period,
                   help="seconds without heartbeat after which a RUNNING trial is failed")
    p.add_argument("--no-wait", action="store_true",
                   help="stop when the budget is covered by running trials instead of waiting for them")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    try:
        from benchmark.data import DataError, resolve

        s = TuneSettings(
            backbone=args.backbone, arm=args.arm, trials=args.trials, seed=args.seed,
            train=TrainConfig(epochs=args.epochs, patience=args.patience, batch_size=args.batch_size,
                              max_seconds=args.max_seconds),
            protocol=args.protocol, search_backbone=args.search_backbone, m_max=args.m_max, k_max=args.k_max,
            study=args.study,
            storage=args.storage, heartbeat_interval=args.heartbeat_interval,
            grace_period=args.grace_period, wait=not args.no_wait,
        )
        get_backbone(s.backbone)
        dataset = resolve(args.dataset, data_root=args.data_root)
        out = tune(dataset, s, args.results or default_results(), args.cache_dir, device=args.device,
                   progress=not args.no_progress and sys.stderr.isatty())
    except KeyboardInterrupt:
        print("\ninterrupted: finished trials are kept; rerun the same command to add the missing ones",
              file=sys.stderr)
        return 130
    except (DataError, MissingFeatureError, UnknownKeyError, TuneError, KeyError, ValueError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {msg}", file=sys.stderr)
        return 2
    print(f"study {out.study} ({out.storage}): {out.finished}/{out.requested} finished trials "
          f"({out.before} before, {out.ran} run now, {out.seconds:.1f}s)")
    if out.best is not None:
        b = out.best
        motor = f" motor (M, K)={MotorSettings.from_dict(b['motor']).spec()}" if b["motor"] else ""
        print(f"best: trial {b['trial']} valid {OBJECTIVE}={b['value']:.4f} params={b['params']}{motor}"
              f" -> {out.best_path}")
    return 0 if out.finished >= out.requested else 1


if __name__ == "__main__":
    sys.exit(main())
