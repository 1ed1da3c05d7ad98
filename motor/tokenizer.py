"""Product quantization of frozen modality features into discrete item tokens.

Each modality is quantized on its own (as in MOTOR): the ``d``-dimensional feature of an item is
split into ``M`` sub-vectors and each sub-vector is replaced by the index of its nearest centroid
among ``K = 2**nbits`` centroids learnt by k-means in that sub-space (faiss ``ProductQuantizer``).
The result is an ``(n_items, M)`` integer code table per modality.

Decisions (see ``/work/shared/reference/method.md``):

- When ``d`` is not divisible by ``M`` the features are first reduced by PCA (fitted on the same
  items as the codebooks, deterministic: numpy ``eigh`` of the float64 covariance with a fixed
  sign convention) to the largest dimension ``<= d`` divisible by ``M``. This is logged.
- Codebooks are fitted on all items unless ``fit_items`` is given (cold start: warm items only);
  codes are always computed for every item.
- The reported reconstruction error is measured on all items in the *original* feature space (so
  any PCA loss is included): ``mse`` is the mean squared error per element and ``nmse`` is that
  error divided by the per-element variance of the features (0 = perfect, 1 = no better than
  predicting the feature mean).
- Codes are cached (``.npz``) under a caller-given folder, keyed by a sha256 over the feature
  array's dtype, shape and bytes, ``M``, ``K``, the seed, the fit subset, the faiss version and a
  version tag of this module. Files are written atomically (temporary file + ``os.replace``).
"""
from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence, Tuple, Union

import faiss
import numpy as np

logger = logging.getLogger(__name__)

#: Bump when the tokenization procedure changes, so stale cache entries are never reused.
CACHE_VERSION = "motor-pq-v1"
#: k-means iterations per sub-space (faiss's default).
KMEANS_NITER = 25
MAX_K = 2**16

FitItems = Union[None, Sequence[int], np.ndarray]


class TokenizerError(ValueError):
    """Bad input to the product quantizer (names the modality, the value and what was expected)."""


@dataclass(frozen=True)
class PQResult:
    """The tokenization of one modality.

    ``codes``: ``(n_items, M)`` uint8 when ``K <= 256`` else uint16, values in ``[0, K)``.
    ``mse`` / ``nmse``: raw and variance-normalised reconstruction error on all items, in the
    original feature space. ``pca_dim``: the dimension PQ ran on after PCA, or ``None`` when the
    features were quantized as they are.
    """

    codes: np.ndarray
    M: int
    K: int
    mse: float
    nmse: float
    input_dim: int
    pca_dim: Optional[int]
    n_fit: int
    seed: int
    cache_key: str
    from_cache: bool = False

    @property
    def pca_applied(self) -> bool:
        return self.pca_dim is not None

    @property
    def nbits(self) -> int:
        return int(self.K).bit_length() - 1

    @property
    def n_items(self) -> int:
        return int(self.codes.shape[0])


# --------------------------------------------------------------------------- validation helpers


def _check_mk(M: int, K: int, d: int, name: str) -> int:
    """Validate ``M`` and ``K`` against a feature size ``d``; return ``nbits``."""
    if isinstance(M, bool) or not isinstance(M, (int, np.integer)):
        raise TokenizerError(f"{name}: M must be an integer, got {M!r}")
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)):
        raise TokenizerError(f"{name}: K must be an integer, got {K!r}")
    M, K = int(M), int(K)
    if M < 1 or M > d:
        raise TokenizerError(
            f"{name}: M={M} sub-spaces is not possible for {d}-dimensional features "
            f"(expected 1 <= M <= {d})"
        )
    if K < 2 or K > MAX_K or K & (K - 1):
        raise TokenizerError(
            f"{name}: K={K} centroids is not allowed (expected a power of two with 2 <= K <= {MAX_K})"
        )
    return K.bit_length() - 1


