"""Most-popular: every user gets items ranked by train interaction count. A sanity floor."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from backbones.base import Backbone, BackboneConfig, register


@dataclass(frozen=True)
class PopConfig(BackboneConfig):
    pass


@register
class Pop(Backbone):
    name = "pop"
    Config = PopConfig
    uses_item_encoder = False
    trainable = False

    def __init__(self, data, item_encoder, config):
        super().__init__(data, None, config)
        counts = np.asarray(data.train.sum(axis=0)).ravel().astype(np.float32)
        self.register_buffer("popularity", torch.from_numpy(counts))

    def scorer(self):
        pop = self.popularity
        return lambda users: pop.unsqueeze(0).expand(len(users), -1).clone()
