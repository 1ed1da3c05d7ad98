import numpy as np
import pytest
import torch

from backbones import registered
from backbones.base import MissingFeatureError, UnknownKeyError, get_backbone
from benchmark.run import RunSpec, build_model
from tests.backbone_contract import N_ITEMS, check_backbone, id_sized_tensors, tiny_dataset


@pytest.mark.parametrize("arm", ["id", "motor"])
@pytest.mark.parametrize("name", ["vbpr", "freedom"])
def test_backbone_contract(name, arm, tmp_path):
    check_backbone(name, arm, tmp_cache=tmp_path)


def test_pop_ranks_by_train_popularity():
    data = tiny_dataset()
    model = build_model(RunSpec("tiny", "pop"), data, None)
    scores = model.score_users(torch.arange(3))
    counts = np.asarray(data.train.sum(axis=0)).ravel()
    assert np.array_equal(scores[0].numpy(), counts.astype(np.float32))
    assert model.n_parameters() == 0


def test_unknown_config_key_is_rejected():
    with pytest.raises(UnknownKeyError, match="unknown key"):
        get_backbone("vbpr").Config.from_dict({"reg_wieght": 0.1})


def test_config_values_are_coerced_and_checked():
    cfg = get_backbone("freedom").Config.from_dict({"knn_k": "5", "dropout": "0.9"})
    assert cfg.knn_k == 5 and cfg.dropout == 0.9
    with pytest.raises(ValueError, match="expected int"):
        get_backbone("freedom").Config.from_dict({"knn_k": "five"})


def test_multimodal_backbone_without_features_gives_clear_error():
    data = tiny_dataset(modalities=())
    with pytest.raises(MissingFeatureError, match="needs image features"):
        build_model(RunSpec("tiny", "freedom"), data, None)


def test_unknown_backbone_lists_registered():
    with pytest.raises(KeyError, match="registered: "):
        get_backbone("nope")


def test_id_free_check_detects_an_id_table():
    model = build_model(RunSpec("tiny", "vbpr", "id"), tiny_dataset(), None)
    assert id_sized_tensors(model, N_ITEMS) == ["item_encoder.weight"]


def test_every_config_search_space_names_real_fields():
    import dataclasses

    for name, cls in registered().items():
        fields = {f.name for f in dataclasses.fields(cls.Config)}
        assert set(cls.Config.search_space) <= fields, name
        for key, values in cls.Config.search_space.items():
            assert len(values) >= 1, (name, key)
