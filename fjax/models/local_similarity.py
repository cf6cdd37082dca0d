"""Learnable local similarity (SPEC 3): an Xception Y-net. The encoder's middle feature
feeds the learnable local similarity module (LLSM: an (hw) x (hw) map of pairwise
dissimilarity); a U-Net decoder with encoder skips and cross-level attentional feature
fusion (CLAFFM) predicts the mask; a classifier on the pooled decoder output the label.

outputs: `logit` [B], `mask_logits` [B, H, W], `sim_logits` [B, hw, hw].
Loss L = L_CLS + alpha L_LS + beta L_LOC (BCE each).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from fjax.models import image_ops, losses
from fjax.models.backbones.xception import Xception
from fjax.models.config_fields import from_config
from fjax.models.layers import batch_norm

BATCH_KEYS = ('image', 'label', 'mask')
RNGS = ()
CONFIG = 'local_similarity'  # configs/local_similarity.py
# Decoder stages, coarse to fine: (encoder skip tap, channels after the stage's convs).
STAGES = (('block11', 256), ('block2', 128), ('block1', 64), ('conv2', 32))


class LLSM(nn.Module):
  """M[p, q] = w2 . relu(A F_p + B F_q + b1) + b2 for all ordered pairs of positions: the
  first layer of f on the concatenated pair [F_p, F_q] is split into two per-position
  projections added by broadcasting, so memory grows as (hw)^2 x hidden, never as
  (hw)^2 x 2C. Returns logits [B, hw, hw]."""
  hidden: int = 64
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, feat):
    b, h, w, c = feat.shape
    f = feat.reshape(b, h * w, c)
    # The pair layer's (2C, hidden) kernel, kept as its two halves acting on F_p and F_q.
    kernel_a = self.param('kernel_p', nn.initializers.lecun_normal(), (c, self.hidden))
    kernel_b = self.param('kernel_q', nn.initializers.lecun_normal(), (c, self.hidden))
    bias = self.param('bias', nn.initializers.zeros, (self.hidden,))
    p = jnp.einsum('bnc,ch->bnh', f, kernel_a.astype(self.dtype))
    q = jnp.einsum('bnc,ch->bnh', f, kernel_b.astype(self.dtype))
    w2 = self.param('out_kernel', nn.initializers.lecun_normal(), (self.hidden, 1))[:, 0]
    b2 = self.param('out_bias', nn.initializers.zeros, ())
    hidden = nn.relu(p[:, :, None, :] + q[:, None, :, :] + bias.astype(self.dtype))
    # The (hw)^2 x hidden tensor stays in the compute dtype (it is the memory); its sum over
    # `hidden` accumulates in float32 and the logits are float32.
    return jnp.einsum('bpqh,h->bpq', hidden, w2.astype(self.dtype),
                      preferred_element_type=jnp.float32) + b2


def naive_pairs(feat, kernel_p, kernel_q, bias, w2, b2):
  """The same map from the explicit (hw)^2 x 2C pair tensor (tests and the benchmark)."""
  b, h, w, c = feat.shape
  f = feat.reshape(b, h * w, c)
  n = h * w
  pairs = jnp.concatenate([jnp.broadcast_to(f[:, :, None], (b, n, n, c)),
                           jnp.broadcast_to(f[:, None, :], (b, n, n, c))], -1)
  kernel = jnp.concatenate([kernel_p, kernel_q], 0)  # the pair layer's (2C, hidden) kernel
  return nn.relu(pairs @ kernel + bias) @ w2 + b2


def similarity_target(mask, hw):
  """M_gt [B, hw, hw]: the mask area-downsampled to hw, flattened to m';
  M_gt[p, q] = 1 where |m'_p - m'_q| > 0.5 (dissimilar), eqs. 3-4."""
  m = losses.resize_map(mask, hw).reshape(mask.shape[0], -1)
  return (jnp.abs(m[:, :, None] - m[:, None, :]) > 0.5).astype(jnp.float32)


class CLAFFM(nn.Module):
  """Channel attention of the current feature A from the previous, coarser feature B:
  adaptive average pool B to 4x4, 4x4 conv (valid -> 1x1) to C_A / 4 channels (the paper
  leaves the width open; a squeeze-excitation ratio), ReLU, 1x1 conv to C_A, sigmoid;
  A times the gate. Returns (gated A, gate)."""
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, a, b):
    pooled = image_ops.adaptive_avg_pool(b.astype(jnp.float32), (4, 4))  # means in float32
    g = nn.relu(nn.Conv(max(a.shape[-1] // 4, 8), (4, 4), padding='VALID',
                        dtype=self.dtype)(pooled))
    gate = nn.sigmoid(nn.Conv(a.shape[-1], (1, 1), dtype=self.dtype)(g))  # [B, 1, 1, C_A]
    return a * gate, gate


class DecoderStage(nn.Module):
  """Upsample to the skip's size, concatenate the skip, two 3x3 conv-BN-ReLU."""
  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, skip, train: bool):
    x = jax.image.resize(x, (x.shape[0], *skip.shape[1:3], x.shape[-1]), 'bilinear')
    x = jnp.concatenate([x, skip.astype(x.dtype)], -1)
    for _ in range(2):
      x = nn.Conv(self.features, (3, 3), padding=[(1, 1)] * 2, use_bias=False,
                  dtype=self.dtype)(x)
      x = nn.relu(batch_norm(train, self.dtype)(x))
    return x


