"""FoCus's evaluation model (fig. 4): EfficientNet-B4 + FPN, a 2-way classifier and a dense
head predicting a manipulation map (40x40 at 320 px: the stride-8 FPN level), trained with
CE + 0.1 BCE against whichever map `dataset.mask_source` supplies (focus, ssim, diff,
diff@0.1, or none), so that map sources are compared by the detector they train.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from fjax.models import losses
from fjax.models.backbones.efficientnet import EfficientNet
from fjax.models.config_fields import from_config

BATCH_KEYS = ('image', 'label', 'mask')
RNGS = ()
CONFIG = 'focus_eval'  # configs/focus_eval.py
LEVELS = ('stride8', 'stride16', 'stride32')


class FPN(nn.Module):
  """Lateral 1x1 convs to `width`, top-down nearest upsampling and sums, 3x3 smoothing;
  returns the finest level (stride 8)."""
  width: int = 128
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, feats):
    top = None
    for name in reversed(LEVELS):
      x = nn.Conv(self.width, (1, 1), dtype=self.dtype, name=f'lateral_{name}')(feats[name])
      if top is not None:
        x = x + jax.image.resize(top, x.shape, 'nearest')
      top = x
    return nn.Conv(self.width, (3, 3), padding=[(1, 1)] * 2, dtype=self.dtype,
                   name='smooth')(top)


class Model(nn.Module):
  variant: str = 'b4'
  fpn_width: int = 128
  dtype: Any = jnp.float32
  remat: bool = False         # model.remat: backbone blocks recomputed in the backward pass
  max_repeats: int = 0        # model.max_repeats: blocks per EfficientNet stage (0: all)

  @nn.compact
  def __call__(self, images, *, train: bool = False):
    feats = EfficientNet(self.variant, dtype=self.dtype, remat=self.remat,
                         max_repeats=self.max_repeats, name='backbone')(images, train=train)
    p3 = FPN(self.fpn_width, self.dtype, name='fpn')(feats)
    map_logits = nn.Conv(1, (1, 1), dtype=self.dtype, name='dense_head')(nn.relu(p3))[..., 0]
    logits = nn.Dense(2, dtype=self.dtype, name='classifier')(feats['features'].mean((1, 2)))
    return {'logits': logits.astype(jnp.float32), 'map_logits': map_logits.astype(jnp.float32)}


def build(config) -> nn.Module:
  return from_config(Model, config)


def loss_fn(outputs, batch, config):
  w = batch['valid']
  cls = losses.masked_mean(optax.softmax_cross_entropy_with_integer_labels(
      outputs['logits'], batch['label']), w)
  target = losses.resize_map(batch['mask'], outputs['map_logits'].shape[1:])
  dense = losses.bce(outputs['map_logits'], target, w)
  weight = 0.0 if config.model.no_map else config.model.map_weight  # mask_source "none"
  return cls + weight * dense, {'loss_cls': cls, 'loss_map': dense}


def score(outputs):
  return jax.nn.softmax(outputs['logits'], -1)[:, 1]


def localization(outputs):
  return jax.nn.sigmoid(outputs['map_logits'])
