"""Xception binary detector plus a 1x1 map head on block11: the papers' common baseline.

score: sigmoid of one logit from the pooled final features (BCE against the label).
map: sigmoid of a 1x1 conv on the block11 features (stride 16), trained with BCE against
the mask resized to that grid, weight `model.map_weight`; it exists so that pixel metrics
and overlays are exercised for the baseline as for the localisation models.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from fjax.models import losses
from fjax.models.backbones.xception import Xception
from fjax.models.config_fields import from_config

BATCH_KEYS = ('image', 'label', 'mask')
RNGS = ()
CONFIG = 'xception'  # configs/xception.py


class Model(nn.Module):
  dtype: Any = jnp.float32
  remat: bool = False         # model.remat: backbone blocks recomputed in the backward pass
  middle_blocks: int = 8      # model.middle_blocks: Xception middle-flow blocks (tests: 1)

  @nn.compact
  def __call__(self, images, *, train: bool = False):
    taps = Xception(dtype=self.dtype, remat=self.remat,
                    middle_blocks=self.middle_blocks, name='backbone')(images, train=train)
    pooled = taps['features'].mean(axis=(1, 2))
    logit = nn.Dense(1, dtype=self.dtype, name='fc')(pooled)[:, 0]
    map_logits = nn.Conv(1, (1, 1), dtype=self.dtype, name='map_head')(taps['block11'])
    return {'logit': logit.astype(jnp.float32),
            'map_logits': map_logits[..., 0].astype(jnp.float32)}


def build(config) -> nn.Module:
  return from_config(Model, config)


def loss_fn(outputs, batch, config):
  w = batch['valid']
  cls = losses.bce(outputs['logit'], batch['label'].astype(jnp.float32), w)
  target = losses.resize_map(batch['mask'], outputs['map_logits'].shape[1:])
  seg = losses.bce(outputs['map_logits'], target, w)
  return cls + config.model.map_weight * seg, {'loss_cls': cls, 'loss_map': seg}


def score(outputs):
  return jax.nn.sigmoid(outputs['logit'])


def localization(outputs):
  return jax.nn.sigmoid(outputs['map_logits'])
