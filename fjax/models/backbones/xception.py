"""Xception (Chollet 2017) in the layout of timm's `legacy_xception` (the Keras port that
the FaceForensics++ papers fine-tune), so that converted timm weights load by name.

`Xception(...)(x, train=...)` returns a dict of feature taps: `conv2` (64 ch, stride 2),
`block1` .. `block12` (e.g. `block2`: 256 ch, stride 8; `block11`: 728 ch, stride 16) and,
unless truncated with
`last_block=11`, `features` (2048 ch, stride 32, after conv4/bn4/ReLU), and `logits`
when `num_classes > 0`. `middle_blocks` < 8 computes only the first middle-flow blocks
(block4 ..): the later ones pass their input on, so every tap keeps its name and shape.
It exists for the test presets (a third of the graph to compile); every other preset
and the released architectures use 8.
"""
from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp

from fjax.models.layers import SeparableConv2d, batch_norm

# (in, out, reps, stride, start_with_relu, grow_first) of block1 .. block12.
BLOCKS = ((64, 128, 2, 2, False, True), (128, 256, 2, 2, True, True),
          (256, 728, 2, 2, True, True)) + ((728, 728, 3, 1, True, True),) * 8 + (
              (728, 1024, 2, 2, True, False),)
MIDDLE_FIRST = 3  # block4 (index 3) starts the middle flow


class Block(nn.Module):
  """Residual block: [ReLU, SeparableConv 3x3, BN] x reps (+ max-pool) + skip."""
  features: int
  reps: int
  strides: int = 1
  start_with_relu: bool = True
  grow_first: bool = True
  dtype: Any = jnp.float32
  kernel_init: Callable = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, inp, train: bool):
    in_ch = inp.shape[-1]
    x = inp
    for i in range(self.reps):
      if self.grow_first:
        out = self.features
      else:
        out = in_ch if i < self.reps - 1 else self.features
      if i > 0 or self.start_with_relu:
        x = nn.relu(x)
      # timm's nn.Sequential indices: ReLU, SeparableConv, BN repeat in threes.
      k = 3 * i + (1 if self.start_with_relu else 0)
      x = SeparableConv2d(out, 3, dtype=self.dtype, kernel_init=self.kernel_init,
                          name=f'rep_{k}')(x)
      x = batch_norm(train, self.dtype, name=f'rep_{k + 1}')(x)
    if self.strides != 1:
      x = nn.max_pool(x, (3, 3), (self.strides,) * 2, padding=((1, 1), (1, 1)))
    if self.features != in_ch or self.strides != 1:
      skip = nn.Conv(self.features, (1, 1), strides=self.strides, use_bias=False,
                     dtype=self.dtype, kernel_init=self.kernel_init, name='skip')(inp)
      skip = batch_norm(train, self.dtype, name='skipbn')(skip)
    else:
      skip = inp
    return x + skip


class Xception(nn.Module):
  """Entry, middle and exit flows; `last_block` < 12 truncates (AUNet uses 11)."""
  last_block: int = 12
  num_classes: int = 0
  dtype: Any = jnp.float32
  kernel_init: Callable = nn.initializers.lecun_normal()  # of every conv
  remat: bool = False         # recompute each block's activations in the backward pass
  middle_blocks: int = 8      # middle-flow blocks computed (test presets: 1)

  @nn.compact
  def __call__(self, x, train: bool = False, between=None):
    """`between(i, x) -> x`, if given, is applied to the output of block i (1-based)
    before block i + 1 sees it (AUNet's feature-level mixing)."""
    taps = {}
    init = self.kernel_init
    x = nn.Conv(32, (3, 3), strides=2, padding='VALID', use_bias=False, dtype=self.dtype,
                kernel_init=init, name='conv1')(x)
    x = nn.relu(batch_norm(train, self.dtype, name='bn1')(x))
    x = nn.Conv(64, (3, 3), padding='VALID', use_bias=False, dtype=self.dtype,
                kernel_init=init, name='conv2')(x)
    x = nn.relu(batch_norm(train, self.dtype, name='bn2')(x))
    taps['conv2'] = x
    for i, (_, out, reps, stride, relu_first, grow_first) in enumerate(BLOCKS[:self.last_block]):
      block = nn.remat(Block, static_argnums=(2,)) if self.remat else Block
      if not MIDDLE_FIRST + self.middle_blocks <= i < MIDDLE_FIRST + 8:
        x = block(out, reps, stride, relu_first, grow_first, dtype=self.dtype,
                  kernel_init=init, name=f'block{i + 1}')(x, train)
      if between is not None:
        x = between(i + 1, x)
      taps[f'block{i + 1}'] = x
    if self.last_block < len(BLOCKS):
      return taps
    x = SeparableConv2d(1536, 3, dtype=self.dtype, kernel_init=init, name='conv3')(x)
    x = nn.relu(batch_norm(train, self.dtype, name='bn3')(x))
    x = SeparableConv2d(2048, 3, dtype=self.dtype, kernel_init=init, name='conv4')(x)
    x = nn.relu(batch_norm(train, self.dtype, name='bn4')(x))
    taps['features'] = x
    if self.num_classes:
      taps['logits'] = nn.Dense(self.num_classes, dtype=self.dtype, name='fc')(x.mean((1, 2)))
    return taps
