"""MotorEncoder and the space-accounting formulas (motor.encoders, motor.space)."""
import numpy as np
import pytest
import torch

from motor.encoders import IdEmbedding, MotorEncoder
from motor.space import code_bytes, id_item_parameters, motor_item_parameters
from motor.tcn import TcnConfig
from motor.tokenizer import TokenizerError

N_ITEMS = 157  # differs from every other dimension used below


def _codes(spec, n=N_ITEMS, seed=0):
    rng = np.random.default_rng(seed)
    return ({m: rng.integers(0, K, (n, M)).astype(np.uint8 if K <= 256 else np.uint16)
             for m, (M, K) in spec.items()}, {m: K for m, (M, K) in spec.items()})


SPECS = [
    ({"image": (2, 8), "text": (3, 16)}, 8, TcnConfig()),
    ({"image": (2, 8), "text": (3, 16)}, 8, TcnConfig(combine="concat", hidden=12)),
    ({"image": (4, 4), "text": (1, 512)}, 6, TcnConfig(first_order=False, dropout=0.2)),
    ({"image": (2, 8), "text": (3, 16)}, 8, TcnConfig(high_order=False, combine="concat")),
    ({"image": (2, 8), "text": (3, 16)}, 8, TcnConfig(second_order=False, high_order=False)),
    ({"image": (2, 8), "text": (3, 16)}, 8, TcnConfig(modalities=("text",))),
]


@pytest.mark.parametrize("spec,d,tcn", SPECS)
def test_parameter_count_matches_formula_and_no_item_sized_tensor(spec, d, tcn):
    codes, ks = _codes(spec)
    enc = MotorEncoder(codes, ks, d, tcn)
    assert enc.n_parameters() == motor_item_parameters(spec, d, tcn)
    assert enc.code_bytes() == code_bytes(N_ITEMS, spec, tcn.modalities)
    for name, p in enc.named_parameters():
        assert N_ITEMS not in p.shape, name
    assert not enc.codes.requires_grad and enc.codes.dtype == torch.long
    assert "codes" in dict(enc.named_buffers())
    assert enc().shape == (N_ITEMS, d)


def test_code_bytes_and_id_parameters():
    assert code_bytes(100, {"image": (8, 256), "text": (4, 512)}) == 100 * 8 * 1 + 100 * 4 * 2
    assert code_bytes(10, {"a": (3, 2)}) == 30
    assert id_item_parameters(23033, 64) == 1_474_112
    assert IdEmbedding(N_ITEMS, 8).n_parameters() == id_item_parameters(N_ITEMS, 8)


def test_token_offsets_into_one_table():
    spec = {"text": (3, 16), "image": (2, 8)}
    codes, ks = _codes(spec)
    enc = MotorEncoder(codes, ks, 4)
    assert enc.modalities == ("image", "text")  # sorted, independent of dict order
    assert enc.token_embedding.num_embeddings == 2 * 8 + 3 * 16
    expect = np.concatenate(
        [codes["image"].astype(int) + [0, 8], codes["text"].astype(int) + [16, 32, 48]], axis=1
    )
    np.testing.assert_array_equal(enc.codes.numpy(), expect)


def test_forward_items_equals_rows_of_full_forward():
    codes, ks = _codes({"image": (2, 8), "text": (3, 16)})
    enc = MotorEncoder(codes, ks, 8)
    items = torch.tensor([5, 0, 156, 5, 42])
    full = enc()
    torch.testing.assert_close(enc(items), full[items])
    two_d = torch.tensor([[1, 2], [3, 4]])
    torch.testing.assert_close(enc(two_d), full[two_d])


def test_from_features_identical_features_identical_representations(tmp_path):
    rng = np.random.default_rng(0)
    feats = {"image": rng.standard_normal((N_ITEMS, 12)).astype(np.float32),
             "text": rng.standard_normal((N_ITEMS, 10)).astype(np.float32)}
    for m in feats:
        feats[m][3] = feats[m][77]
    spec = {"image": (4, 8), "text": (2, 16)}
    enc = MotorEncoder.from_features(feats, spec, dim=8, seed=1, cache_dir=tmp_path)
    torch.testing.assert_close(enc.codes[3], enc.codes[77])
    out = enc()
    torch.testing.assert_close(out[3], out[77])
    assert set(enc.tokenization) == {"image", "text"}
    # same seed -> same tokens (and cached)
    enc2 = MotorEncoder.from_features(feats, spec, dim=8, seed=1, cache_dir=tmp_path)
    assert all(r.from_cache for r in enc2.tokenization.values())
    torch.testing.assert_close(enc.codes, enc2.codes)
    # one modality only, cold start fit on a subset
    enc3 = MotorEncoder.from_features(feats, spec, dim=8, tcn=TcnConfig(modalities=("image",)),
                                      fit_items=np.arange(100))
    assert enc3.modalities == ("image",) and enc3.codes.shape == (N_ITEMS, 4)
    assert enc3.tokenization["image"].n_fit == 100
    with pytest.raises(TokenizerError, match="'audio'.*available modalities: image, text"):
        MotorEncoder.from_features(feats, {"audio": (2, 4)}, dim=8)


def test_backward_reaches_token_table_and_tcn():
    codes, ks = _codes({"image": (2, 8), "text": (3, 16)})
    enc = MotorEncoder(codes, ks, 8, TcnConfig(combine="concat"))
    enc(torch.arange(20)).sum().backward()
    assert all(p.grad is not None for p in enc.parameters())


def test_encoder_errors():
    codes, ks = _codes({"image": (2, 8)})
    with pytest.raises(ValueError, match=r"must lie in \[0, 4\)"):
        MotorEncoder(codes, {"image": 4}, 8)
    with pytest.raises(ValueError, match="no K"):
        MotorEncoder(codes, {}, 8)
    with pytest.raises(ValueError, match="modalities names"):
        MotorEncoder(codes, ks, 8, TcnConfig(modalities=("text",)))
    with pytest.raises(ValueError, match="items, expected"):
        MotorEncoder({"a": np.zeros((5, 2), int), "b": np.zeros((6, 2), int)}, {"a": 2, "b": 2}, 4)