def _check_features(features: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(features)
    if x.ndim != 2:
        raise TokenizerError(f"{name}: features must be a 2-D (n_items, d) array, got shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise TokenizerError(f"{name}: features are empty (shape {x.shape})")
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise TokenizerError(f"{name}: features must be real numbers, got dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.floating):
        bad = ~np.isfinite(x)
        if bad.any():
            rows = np.unique(np.nonzero(bad)[0])
            kind = "NaN" if np.isnan(x[rows]).any() else "infinite"
            raise TokenizerError(
                f"{name}: features contain {kind} values in {len(rows)} item row(s) "
                f"(first: {rows[:5].tolist()}); expected finite numbers"
            )
    return x


def _canonical_fit_items(fit_items: FitItems, n_items: int, name: str) -> Optional[np.ndarray]:
    """``None`` (all items) or a sorted, unique int64 index array."""
    if fit_items is None:
        return None
    idx = np.asarray(fit_items)
    if idx.dtype == bool:
        if idx.shape != (n_items,):
            raise TokenizerError(
                f"{name}: a boolean fit_items mask must have shape ({n_items},), got {idx.shape}"
            )
        idx = np.nonzero(idx)[0]
    if idx.ndim != 1:
        raise TokenizerError(f"{name}: fit_items must be a 1-D array of item indices, got shape {idx.shape}")
    if idx.size == 0:
        raise TokenizerError(f"{name}: fit_items is empty; at least K items are needed to fit")
    if not np.issubdtype(idx.dtype, np.integer):
        raise TokenizerError(f"{name}: fit_items must hold integer item indices, got dtype {idx.dtype}")
    idx = np.unique(idx.astype(np.int64))
    if idx[0] < 0 or idx[-1] >= n_items:
        raise TokenizerError(
            f"{name}: fit_items holds indices outside [0, {n_items}) (min {idx[0]}, max {idx[-1]})"
        )
    return idx


# --------------------------------------------------------------------------- cache


def cache_key(
    features: np.ndarray, M: int, K: int, seed: int, fit_items: FitItems = None
) -> str:
    """sha256 over the feature contents and every parameter that changes the codes."""
    x = np.ascontiguousarray(features)
    fit = _canonical_fit_items(fit_items, x.shape[0], "features")
    h = hashlib.sha256()
    h.update(f"{CACHE_VERSION}|faiss={faiss.__version__}|niter={KMEANS_NITER}|".encode())
    h.update(f"dtype={x.dtype.str}|shape={tuple(x.shape)}|".encode())
    h.update(memoryview(x.reshape(-1).view(np.uint8)))
    h.update(f"|M={int(M)}|K={int(K)}|seed={int(seed)}|".encode())
    if fit is None:
        h.update(b"fit=all")
    else:
        h.update(b"fit=")
        h.update(fit.tobytes())
    return h.hexdigest()


def _cache_path(cache_dir: Path, key: str) -> Path:
    return Path(cache_dir) / f"pq-{key}.npz"


def _load_cached(path: Path, key: str, M: int, K: int, n_items: int) -> Optional[PQResult]:
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key or int(z["M"]) != M or int(z["K"]) != K:
                return None
            codes = z["codes"]
            if codes.shape != (n_items, M):
                return None
            pca_dim = int(z["pca_dim"])
            return PQResult(
                codes=codes,
                M=M,
                K=K,
                mse=float(z["mse"]),
                nmse=float(z["nmse"]),
                input_dim=int(z["input_dim"]),
                pca_dim=pca_dim if pca_dim > 0 else None,
                n_fit=int(z["n_fit"]),
                seed=int(z["seed"]),
                cache_key=key,
                from_cache=True,
            )
    except FileNotFoundError:
        return None
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        logger.warning("ignoring unreadable PQ cache file %s (%s); recomputing", path, exc)
        return None


def _save_cached(path: Path, result: PQResult) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(
        buf,
        key=np.array(result.cache_key),
        version=np.array(CACHE_VERSION),
        codes=result.codes,
        M=result.M,
        K=result.K,
        mse=result.mse,
        nmse=result.nmse,
        input_dim=result.input_dim,
        pca_dim=result.pca_dim or 0,
        n_fit=result.n_fit,
        seed=result.seed,
    )
    fd, tmp = tempfile.mkstemp(prefix=".tmp-" + path.stem, suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# --------------------------------------------------------------------------- PCA and PQ


def _pca(x_fit: np.ndarray, out_dim: int) -> Tuple[np.ndarray, np.ndarray]:
    """Deterministic PCA: returns ``(mean (d,), components (d, out_dim))`` in float64.

    Eigenvectors of the float64 covariance, ordered by decreasing eigenvalue; each component's
    sign is fixed so that its largest-magnitude entry is positive.
    """
    mean = x_fit.mean(axis=0, dtype=np.float64)
    d = x_fit.shape[1]
    cov = np.zeros((d, d), dtype=np.float64)
    for start in range(0, x_fit.shape[0], 8192):
        c = x_fit[start : start + 8192].astype(np.float64) - mean
        cov += c.T @ c
    cov /= max(x_fit.shape[0] - 1, 1)
    evals, evecs = np.linalg.eigh(cov)
    order = np.argsort(evals, kind="stable")[::-1][:out_dim]
    comps = evecs[:, order]
    pivot = np.abs(comps).argmax(axis=0)
    signs = np.sign(comps[pivot, np.arange(out_dim)])
    signs[signs == 0] = 1.0
    return mean, comps * signs


def _unpack_codes(packed: np.ndarray, M: int, nbits: int) -> np.ndarray:
    """faiss packs each code LSB-first into a bit string; unpack to (n, M) integers."""
    dtype = np.uint8 if nbits <= 8 else np.uint16
    if nbits == 8:
        return np.ascontiguousarray(packed[:, :M]).astype(dtype, copy=False)
    if nbits == 16:
        return np.ascontiguousarray(packed[:, : 2 * M]).view("<u2").astype(dtype)
    bits = np.unpackbits(packed, axis=1, bitorder="little")[:, : M * nbits]
    bits = bits.reshape(packed.shape[0], M, nbits).astype(np.uint32)
    return (bits << np.arange(nbits, dtype=np.uint32)).sum(axis=-1).astype(dtype)


def tokenize(
    features: np.ndarray,
    M: int,
    K: int,
    *,
    seed: int = 0,
    fit_items: FitItems = None,
    cache_dir: Optional[Path] = None,
    name: str = "features",
) -> PQResult:
    """Product-quantize one modality's ``(n_items, d)`` features into ``(n_items, M)`` codes.

    ``K`` must be a power of two in ``[2, 2**16]`` and at most the number of fitting items.
    ``fit_items`` (indices or a boolean mask) restricts the codebook fit (and PCA, if needed) to
    a subset of items; every item is encoded. ``cache_dir`` enables the on-disk cache (``None``
    disables it). ``name`` is used in messages (the modality).
    """
    x = _check_features(features, name)
    n_items, d = x.shape
    nbits = _check_mk(M, K, d, name)
    M, K = int(M), int(K)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**31:
        raise TokenizerError(f"{name}: seed must be an integer in [0, 2**31), got {seed!r}")
    seed = int(seed)
    fit = _canonical_fit_items(fit_items, n_items, name)
    n_fit = n_items if fit is None else int(fit.size)
    if K > n_fit:
        raise TokenizerError(
            f"{name}: K={K} centroids is larger than the {n_fit} item(s) the codebooks are fitted "
            f"on; choose K <= {n_fit}"
        )

    key = cache_key(x, M, K, seed, fit)
    if cache_dir is not None:
        cached = _load_cached(_cache_path(Path(cache_dir), key), key, M, K, n_items)
        if cached is not None:
            logger.debug("%s: PQ codes (M=%d, K=%d) loaded from cache", name, M, K)
            return cached

    x32 = np.ascontiguousarray(x, dtype=np.float32)
    x_fit = x32 if fit is None else np.ascontiguousarray(x32[fit])

    # PCA when the dimension is not divisible by M.
    pca_dim: Optional[int] = None
    mean = comps = None
    if d % M:
        pca_dim = (d // M) * M
        logger.info(
            "%s: feature dimension %d is not divisible by M=%d; reducing to %d with PCA "
            "(fitted on %d items)", name, d, M, pca_dim, n_fit,
        )
        mean, comps = _pca(x_fit, pca_dim)
        x_pq = np.ascontiguousarray(((x32.astype(np.float64) - mean) @ comps).astype(np.float32))
        x_pq_fit = x_pq if fit is None else np.ascontiguousarray(x_pq[fit])
    else:
        x_pq, x_pq_fit = x32, x_fit

    dp = x_pq.shape[1]
    if n_fit < 39 * K:
        logger.info(
            "%s: fitting K=%d centroids per sub-space on only %d items (faiss suggests >= %d)",
            name, K, n_fit, 39 * K,
        )
    pq = faiss.ProductQuantizer(dp, M, nbits)
    pq.cp.seed = seed
    pq.cp.niter = KMEANS_NITER
    pq.cp.min_points_per_centroid = 1  # we log our own warning above instead of faiss's stderr
    pq.cp.verbose = False
    pq.train(x_pq_fit)
    packed = pq.compute_codes(x_pq)
    codes = _unpack_codes(packed, M, nbits)

    # Reconstruction error on all items, in the original feature space.
    recon = pq.decode(packed)
    sq_err = 0.0
    sq_dev = 0.0
    feat_mean = x32.mean(axis=0, dtype=np.float64)
    for start in range(0, n_items, 4096):
        sl = slice(start, start + 4096)
        r = recon[sl].astype(np.float64)
        if comps is not None:
            r = r @ comps.T + mean
        xs = x32[sl].astype(np.float64)
        sq_err += float(((xs - r) ** 2).sum())
        sq_dev += float(((xs - feat_mean) ** 2).sum())
    mse = sq_err / (n_items * d)
    var = sq_dev / (n_items * d)
    if var > 0:
        nmse = mse / var
    else:
        nmse = 0.0 if mse == 0 else math.inf

    result = PQResult(
        codes=codes,
        M=M,
        K=K,
        mse=mse,
        nmse=nmse,
        input_dim=d,
        pca_dim=pca_dim,
        n_fit=n_fit,
        seed=seed,
        cache_key=key,
    )
    if cache_dir is not None:
        _save_cached(_cache_path(Path(cache_dir), key), result)
    return result


Spec = Mapping[str, Tuple[int, int]]


def tokenize_modalities(
    features: Mapping[str, np.ndarray],
    spec: Spec,
    *,
    seed: int = 0,
    fit_items: FitItems = None,
    cache_dir: Optional[Path] = None,
) -> dict:
    """Tokenize each modality named in ``spec`` (``{modality: (M, K)}``) separately.

    Returns ``{modality: PQResult}`` in ``spec`` order. Raises :class:`TokenizerError` naming a
    modality of ``spec`` that ``features`` lacks, and the modalities it has.
    """
    if not spec:
        raise TokenizerError("the tokenization spec is empty; expected {modality: (M, K)}")
    missing = [m for m in spec if m not in features]
    if missing:
        have = ", ".join(sorted(features)) or "none"
        raise TokenizerError(
            f"no features for modality {', '.join(map(repr, missing))}; available modalities: {have}"
        )
    n_rows = {m: np.shape(features[m])[0] if np.ndim(features[m]) >= 1 else None for m in spec}
    if len(set(n_rows.values())) > 1:
        raise TokenizerError(f"modalities disagree on the number of items: {n_rows}")
    out = {}
    for modality, mk in spec.items():
        try:
            M, K = mk
        except (TypeError, ValueError):
            raise TokenizerError(f"{modality}: spec entry must be (M, K), got {mk!r}") from None
        out[modality] = tokenize(
            features[modality], M, K, seed=seed, fit_items=fit_items, cache_dir=cache_dir,
            name=modality,
        )
    return out
