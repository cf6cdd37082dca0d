"""MSCCNet (Multi-Spectral Class Center Network): dilated ResNet-50, MFA, MSCC, decoder.

outputs: `cls_logits` [B, 2] (GAP(layer4) + linear), `seg_logits` [B, H, W, 2] (decoder
upsampled x8), `mscc_logits` [B, H, W, 2] (the coarse multi-spectral map fused over the N
groups, eq. 15, upsampled x8). Loss CE_cls + CE_seg + CE_mscc (eq. 16, weights from config).
SPEC section 2 condenses the paper; every ablation of tables 6-8 is a config switch.
"""
from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from fjax.models import image_ops, losses
from fjax.models.backbones.resnet import ResNet
from fjax.models.config_fields import from_config
from fjax.models.layers import batch_norm

BATCH_KEYS = ('image', 'label', 'mask')
RNGS = ('dropout',)
CONFIG = 'msccnet'  # configs/msccnet.py
SKIPS_IGNORE = True  # its losses skip the padded border of input.augment=msccnet


class ConvBNReLU(nn.Module):
  features: int
  kernel: int = 3
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    pad = self.kernel // 2
    x = nn.Conv(self.features, (self.kernel,) * 2, padding=[(pad, pad)] * 2, use_bias=False,
                dtype=self.dtype)(x)
    return nn.relu(batch_norm(train, self.dtype)(x))


class PixelHead(nn.Module):
  """1x1 conv-BN-ReLU, dropout 0.1 (of pixels; `channel_dropout`: of whole channels, as
  the released Dropout2d), 1x1 conv to `classes` logits."""
  hidden: int
  classes: int = 2
  dtype: Any = jnp.float32
  channel_dropout: bool = False

  @nn.compact
  def __call__(self, x, train: bool):
    x = ConvBNReLU(self.hidden, 1, self.dtype)(x, train)
    x = nn.Dropout(0.1, broadcast_dims=(1, 2) if self.channel_dropout else (),
                   deterministic=not train)(x)
    return nn.Conv(self.classes, (1, 1), dtype=self.dtype)(x)


class GCN(nn.Module):
  """Graph convolution over the N spectral class-center nodes (GloRe style):
  out = W2 relu(W1 x + x), W1 mixing nodes (1x1 conv over N, with bias unless
  `node_bias=False` as released), W2 a linear over the c channels without bias.
  x: [B, N, k, c]."""
  node_bias: bool = True

  @nn.compact
  def __call__(self, x):
    n = x.shape[1]
    w1 = self.param('node_mix', nn.initializers.lecun_normal(), (n, n))
    mixed = jnp.einsum('nm,bmkc->bnkc', w1, x)
    if self.node_bias:
      mixed = mixed + self.param('node_bias', nn.initializers.zeros, (n,))[None, :, None, None]
    return nn.Dense(x.shape[-1], use_bias=False, name='channel')(nn.relu(mixed + x))


def released_dct_filter(h: int, w: int, channels: int, k: int = 8) -> np.ndarray:
  """The released MultiSpectralDCTLayer's fixed filter, (h, w, channels): its k*k (u, v)
  bases (k = 8 whatever spectral_k is) each on a run of channels // k^2 consecutive
  channels; channels past k^2 runs (all of them when channels < k^2) get 0."""
  bases = image_ops.dct_bases(h, w, k)
  run = channels // (k * k)
  out = np.zeros((h, w, channels), np.float32)
  if run:
    out[..., :run * k * k] = np.repeat(bases, run, axis=0).transpose(1, 2, 0)
  return out


def class_centers(probs, feats):
  """Eq. 10, all groups at once: probs [B, N, hw, k], feats [B, N, hw, c] -> [B, N, k, c]
  (sums over pixels, no normalisation, as SPEC 2 fixes)."""
  return jnp.einsum('bnpk,bnpc->bnkc', probs, feats)


class MSCC(nn.Module):
  """Multi-spectral class centers (eqs. 7-15) on F_A [B, h, w, C]."""
  groups: int = 4            # N = k_dct^2 spectral groups
  dct: bool = True
  gcn: bool = True
  fuse: str = 'concat'       # concat | add (table 8)
  classes: int = 2
  official: bool = False     # the released module (see Model.official)
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, f_a, train: bool):
    b, h, w, channels = f_a.shape
    n = self.groups
    c = channels // n
    groups = f_a.reshape(b, h, w, n, c).transpose(0, 3, 1, 2, 4)          # [B, N, h, w, c]
    if self.dct and self.official:  # released: per-channel filter of 64 frequencies
      spectral = (f_a * jnp.asarray(released_dct_filter(h, w, channels), f_a.dtype)).reshape(
          b, h, w, n, c).transpose(0, 3, 1, 2, 4)
    elif self.dct:  # eq. 7: group n times its (u, v) DCT basis image
      k = int(round(math.sqrt(n)))
      bases = jnp.asarray(image_ops.dct_bases(h, w, k), groups.dtype)    # [N, h, w]
      spectral = groups * bases[None, :, :, :, None]
    else:
      spectral = groups
    # Eq. 9: one pixel head shared by the groups (groups folded into the batch).
    p_a = PixelHead(c, self.classes, self.dtype, self.official, name='coarse_head')(
        spectral.reshape(b * n, h, w, c), train).reshape(b, n, h, w, self.classes)
    if self.official:  # released fusion: one weight per group, shared by the classes
      fused = nn.Dense(1, dtype=self.dtype, name='group_fuse')(p_a.transpose(0, 2, 3, 4, 1))[..., 0]
    else:  # eq. 15: a 1x1 conv across the N groups' predictions -> the coarse map
      fused = nn.Conv(self.classes, (1, 1), dtype=self.dtype, name='group_fuse')(
          p_a.transpose(0, 2, 3, 1, 4).reshape(b, h, w, n * self.classes))
    p_a = p_a.astype(jnp.float32)
    # Eq. 10 weighs pixels by class probability; the released code by the raw logits.
    probs = (p_a if self.official else jax.nn.softmax(p_a, axis=-1)).reshape(b, n, h * w, -1)
    centers = class_centers(probs, spectral.reshape(b, n, h * w, c).astype(jnp.float32))
    if self.gcn:  # eq. 11
      centers = GCN(node_bias=not self.official, name='gcn')(centers)
    # Eqs. 12-13: pixel-to-center attention of each group's slice of F_A.
    feats = groups.reshape(b, n, h * w, c).astype(jnp.float32)
    attn = jax.nn.softmax(jnp.einsum('bnpc,bnkc->bnpk', feats, centers), axis=-1)
    refined = jnp.einsum('bnpk,bnkc->bnpc', attn, centers)
    refined = refined.reshape(b, n, h, w, c).transpose(0, 2, 3, 1, 4).reshape(b, h, w, -1)
    refined = refined.astype(f_a.dtype)
    self.sow('intermediates', 'refined', refined)
    # Eq. 14: F_M = conv(cat(F_A, F'_A)) (or F_A + F'_A for the ablation).
    joined = jnp.concatenate([f_a, refined], -1) if self.fuse == 'concat' else f_a + refined
    return ConvBNReLU(channels, 3, self.dtype, name='fuse_conv')(joined, train), fused


