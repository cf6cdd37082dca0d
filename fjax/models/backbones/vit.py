"""Vision Transformer in the layout of timm's `vit_small_patch16_224` (pre-LN blocks, class
token, exact GELU, LayerNorm eps 1e-6), so that converted timm weights load by name.

`ViT(...)(x, train=...)` returns `tokens` (B, 1 + h*w, D) after the final norm, `grid`
(h, w) as a static tuple, `blocks` (the output of every block, before the final norm)
when `return_blocks=True`, and `logits` when `num_classes > 0`.

Position embeddings: `learned` (timm's parameter, resampled bicubically when the input grid
differs from the one it was made for) or `sincos` (fixed 2-D sin-cos, no parameter; FoCus).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from fjax.util.errors import UserError


def sincos_2d(grid: tuple[int, int], dim: int) -> np.ndarray:
  """Fixed 2-D sin-cos embedding (MAE): half the channels encode the row, half the column;
  each half is [sin(p w_k), cos(p w_k)] with w_k = 10000^(-k / (dim/4))."""
  assert dim % 4 == 0, dim
  omega = 1.0 / 10000 ** (np.arange(dim // 4, dtype=np.float64) / (dim / 4))

  def embed(pos):
    out = np.outer(pos.reshape(-1), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)
  rows, cols = np.meshgrid(np.arange(grid[0], dtype=np.float64),
                           np.arange(grid[1], dtype=np.float64), indexing='ij')
  # MAE orders the halves (width, height).
  return np.concatenate([embed(cols), embed(rows)], axis=1).astype(np.float32)


def resample_pos_embed(pos_embed, grid: tuple[int, int], num_prefix: int = 1):
  """(1, P + h0*w0, D) -> (1, P + h*w, D): bicubic (a = -0.5, antialiased when shrinking),
  as timm's `resample_abs_pos_embed`; prefix tokens are kept as they are."""
  prefix, patches = pos_embed[:, :num_prefix], pos_embed[:, num_prefix:]
  old = int(round(patches.shape[1] ** 0.5))
  if (old, old) == tuple(grid):
    return pos_embed
  patches = patches.reshape(1, old, old, -1)
  patches = jax.image.resize(patches.astype(jnp.float32), (1, *grid, patches.shape[-1]),
                             method='cubic', antialias=True)
  return jnp.concatenate([prefix, patches.reshape(1, grid[0] * grid[1], -1)], axis=1)


