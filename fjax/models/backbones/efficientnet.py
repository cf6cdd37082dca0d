"""EfficientNet-B4 in the layout of timm's `efficientnet_b4` (PyTorch padding k//2, BN eps
1e-5) and `tf_efficientnet_b4` (TensorFlow 'SAME' padding, BN eps 1e-3), so that converted
timm weights load by name.

`EfficientNet(...)(x, train=...)` returns the multi-scale features an FPN takes,
`stride2` .. `stride32` (the ends of stages 1, 2, 3, 5, 7: 24, 32, 56, 160, 448 channels
for B4, as timm's `features_only`), `features` (after conv_head: 1792 channels) and
`logits` when `num_classes > 0`.
"""
from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from fjax.models.layers import DepthwiseConv, batch_norm

# EfficientNet-B0 stages: (block type, repeats, kernel, stride, expansion, channels);
# every block has squeeze-excitation with ratio 0.25 of the block's input channels.
B0_STAGES = (('ds', 1, 3, 1, 1, 16), ('ir', 2, 3, 2, 6, 24), ('ir', 2, 5, 2, 6, 40),
             ('ir', 3, 3, 2, 6, 80), ('ir', 3, 5, 1, 6, 112), ('ir', 4, 5, 2, 6, 192),
             ('ir', 1, 3, 1, 6, 320))
SCALING = {'b0': (1.0, 1.0), 'b4': (1.4, 1.8)}   # (width, depth) multipliers
TAP_STAGES = {0: 'stride2', 1: 'stride4', 2: 'stride8', 4: 'stride16', 6: 'stride32'}


def round_channels(channels: float, multiplier: float, divisor: int = 8) -> int:
  """timm's make_divisible: nearest multiple of 8, never below 90% of the scaled value."""
  v = channels * multiplier
  new = max(divisor, int(v + divisor / 2) // divisor * divisor)
  return new + divisor if new < 0.9 * v else new


def conv_bn(x, train: bool, features: int, kernel: int = 1, strides: int = 1,
            groups: int = 1, act: bool = True, *, conv_name: str, bn_name: str,
            tf_same: bool, dtype: Any):
  """Conv + BN (+ SiLU) named in the calling module: 'SAME' padding and BN eps 1e-3 for
  the TF ports, k//2 padding and eps 1e-5 otherwise."""
  pad = 'SAME' if tf_same else [(kernel // 2,) * 2] * 2
  if groups > 1 and groups == features == x.shape[-1]:
    x = DepthwiseConv(kernel, strides, pad, dtype=dtype, name=conv_name)(x)
  else:
    x = nn.Conv(features, (kernel,) * 2, strides=strides, padding=pad,
                feature_group_count=groups, use_bias=False, dtype=dtype, name=conv_name)(x)
  x = batch_norm(train, dtype, bn_name, 1e-3 if tf_same else 1e-5)(x)
  return nn.silu(x) if act else x


class SqueezeExcite(nn.Module):
  """x * sigmoid(W2 silu(W1 mean(x)))."""
  reduced: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    s = x.mean((1, 2), keepdims=True)
    s = nn.silu(nn.Conv(self.reduced, (1, 1), dtype=self.dtype, name='conv_reduce')(s))
    s = nn.Conv(x.shape[-1], (1, 1), dtype=self.dtype, name='conv_expand')(s)
    return x * nn.sigmoid(s)


class MBBlock(nn.Module):
  """Depthwise-separable ('ds') or inverted-residual ('ir') block with SE, timm's names."""
  kind: str
  features: int
  kernel: int
  strides: int
  expansion: int
  tf_same: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    inp, in_ch = x, x.shape[-1]
    kw = dict(tf_same=self.tf_same, dtype=self.dtype)
    mid = in_ch * self.expansion
    if self.kind == 'ir':
      x = conv_bn(x, train, mid, conv_name='conv_pw', bn_name='bn1', **kw)
    dw_bn = 'bn2' if self.kind == 'ir' else 'bn1'
    x = conv_bn(x, train, mid, self.kernel, self.strides, groups=mid, conv_name='conv_dw',
                bn_name=dw_bn, **kw)
    x = SqueezeExcite(round(mid * 0.25 / self.expansion), self.dtype, name='se')(x)
    names = ('conv_pwl', 'bn3') if self.kind == 'ir' else ('conv_pw', 'bn2')
    x = conv_bn(x, train, self.features, act=False, conv_name=names[0], bn_name=names[1], **kw)
    if self.strides == 1 and in_ch == self.features:
      x = x + inp
    return x


class EfficientNet(nn.Module):
  variant: str = 'b4'
  tf_same: bool = False       # tf_efficientnet_*: TensorFlow padding and BN eps
  num_classes: int = 0
  dtype: Any = jnp.float32
  remat: bool = False         # recompute each block's activations in the backward pass
  max_repeats: int = 0        # > 0: at most this many blocks per stage (test presets: 1)

  @nn.compact
  def __call__(self, x, train: bool = False):
    width, depth = SCALING[self.variant]
    block = nn.remat(MBBlock, static_argnums=(2,)) if self.remat else MBBlock
    kw = dict(tf_same=self.tf_same, dtype=self.dtype)
    x = conv_bn(x, train, round_channels(32, width), 3, 2, conv_name='conv_stem',
                bn_name='bn1', **kw)
    out = {}
    for s, (kind, repeats, kernel, stride, expansion, channels) in enumerate(B0_STAGES):
      blocks = int(math.ceil(repeats * depth))
      for b in range(min(blocks, self.max_repeats or blocks)):
        x = block(kind, round_channels(channels, width), kernel, stride if b == 0 else 1,
                    expansion, name=f'blocks_{s}_{b}', **kw)(x, train)
      if s in TAP_STAGES:
        out[TAP_STAGES[s]] = x
    x = conv_bn(x, train, round_channels(1280, width), conv_name='conv_head', bn_name='bn2',
                **kw)
    out['features'] = x
    if self.num_classes:
      out['logits'] = nn.Dense(self.num_classes, dtype=self.dtype,
                               name='classifier')(x.mean((1, 2)))
    return out
