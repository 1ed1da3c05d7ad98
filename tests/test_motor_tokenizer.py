"""Product quantization of modality features (motor.tokenizer)."""
import logging

import numpy as np
import pytest

from motor.tokenizer import TokenizerError, cache_key, tokenize, tokenize_modalities


def _feats(n=600, d=16, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def test_codes_shape_dtype_range_and_nearest_centroid():
    x = _feats()
    r = tokenize(x, M=4, K=16, seed=3)
    assert r.codes.shape == (600, 4) and r.codes.dtype == np.uint8
    assert r.codes.max() < 16 and (r.M, r.K, r.nbits) == (4, 16, 4)
    assert not r.pca_applied and r.pca_dim is None and r.n_fit == 600
    assert 0 < r.nmse < 1 and r.mse > 0


def test_unpacking_matches_faiss_assignment_for_odd_and_16_bits():
    import faiss
    from motor.tokenizer import _unpack_codes

    for nbits in (3, 8, 16):
        x = _feats(300 if nbits < 16 else 20, 8)
        pq = faiss.ProductQuantizer(8, 2, nbits)
        cent = np.random.default_rng(nbits).standard_normal((2 * 2**nbits * 4,)).astype(np.float32)
        faiss.copy_array_to_vector(cent, pq.centroids)
        codes = _unpack_codes(pq.compute_codes(x), 2, nbits)
        c = cent.reshape(2, 2**nbits, 4)
        expect = np.stack(
            [((x[:, None, 4 * m : 4 * m + 4] - c[m][None]) ** 2).sum(-1).argmin(1) for m in range(2)], 1
        )
        np.testing.assert_array_equal(codes, expect)
        assert codes.dtype == (np.uint8 if nbits <= 8 else np.uint16)


def test_same_seed_same_codes():
    x = _feats()
    a = tokenize(x, 4, 16, seed=5)
    b = tokenize(x, 4, 16, seed=5)
    np.testing.assert_array_equal(a.codes, b.codes)
    assert a.mse == b.mse


def test_codes_do_not_depend_on_thread_count():
    import faiss

    x = _feats(1500, 16)
    before = faiss.omp_get_max_threads()
    try:
        faiss.omp_set_num_threads(1)
        one = tokenize(x, 4, 64, seed=9)
        faiss.omp_set_num_threads(2)
        two = tokenize(x, 4, 64, seed=9)
    finally:
        faiss.omp_set_num_threads(before)
    np.testing.assert_array_equal(one.codes, two.codes)
    assert one.mse == two.mse


def test_different_seed_changes_codebooks():
    x = _feats()
    assert not np.array_equal(tokenize(x, 4, 16, seed=1).codes, tokenize(x, 4, 16, seed=2).codes)


def test_cache_roundtrip_and_keys(tmp_path):
    x = _feats()
    a = tokenize(x, 4, 16, seed=1, cache_dir=tmp_path)
    assert not a.from_cache
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1 and a.cache_key in files[0].name
    assert not list(tmp_path.glob(".tmp*"))
    b = tokenize(x, 4, 16, seed=1, cache_dir=tmp_path)
    assert b.from_cache
    np.testing.assert_array_equal(a.codes, b.codes)
    assert (b.mse, b.nmse, b.pca_dim, b.n_fit) == (a.mse, a.nmse, a.pca_dim, a.n_fit)

    k = cache_key(x, 4, 16, 1)
    assert k == a.cache_key
    y = x.copy()
    y[7, 3] += 1e-3
    assert cache_key(y, 4, 16, 1) != k
    assert cache_key(x.astype(np.float64), 4, 16, 1) != k
    assert cache_key(x.reshape(1200, 8), 4, 16, 1) != k
    assert cache_key(x, 2, 16, 1) != k
    assert cache_key(x, 4, 32, 1) != k
    assert cache_key(x, 4, 16, 2) != k
    assert cache_key(x, 4, 16, 1, fit_items=np.arange(500)) != k
    # the fit subset is canonical: order and duplicates do not matter
    assert cache_key(x, 4, 16, 1, np.arange(500)[::-1]) == cache_key(x, 4, 16, 1, np.arange(500))


def test_corrupt_cache_is_recomputed(tmp_path):
    x = _feats()
    a = tokenize(x, 4, 16, cache_dir=tmp_path)
    next(tmp_path.glob("*.npz")).write_bytes(b"garbage")
    b = tokenize(x, 4, 16, cache_dir=tmp_path)
    assert not b.from_cache
    np.testing.assert_array_equal(a.codes, b.codes)
    assert tokenize(x, 4, 16, cache_dir=tmp_path).from_cache


def test_reconstruction_error_falls_with_k():
    x = _feats(2000, 16, seed=2)
    errs = [tokenize(x, 4, K, seed=0).nmse for K in (4, 16, 64)]
    assert errs[0] > errs[1] > errs[2]


def test_pca_when_dimension_not_divisible(caplog):
    x = _feats(500, 18)
    with caplog.at_level(logging.INFO, logger="motor.tokenizer"):
        r = tokenize(x, M=4, K=8)
    assert r.pca_applied and r.pca_dim == 16 and r.input_dim == 18
    assert r.codes.shape == (500, 4)
    assert any("PCA" in rec.getMessage() for rec in caplog.records)
    r2 = tokenize(x, M=4, K=8)
    np.testing.assert_array_equal(r.codes, r2.codes)
    # PCA dim 18 -> 15 for M = 5
    assert tokenize(x, M=5, K=8).pca_dim == 15


def test_fit_on_subset_encodes_all_items():
    x = _feats(700, 8)
    warm = np.arange(0, 700, 2)
    r = tokenize(x, 2, 32, fit_items=warm)
    assert r.codes.shape == (700, 2) and r.n_fit == 350
    mask = np.zeros(700, bool)
    mask[warm] = True
    np.testing.assert_array_equal(tokenize(x, 2, 32, fit_items=mask).codes, r.codes)
    assert not np.array_equal(tokenize(x, 2, 32).codes, r.codes)


def test_identical_features_identical_codes():
    x = _feats(400, 8)
    x[10] = x[20]
    x[30] = x[20]
    r = tokenize(x, 4, 16)
    np.testing.assert_array_equal(r.codes[10], r.codes[20])
    np.testing.assert_array_equal(r.codes[30], r.codes[20])


def test_uint16_codes_for_large_k():
    x = _feats(600, 4)
    r = tokenize(x, 1, 512)
    assert r.codes.dtype == np.uint16 and r.codes.max() < 512


def test_errors():
    x = _feats(100, 8)
    with pytest.raises(TokenizerError, match="K=128 centroids is larger than the 100"):
        tokenize(x, 2, 128)
    with pytest.raises(TokenizerError, match="larger than the 10 item"):
        tokenize(x, 2, 16, fit_items=np.arange(10))
    with pytest.raises(TokenizerError, match=r"M=0 .*1 <= M <= 8"):
        tokenize(x, 0, 4)
    with pytest.raises(TokenizerError, match=r"M=9 .*not possible"):
        tokenize(x, 9, 4)
    for K in (3, 1, 2**17):
        with pytest.raises(TokenizerError, match="power of two"):
            tokenize(x, 2, K)
    y = x.copy()
    y[5, 2] = np.nan
    with pytest.raises(TokenizerError, match=r"image: features contain NaN .*\[5\]"):
        tokenize(y, 2, 4, name="image")
    with pytest.raises(TokenizerError, match="outside"):
        tokenize(x, 2, 4, fit_items=[0, 100])
    with pytest.raises(TokenizerError, match="2-D"):
        tokenize(x[0], 1, 2)


def test_tokenize_modalities_and_missing_modality():
    feats = {"image": _feats(300, 8, 1), "text": _feats(300, 12, 2)}
    out = tokenize_modalities(feats, {"image": (2, 8), "text": (3, 16)}, seed=0)
    assert list(out) == ["image", "text"]
    assert out["image"].codes.shape == (300, 2) and out["text"].codes.shape == (300, 3)
    with pytest.raises(TokenizerError, match=r"'audio'.*available modalities: image, text"):
        tokenize_modalities(feats, {"audio": (2, 8)})
    with pytest.raises(TokenizerError, match="disagree"):
        tokenize_modalities({"image": _feats(300, 8), "text": _feats(200, 8)},
                            {"image": (2, 4), "text": (2, 4)})