class Model(nn.Module):
  llsm_tap: str = 'block7'
  hidden: int = 64
  claffm: bool = True
  llsm: bool = True             # table IV rows: LLSM and FLM (decoder + CLAFFM) switches;
  flm: bool = True              # without FLM the classifier pools the encoder's features
  dtype: Any = jnp.float32
  remat: bool = False         # model.remat: backbone blocks recomputed in the backward pass
  middle_blocks: int = 8      # model.middle_blocks: Xception middle-flow blocks (tests: 1)

  @nn.compact
  def __call__(self, images, *, train: bool = False):
    taps = Xception(dtype=self.dtype, remat=self.remat,
                    middle_blocks=self.middle_blocks, name='backbone')(images, train=train)
    out = {}
    if self.llsm:
      out['sim_logits'] = LLSM(self.hidden, self.dtype, name='llsm')(
          taps[self.llsm_tap]).astype(jnp.float32)
    x = taps['features']
    if self.flm:
      for i, (skip, width) in enumerate(STAGES):
        y = DecoderStage(width, self.dtype, name=f'up{i}')(x, taps[skip], train)
        if self.claffm:
          y, _ = CLAFFM(self.dtype, name=f'claffm{i}')(y, x)
        x = y
      mask_logits = nn.Conv(1, (1, 1), dtype=self.dtype, name='mask_head')(x)
      out['mask_logits'] = jax.image.resize(
          mask_logits, (x.shape[0], *images.shape[1:3], 1), 'bilinear')[..., 0].astype(jnp.float32)
    out['logit'] = nn.Dense(1, dtype=self.dtype, name='classifier')(x.mean((1, 2)))[:, 0].astype(
        jnp.float32)
    return out


def build(config) -> nn.Module:
  return from_config(Model, config)


def loss_fn(outputs, batch, config):
  w = batch['valid']
  terms = {'loss_cls': losses.bce(outputs['logit'], batch['label'].astype(jnp.float32), w)}
  total = terms['loss_cls']
  if 'sim_logits' in outputs:
    side = int(round(outputs['sim_logits'].shape[1] ** 0.5))
    terms['loss_ls'] = losses.bce(outputs['sim_logits'],
                                  similarity_target(batch['mask'], (side, side)), w)
    total = total + config.model.alpha * terms['loss_ls']
  if 'mask_logits' in outputs:
    terms['loss_loc'] = losses.bce(outputs['mask_logits'], batch['mask'], w)
    total = total + config.model.beta * terms['loss_loc']
  return total, terms


def score(outputs):
  return jax.nn.sigmoid(outputs['logit'])


def panels(outputs, masks):
  """The predicted similarity map beside its ground truth (the paper's fig. 5 rows)."""
  if 'sim_logits' not in outputs:
    return {}
  side = int(round(outputs['sim_logits'].shape[1] ** 0.5))
  return {'similarity': jax.nn.sigmoid(outputs['sim_logits']),
          'similarity_gt': similarity_target(masks, (side, side))}


def localization(outputs):
  """The FLM's mask probability; without FLM (table IV's baseline rows) no map: 0."""
  if 'mask_logits' not in outputs:
    return jnp.zeros((outputs['logit'].shape[0], 1, 1))
  return jax.nn.sigmoid(outputs['mask_logits'])
