"""ResNet-50 in the layout of timm's `resnet50` (stride on the 3x3 conv), with the deep
stem of `resnet50c` (v1c: three 3x3 convs) as an option and dilation for output stride
16 or 8, as DeepLab-style segmentation nets (MSCCNet) use it.

`ResNet(...)(x, train=...)` returns `layer1` .. `layer4` (256, 512, 1024, 2048 channels)
and `logits` when `num_classes > 0`.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from fjax.models.layers import batch_norm

# Bottleneck blocks per layer; 14 (one per layer) keeps tests and tiny presets fast.
DEPTHS = {14: (1, 1, 1, 1), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


class Bottleneck(nn.Module):
  """1x1 -> 3x3 (stride, dilation) -> 1x1 (x4), + projection shortcut where shapes change."""
  planes: int
  strides: int = 1
  dilation: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    conv = lambda c, k, name, s=1, d=1: nn.Conv(
        c, (k, k), strides=s, padding=[(d * (k // 2),) * 2] * 2, kernel_dilation=d,
        use_bias=False, dtype=self.dtype, name=name)
    bn = lambda name: batch_norm(train, self.dtype, name=name)
    out = self.planes * 4
    y = nn.relu(bn('bn1')(conv(self.planes, 1, 'conv1')(x)))
    y = nn.relu(bn('bn2')(conv(self.planes, 3, 'conv2', self.strides, self.dilation)(y)))
    y = bn('bn3')(conv(out, 1, 'conv3')(y))
    if self.strides != 1 or x.shape[-1] != out:
      x = bn('downsample_1')(conv(out, 1, 'downsample_0', self.strides)(x))
    return nn.relu(x + y)


class ResNet(nn.Module):
  depth: int = 50
  deep_stem: bool = False      # resnet50c (v1c)
  output_stride: int = 32      # 32, 16 (layer4 dilated) or 8 (layer3 and layer4 dilated)
  num_classes: int = 0
  dtype: Any = jnp.float32
  remat: bool = False         # recompute each block's activations in the backward pass

  @nn.compact
  def __call__(self, x, train: bool = False):
    conv = lambda c, k, s, name: nn.Conv(c, (k, k), strides=s, padding=[(k // 2,) * 2] * 2,
                                         use_bias=False, dtype=self.dtype, name=name)
    if self.deep_stem:
      x = nn.relu(batch_norm(train, self.dtype, name='conv1_1')(conv(32, 3, 2, 'conv1_0')(x)))
      x = nn.relu(batch_norm(train, self.dtype, name='conv1_4')(conv(32, 3, 1, 'conv1_3')(x)))
      x = conv(64, 3, 1, 'conv1_6')(x)
    else:
      x = conv(64, 7, 2, 'conv1')(x)
    x = nn.relu(batch_norm(train, self.dtype, name='bn1')(x))
    x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
    out, stride, dilation = {}, 4, 1
    for i, blocks in enumerate(DEPTHS[self.depth]):
      layer_stride = 1 if i == 0 else 2
      first_dilation = dilation
      if stride * layer_stride > self.output_stride:  # trade the stride for dilation
        dilation, layer_stride = dilation * layer_stride, 1
      stride *= layer_stride
      for j in range(blocks):  # timm: a dilated layer's first block keeps the old dilation
        block = nn.remat(Bottleneck, static_argnums=(2,)) if self.remat else Bottleneck
        x = block(64 * 2 ** i, layer_stride if j == 0 else 1,
                       first_dilation if j == 0 else dilation, dtype=self.dtype,
                       name=f'layer{i + 1}_{j}')(x, train)
      out[f'layer{i + 1}'] = x
    if self.num_classes:
      out['logits'] = nn.Dense(self.num_classes, dtype=self.dtype, name='fc')(x.mean((1, 2)))
    return out