class Model(nn.Module):
  channels: int = 512
  groups: int = 4
  dct: bool = True
  gcn: bool = True
  fuse: str = 'concat'
  mfa: bool = True
  mscc: bool = True          # False: table 6's "Base" / "+MFA" rows (decoder on F_A)
  output_stride: int = 8
  depth: int = 50
  deep_stem: bool = True     # ResNet-50 v1c, as released (mmseg's resnet50_v1c weights)
  # The released forward pass where the paper differs: DCT filter, centres from raw logits,
  # GCN without node bias, one fusion weight per group, Dropout2d.
  official: bool = False
  dtype: Any = jnp.float32
  remat: bool = False         # model.remat: backbone blocks recomputed in the backward pass

  @nn.compact
  def __call__(self, images, *, train: bool = False):
    feats = ResNet(self.depth, deep_stem=self.deep_stem, output_stride=self.output_stride,
                   dtype=self.dtype, remat=self.remat, name='backbone')(images, train=train)
    cls_logits = nn.Dense(2, dtype=self.dtype, name='cls_head')(feats['layer4'].mean((1, 2)))
    if self.mfa:  # MFA: layer2..4 -> 3x3 conv-BN-ReLU to C each, concat, 3x3 conv-BN-ReLU
      size = feats['layer2'].shape[1:3]
      levels = [ConvBNReLU(self.channels, 3, self.dtype, name=f'mfa_{name}')(
          _resize(feats[name], size), train) for name in ('layer2', 'layer3', 'layer4')]
      f_a = ConvBNReLU(self.channels, 3, self.dtype, name='mfa_fuse')(
          jnp.concatenate(levels, -1), train)
    else:
      f_a = ConvBNReLU(self.channels, 3, self.dtype, name='reduce')(feats['layer4'], train)
    out = {'cls_logits': cls_logits.astype(jnp.float32)}
    hw = images.shape[1:3]
    if self.mscc:
      f_a, coarse = MSCC(self.groups, self.dct, self.gcn, self.fuse, official=self.official,
                         dtype=self.dtype, name='mscc')(f_a, train)
      out['mscc_logits'] = _resize(coarse.astype(jnp.float32), hw)
    seg = PixelHead(self.channels, 2, self.dtype, self.official, name='decoder')(f_a, train)
    out['seg_logits'] = _resize(seg.astype(jnp.float32), hw)  # logits upsampled in float32
    return out


def _resize(x, hw):
  """Bilinear resize of [B, h, w, C] to hw (no-op when equal)."""
  if tuple(x.shape[1:3]) == tuple(hw):
    return x
  return jax.image.resize(x, (x.shape[0], *hw, x.shape[-1]), method='bilinear')


def build(config) -> nn.Module:
  return from_config(Model, config)


def _ce(logits, labels, weight):
  """Softmax cross-entropy averaged over images of weight 1."""
  return losses.masked_mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels),
                            weight)


def _pixel_ce(logits, mask, weight):
  """Softmax cross-entropy averaged over the batch's known pixels (mask >= 0: the
  released CE's ignore index marks the padded border, `examples.IGNORE`)."""
  known = (mask >= 0) * weight[:, None, None]
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, (mask > 0.5).astype(jnp.int32))
  return jnp.sum(ce * known) / jnp.maximum(jnp.sum(known), 1.0)


def loss_fn(outputs, batch, config):
  w, mask = batch['valid'], batch['mask']
  terms = {'loss_cls': _ce(outputs['cls_logits'], batch['label'], w),
           'loss_seg': _pixel_ce(outputs['seg_logits'], mask, w)}
  m = config.model
  total = m.cls_weight * terms['loss_cls'] + m.seg_weight * terms['loss_seg']
  if 'mscc_logits' in outputs:
    terms['loss_mscc'] = _pixel_ce(outputs['mscc_logits'], mask, w)
    total = total + m.mscc_weight * terms['loss_mscc']
  return total, terms


def score(outputs):
  return jax.nn.softmax(outputs['cls_logits'], -1)[:, 1]


def localization(outputs):
  return jax.nn.softmax(outputs['seg_logits'], -1)[..., 1]
