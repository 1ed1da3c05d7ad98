"""Loading, validating, writing and resolving datasets in MMRec format.

An MMRec folder ``<dir>/`` holds ``<name>.inter`` (tab separated, header with at least
``userID``, ``itemID`` and ``x_label``; 0 = train, 1 = valid, 2 = test) and optionally
``image_feat.npy`` / ``text_feat.npy`` whose row i belongs to itemID i.

CLI::

    python -m benchmark.data stats NAME_OR_DIR [--data-root DIR] [--json]
    python -m benchmark.data build-amazon ...   (see benchmark.amazon)
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import importlib
import io
import json
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Mapping, Optional

import numpy as np
import pandas as pd
import scipy.sparse as sp

from benchmark.dataset import Dataset
from benchmark.splits import TEST, TRAIN, VALID, users_without_train

REQUIRED_COLUMNS = ("userID", "itemID", "x_label")
MODALITIES = ("image", "text")
REAL_DATASETS = ("baby", "sports", "clothing")
SYNTHETIC_DATASETS = ("synthetic", "synthetic-clothing")  # generated, never read from disk
DATA_ROOT_ENV = "MOTOR_BENCH_DATA"
SPLIT_NAMES = {TRAIN: "train", VALID: "valid", TEST: "test"}


class DataError(ValueError):
    """Bad or missing input data; the message is one line naming the file and the problem."""


class DataWarning(UserWarning):
    """Data was changed while loading (e.g. rows dropped by MMRec's rule)."""


def feature_file(modality: str) -> str:
    return f"{modality}_feat.npy"


# --------------------------------------------------------------------------- building


def build_dataset(
    name: str,
    users: np.ndarray,
    items: np.ndarray,
    labels: np.ndarray,
    n_users: int,
    n_items: int,
    features: Optional[Mapping[str, np.ndarray]] = None,
    source: str = "",
) -> Dataset:
    """A Dataset from one row per interaction (user, item, x_label); splits become binary CSR."""
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    labels = np.asarray(labels)

    def csr(mask: np.ndarray) -> sp.csr_matrix:
        m = sp.csr_matrix(
            (np.ones(int(mask.sum()), dtype=np.float32), (users[mask], items[mask])),
            shape=(n_users, n_items),
        )
        m.sort_indices()
        return m

    return Dataset(
        name=name,
        n_users=int(n_users),
        n_items=int(n_items),
        train=csr(labels == TRAIN),
        valid=csr(labels == VALID),
        test=csr(labels == TEST),
        features=dict(features or {}),
        source=source,
    )


# --------------------------------------------------------------------------- loading


def _check_header(path: Path, data: bytes) -> None:
    try:
        header = data.split(b"\n", 1)[0].decode("utf-8").rstrip("\r")
    except UnicodeDecodeError:
        raise DataError(f"{path} line 1: not UTF-8 text") from None
    if not header:
        raise DataError(f"{path} line 1: empty header; expected {', '.join(REQUIRED_COLUMNS)}")
    columns = header.split("\t")
    if len(columns) == 1:
        for sep, what in ((",", "comma"), (";", "semicolon"), (" ", "space")):
            if sep in header:
                raise DataError(
                    f"{path} line 1: header {header!r} looks {what}-separated; "
                    "MMRec .inter files are tab-separated"
                )
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise DataError(
            f"{path} line 1: missing column(s) {', '.join(missing)}; header has {', '.join(columns)}"
        )
    # Blank lines at the end are harmless; inside the file they would shift every line number.
    blank = re.search(rb"\n\r?\n", data.rstrip(b"\r\n"))
    if blank:
        line = data.count(b"\n", 0, blank.start()) + 2
        raise DataError(f"{path} line {line}: empty line")


def _read_table(data: bytes, **options) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(data), sep="\t", quoting=csv.QUOTE_NONE, encoding="utf-8", **options)