class Attention(nn.Module):
  """Multi-head self-attention; with `return_weights` also the softmax weights
  [B, heads, N, N] (computed explicitly instead of by the fused kernel). Whatever
  `dtype`, the scores q k^T are float32 and so is their softmax (jax.nn's attention does
  the same); the weights times v run in `dtype`, the returned weights stay float32."""
  num_heads: int
  return_weights: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    b, n, d = x.shape
    qkv = nn.Dense(3 * d, dtype=self.dtype, name='qkv')(x)
    q, k, v = (t[:, :, 0] for t in
               jnp.split(qkv.reshape(b, n, 3, self.num_heads, d // self.num_heads), 3, axis=2))
    weights = None
    if self.return_weights:  # softmax(q k^T / sqrt(d_head)) v
      scores = jnp.einsum('bqhd,bkhd->bhqk', q, k, preferred_element_type=jnp.float32)
      weights = jax.nn.softmax(scores / np.sqrt(q.shape[-1]), -1)
      x = jnp.einsum('bhqk,bkhd->bqhd', weights.astype(v.dtype), v)
    else:
      x = jax.nn.dot_product_attention(q, k, v)
    return nn.Dense(d, dtype=self.dtype, name='proj')(x.reshape(b, n, d)), weights


class Block(nn.Module):
  """x + Attn(LN(x)); x + MLP(LN(x))."""
  num_heads: int
  mlp_ratio: float = 4.0
  return_weights: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    """Returns (tokens, attention weights or None)."""
    d = x.shape[-1]
    norm = lambda name: nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, name=name)
    y, weights = Attention(self.num_heads, self.return_weights, self.dtype,
                           name='attn')(norm('norm1')(x))
    x = x + y
    return x + Mlp(int(d * self.mlp_ratio), self.dtype, name='mlp')(norm('norm2')(x)), weights


class Mlp(nn.Module):
  hidden: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    h = nn.gelu(nn.Dense(self.hidden, dtype=self.dtype, name='fc1')(x), approximate=False)
    return nn.Dense(x.shape[-1], dtype=self.dtype, name='fc2')(h)


class PatchEmbed(nn.Module):
  """Non-overlapping p x p patches -> D channels (a strided conv), NHWC out."""
  patch_size: int
  embed_dim: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    return nn.Conv(self.embed_dim, (self.patch_size,) * 2, strides=self.patch_size,
                   padding='VALID', dtype=self.dtype, name='proj')(x)


class ConvStem(nn.Module):
  """Xiao et al. 2021 ("Early convolutions help transformers see better"): log2(p) 3x3
  stride-2 convs (LayerNorm, GELU), widths D/2^k up to D, then a 1x1 conv to D; the same
  token grid as a p x p patch embedding. For ViTs trained from scratch on little data."""
  patch_size: int
  embed_dim: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    n = int(np.log2(self.patch_size))
    if 2 ** n != self.patch_size:
      raise UserError(f'a conv stem needs a power-of-two patch size, not {self.patch_size}')
    for i in range(n):
      x = nn.Conv(self.embed_dim // 2 ** (n - 1 - i), (3, 3), strides=2, padding=1,
                  dtype=self.dtype, name=f'conv{i}')(x)
      x = nn.gelu(nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, name=f'norm{i}')(x),
                  approximate=False)
    return nn.Conv(self.embed_dim, (1, 1), dtype=self.dtype, name='proj')(x)


class ViT(nn.Module):
  """ViT-S/16 by default; `img_size` fixes the learned position-embedding grid."""
  patch_size: int = 16
  embed_dim: int = 384
  depth: int = 12
  num_heads: int = 6
  img_size: int = 224
  pos_embed: str = 'learned'  # learned | sincos | frozen (learned values, no gradient)
  num_classes: int = 0
  return_blocks: bool = False
  return_attention: bool = False   # the last block's attention weights as `attention`
  stem: str = 'patch'  # patch (timm's) | conv (ConvStem)
  dtype: Any = jnp.float32
  remat: bool = False         # recompute each block's activations in the backward pass

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train  # no dropout or BatchNorm
    stems = {'patch': PatchEmbed, 'conv': ConvStem}
    if self.stem not in stems:
      raise UserError(f'ViT stem {self.stem!r}: use patch or conv')
    x = stems[self.stem](self.patch_size, self.embed_dim, self.dtype,
                         name=f'{self.stem}_embed')(x)
    b, h, w, d = x.shape
    x = x.reshape(b, h * w, d)
    cls = self.param('cls_token', nn.initializers.normal(1e-6), (1, 1, d))
    x = jnp.concatenate([jnp.broadcast_to(cls, (b, 1, d)).astype(x.dtype), x], axis=1)
    if self.pos_embed == 'sincos':
      pos = jnp.concatenate([jnp.zeros((1, 1, d)), sincos_2d((h, w), d)[None]], axis=1)
    else:
      side = self.img_size // self.patch_size
      if self.pos_embed not in ('learned', 'frozen'):
        raise UserError(f'ViT pos_embed {self.pos_embed!r}: use learned, sincos or frozen')
      pos = self.param('pos_embed', nn.initializers.normal(0.02), (1, 1 + side * side, d))
      if self.pos_embed == 'frozen':  # kept at its loaded values: zero gradient
        pos = jax.lax.stop_gradient(pos)
      pos = resample_pos_embed(pos, (h, w))
    x = x + pos.astype(x.dtype)
    blocks = []
    for i in range(self.depth):
      last = i == self.depth - 1
      block = nn.remat(Block) if self.remat else Block
      x, weights = block(self.num_heads, return_weights=self.return_attention and last,
                         dtype=self.dtype, name=f'blocks_{i}')(x)
      blocks.append(x)
    tokens = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, name='norm')(x)
    out = {'tokens': tokens, 'grid': (h, w)}
    if self.return_blocks:
      out['blocks'] = tuple(blocks)
    if self.return_attention:
      out['attention'] = weights
    if self.num_classes:
      out['logits'] = nn.Dense(self.num_classes, dtype=self.dtype, name='head')(tokens[:, 0])
    return out