def _int_column(frame: pd.DataFrame, column: str, path: Path, data: bytes) -> np.ndarray:
    """The column as int64; rejects missing, non-integer and negative values with a line number."""
    if not pd.api.types.is_integer_dtype(frame[column]):
        # Slow path, bad files only: reread the column as text to name the first offender.
        text = _read_table(data, usecols=[column], dtype=str, keep_default_na=False)[column]
        row = int(np.argmax(~text.fillna("").str.fullmatch(r"[+-]?\d+").to_numpy(dtype=bool)))
        value = text.iloc[row]
        what = f"non-integer value {value!r}" if isinstance(value, str) and value.strip() else "missing value"
        raise DataError(f"{path} line {row + 2}: {what} in column {column}")
    arr = frame[column].to_numpy(dtype=np.int64)
    if len(arr) and arr.min() < 0:
        row = int(np.argmax(arr < 0))
        raise DataError(f"{path} line {row + 2}: negative {column} {arr[row]}")
    return arr


def _read_inter(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = path.read_bytes()
    _check_header(path, data)
    try:
        frame = _read_table(data)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        detail = " ".join(str(exc).split())
        raise DataError(f"{path}: cannot parse as a tab-separated table ({detail})") from None
    if len(frame) == 0:
        raise DataError(f"{path}: no interactions (only a header)")
    users, items, labels = (_int_column(frame, c, path, data) for c in REQUIRED_COLUMNS)
    bad = (labels < 0) | (labels > 2)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(
            f"{path} line {row + 2}: x_label {labels[row]} is not 0 (train), 1 (valid) or 2 (test)"
        )
    keys = users * (int(items.max()) + 1) + items
    dup = pd.Series(keys).duplicated().to_numpy()
    if dup.any():
        row = int(np.argmax(dup))
        first = int(np.argmax(keys == keys[row]))
        raise DataError(
            f"{path} line {row + 2}: duplicate (userID {users[row]}, itemID {items[row]}) pair, "
            f"first seen on line {first + 2}"
        )
    return users, items, labels


def _read_features(path: Path, modality: str, n_items: int) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        detail = " ".join(str(exc).split())
        raise DataError(f"{path}: cannot read {modality} features as a .npy array ({detail})") from None
    if not isinstance(arr, np.ndarray):
        raise DataError(f"{path}: expected a .npy array, got an archive")
    if arr.ndim != 2:
        raise DataError(
            f"{path}: {modality} features must be a 2-D (n_items, d) array, got shape {arr.shape}"
        )
    if arr.dtype not in (np.float32, np.float64):
        raise DataError(f"{path}: {modality} features must be float32 or float64, got {arr.dtype}")
    if arr.shape[0] != n_items:
        raise DataError(
            f"{path}: {modality} features have {arr.shape[0]} rows but the interactions name "
            f"{n_items} items (max itemID + 1)"
        )
    if arr.shape[1] == 0:
        raise DataError(f"{path}: {modality} features have zero columns")
    bad_rows = ~np.isfinite(arr).all(axis=1)
    if bad_rows.any():
        raise DataError(
            f"{path}: {modality} features have NaN or inf in {int(bad_rows.sum())} of "
            f"{n_items} rows (first: row {int(np.argmax(bad_rows))})"
        )
    return np.ascontiguousarray(arr, dtype=np.float32)


def load_mmrec(folder: Path | str, name: Optional[str] = None) -> Dataset:
    """Load and validate an MMRec folder; raises DataError on any problem.

    n_users = max userID + 1 and n_items = max itemID + 1. Valid/test rows of users without a
    train row are dropped (MMRec's rule) with a DataWarning saying how many.
    """
    folder = Path(folder)
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "no such folder"
        raise DataError(f"{folder}: {what} (expected an MMRec dataset folder)")
    name = name or folder.resolve().name
    inter = folder / f"{name}.inter"
    if not inter.is_file():
        others = sorted(p.name for p in folder.glob("*.inter"))
        hint = f"; found {', '.join(others)} (pass the dataset name)" if others else ""
        raise DataError(f"{inter}: missing interactions file{hint}")

    users, items, labels = _read_inter(inter)
    n_users, n_items = int(users.max()) + 1, int(items.max()) + 1

    dropped = users_without_train(users, labels)
    if dropped.any():
        n_dropped_users = len(np.unique(users[dropped]))
        warnings.warn(
            f"{inter}: dropped {int(dropped.sum())} valid/test rows of {n_dropped_users} users "
            "without train rows (MMRec's rule)",
            DataWarning,
            stacklevel=2,
        )
        keep = ~dropped
        users, items, labels = users[keep], items[keep], labels[keep]
    for code, split in SPLIT_NAMES.items():
        if not (labels == code).any():
            raise DataError(f"{inter}: the {split} split is empty (no rows with x_label {code})")

    features = {}
    for modality in MODALITIES:
        path = folder / feature_file(modality)
        if path.exists():
            features[modality] = _read_features(path, modality, n_items)
    return build_dataset(name, users, items, labels, n_users, n_items, features, str(folder.resolve()))


# --------------------------------------------------------------------------- writing


def _atomic_write(target: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; data files are meant to be shared
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_mmrec(dataset: Dataset, folder: Path | str, name: Optional[str] = None) -> Path:
    """Write ``dataset`` as an MMRec folder, each file atomically; returns the .inter path.

    The file is ``<name>.inter`` with ``name`` defaulting to the folder's basename, so
    ``load_mmrec(folder)`` reads it back. Feature files of modalities the dataset lacks are
    removed so the folder describes exactly this dataset.
    """
    folder = Path(folder)
    unknown = sorted(set(dataset.features) - set(MODALITIES))
    if unknown:
        raise ValueError(f"write_mmrec: MMRec folders hold only {MODALITIES} features, not {unknown}")
    folder.mkdir(parents=True, exist_ok=True)
    name = name or folder.resolve().name

    parts = []
    for code, split in SPLIT_NAMES.items():
        coo = dataset.split(split).tocoo()
        parts.append(pd.DataFrame({"userID": coo.row, "itemID": coo.col, "x_label": code}))
    frame = pd.concat(parts, ignore_index=True).sort_values(["userID", "x_label", "itemID"])
    inter = folder / f"{name}.inter"
    _atomic_write(inter, lambda fh: frame.to_csv(fh, sep="\t", index=False, lineterminator="\n"))

    for modality in MODALITIES:
        path = folder / feature_file(modality)
        if modality in dataset.features:
            arr = np.ascontiguousarray(dataset.features[modality], dtype=np.float32)
            _atomic_write(path, lambda fh, arr=arr: np.save(fh, arr, allow_pickle=False))
        else:
            path.unlink(missing_ok=True)
    return inter


# --------------------------------------------------------------------------- resolving


def find_data_root(explicit: Optional[str] = None) -> tuple[Path, str]:
    """The data root and where it came from (--data-root, $MOTOR_BENCH_DATA or ./data)."""
    if explicit:
        return Path(explicit), "--data-root"
    env = os.environ.get(DATA_ROOT_ENV)
    if env:
        return Path(env), f"${DATA_ROOT_ENV}"
    return Path("data"), "the default ./data"


def resolve(
    name_or_dir: str,
    data_root: Optional[str] = None,
    seed: Optional[int] = None,
    **synthetic_options,
) -> Dataset:
    """A dataset by name (baby, sports, clothing, synthetic, synthetic-clothing) or by folder path.

    Real datasets live in ``<data root>/<name>/``; ``synthetic`` is generated with
    ``SyntheticConfig(seed=seed, **synthetic_options)`` (defaults where not given).
    """
    if name_or_dir in SYNTHETIC_DATASETS:
        from benchmark.synthetic import SyntheticConfig, generate

        if seed is not None:
            synthetic_options["seed"] = seed
        try:
            if name_or_dir == "synthetic-clothing":
                config = SyntheticConfig.clothing_sized(**synthetic_options)
            else:
                config = SyntheticConfig(**synthetic_options)
        except TypeError as exc:
            raise DataError(f"{name_or_dir}: {exc}") from None
        data = generate(config)
        return dataclasses.replace(data, name=name_or_dir) if data.name != name_or_dir else data
    if synthetic_options:
        raise DataError(
            f"{name_or_dir}: options {', '.join(sorted(synthetic_options))} apply only to 'synthetic'"
        )
    if name_or_dir in REAL_DATASETS:
        root, origin = find_data_root(data_root)
        folder = root / name_or_dir
        if not folder.is_dir():
            raise DataError(
                f"dataset {name_or_dir!r} not found: looked in {folder.resolve()} (data root from "
                f"{origin}); set --data-root or ${DATA_ROOT_ENV} to the folder holding "
                f"{'/, '.join(REAL_DATASETS)}/ (see REPRODUCE.md)"
            )
        return load_mmrec(folder, name_or_dir)
    folder = Path(name_or_dir)
    if not folder.exists():
        raise DataError(
            f"{name_or_dir}: no such dataset folder (known names: {', '.join(REAL_DATASETS + SYNTHETIC_DATASETS)})"
        )
    return load_mmrec(folder)


# --------------------------------------------------------------------------- CLI


def format_stats(stats: Mapping) -> str:
    rows = [
        ("dataset", stats["name"]),
        ("users", f"{stats['users']:,}"),
        ("items", f"{stats['items']:,}"),
        ("interactions", f"{stats['interactions']:,}"),
        ("sparsity", f"{100 * stats['sparsity']:.4f}%"),
        ("train", f"{stats['train']:,}"),
        ("valid", f"{stats['valid']:,}"),
        ("test", f"{stats['test']:,}"),
    ]
    for modality, shape in stats["features"].items():
        rows.append((f"{modality} features", " x ".join(f"{d:,}" for d in shape)))
    if not stats["features"]:
        rows.append(("features", "none"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _stats(args: argparse.Namespace) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        dataset = resolve(args.dataset, args.data_root)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    stats = dataset.stats()
    print(json.dumps(stats, indent=2) if args.json else format_stats(stats))
    return 0


def _generate(args: argparse.Namespace) -> int:
    """Write a generated dataset as an MMRec folder (e.g. Clothing-sized with real feature widths)."""
    from benchmark.synthetic import SyntheticConfig, generate

    options = {"seed": args.seed}
    if args.image_dim is not None:
        options["image_dim"] = args.image_dim
    if args.text_dim is not None:
        options["text_dim"] = args.text_dim
    try:
        config = SyntheticConfig.clothing_sized(**options) if args.size == "clothing" else SyntheticConfig(**options)
    except (TypeError, ValueError) as exc:
        raise DataError(f"generate: {exc}") from exc
    dataset = generate(config)
    inter = write_mmrec(dataset, args.out)
    print(f"wrote {inter.parent} ({dataset.n_users:,} users, {dataset.n_items:,} items, "
          f"features {', '.join(f'{m} {f.shape[1]}-d' for m, f in sorted(dataset.features.items()))}); "
          f"use it as --dataset {inter.parent}")
    return 0


def _add_build_amazon(sub: argparse._SubParsersAction) -> None:
    help_text = "build an MMRec folder from the raw Amazon 2014 review files"
    parser = sub.add_parser("build-amazon", help=help_text, description=help_text)
    try:  # imported here so that `stats` works whatever state benchmark.amazon is in
        amazon = importlib.import_module("benchmark.amazon")
    except Exception as exc:  # noqa: BLE001 - any import failure only disables this command
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        def unavailable(_args: argparse.Namespace) -> int:
            raise DataError(f"build-amazon is unavailable: benchmark.amazon failed to import ({reason})")

        parser.set_defaults(func=unavailable, accepts_any_arguments=True)
    else:
        amazon.add_arguments(parser)
        parser.set_defaults(func=amazon.main)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmark.data", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    stats = sub.add_parser("stats", help="print a dataset's statistics")
    stats.add_argument("dataset", metavar="NAME_OR_DIR", help="baby, sports, clothing, synthetic or an MMRec folder")
    stats.add_argument("--data-root", metavar="DIR", help=f"folder holding the real datasets (default ${DATA_ROOT_ENV} or ./data)")
    stats.add_argument("--json", action="store_true", help="print the statistics as JSON")
    stats.set_defaults(func=_stats)
    gen = sub.add_parser("generate", help="write a generated dataset as an MMRec folder")
    gen.add_argument("--size", choices=("default", "clothing"), default="default",
                     help="default: the embedded 'synthetic'; clothing: Amazon Clothing's size")
    gen.add_argument("--image-dim", type=int, help="image feature width (real Amazon: 4096)")
    gen.add_argument("--text-dim", type=int, help="text feature width (real MMRec folders: 384)")
    gen.add_argument("--seed", type=int, default=2024)
    gen.add_argument("--out", required=True, metavar="DIR", help="folder to write (its name names the .inter file)")
    gen.set_defaults(func=_generate)
    _add_build_amazon(sub)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_any_arguments", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args) or 0)
    except (DataError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
