"""FoCus (SPEC 1): weakly supervised forgery-cue discovery with an RGB and an auxiliary
(Sobel by default) ViT branch, CARP maps and Complementary Learning.

outputs: `y_fus` [B, 2] (the detector), `y_loc_rgb`, `y_loc_aux` [B, 2], `a_rgb`,
`a_aux`, `a_fus` [B, h, w] (CAR maps, eqs. 4-5), `a_fus_fake` (eq. 9's fake-class map
fused the same way), `cl_mask` [B, h, w] (1 where the RGB token was kept), `cl_p_rgb`
[B, h, w] (the probability that Algorithm 1's noise keeps it: `keep_probability`).
Loss L = L_loc + alpha L_fus (eqs. 6-8).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from fjax.models import image_ops, losses
from fjax.models.backbones.vit import Block, Mlp, ViT
from fjax.models.config_fields import from_config
from fjax.util.errors import UserError

BATCH_KEYS = ('image', 'label', 'mask')
RNGS = ('gumbel',)
CONFIG = 'focus'  # configs/focus.py
AUX = {'sobel': image_ops.sobel, 'srm': image_ops.srm, 'dct': image_ops.block_dct,
       'rgb': lambda x: x}


class CARP(nn.Module):
  """Classification attentive regions proposal on patch tokens [B, h, w, D]: a 1x1 conv
  to 2 x d maps, y_loc = softmax over classes of the channel-mean of spatial maxima, and
  a = sigmoid(sum_c y_loc[c] * mean_d f'_c) (eq. 4); a' uses the fake class only (eq. 9).
  Returns (y_loc logits [B, 2], a [B, h, w], a' [B, h, w])."""
  d: int = 32
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, f):
    b, h, w, _ = f.shape
    fc = nn.Conv(2 * self.d, (1, 1), dtype=self.dtype, name='proj')(f).reshape(b, h, w, 2, self.d)
    fc = fc.astype(jnp.float32)
    y_loc = fc.max(axis=(1, 2)).mean(-1)               # [B, 2]: max-pool, then mean over d
    probs = jax.nn.softmax(y_loc, -1)
    class_maps = fc.mean(-1)                           # [B, h, w, 2]: mean over the d maps
    a = jax.nn.sigmoid(jnp.einsum('bc,bhwc->bhw', probs, class_maps))   # eq. 4
    a_fake = jax.nn.sigmoid(probs[:, 1, None, None] * class_maps[..., 1])  # eq. 9
    return y_loc, a, a_fake


# Where Algorithm 1 adds the Gumbel noise (`model.cl_noise`): 'probs' to the softmax of
# the pair of scores, as its pseudo-code does (the presets); 'log_probs' to their
# log-softmax, Jang et al.'s Gumbel-softmax (the paper's [50]), whose sampled choice
# follows softmax(scores) and so can be confident (issue 28).
CL_NOISE = {'probs': jax.nn.softmax, 'log_probs': jax.nn.log_softmax}


def keep_probability(scores, noise: str = 'probs'):
  """P(the first token is kept) under the Gumbel noise, in closed form: the argmax of
  l + Gumbel(0, 1) noise picks index 0 with probability softmax(l)[0] (the Gumbel-max
  trick; tau does not move an argmax). With noise on the probabilities (l = softmax
  (scores), Algorithm 1) that is sigmoid(p_0 - p_1), within [0.269, 0.731] as p_0 - p_1
  lies in [-1, 1]; on the log-probabilities it is softmax(scores)[0]."""
  l = CL_NOISE[noise](scores, -1)
  return jax.nn.sigmoid(l[..., 0] - l[..., 1])


def straight_through_choice(scores, key, tau: float = 1.0, noise: str = 'probs'):
  """Algorithm 1: softmax over the pair of token scores [..., 2], Gumbel noise (only when
  `key` is given), softmax at temperature tau, hard one-hot of the argmax with the soft
  probabilities' gradient. Written hard + (soft - stop_gradient(soft)) rather than
  hard - stop_gradient(soft) + soft: the same gradient, and the forward value is exactly
  one-hot (x - x is exactly 0 in floating point; (1 - s) + s need not be 1)."""
  logits = CL_NOISE[noise](scores, -1)
  if key is not None:
    logits = logits + jax.random.gumbel(key, logits.shape, logits.dtype)
  soft = jax.nn.softmax(logits / tau, -1)
  hard = jax.nn.one_hot(jnp.argmax(soft, -1), 2, dtype=soft.dtype)
  return hard + (soft - jax.lax.stop_gradient(soft))


class TokenScore(nn.Module):
  """The per-token importance MLP of one modality (Algorithm 1's MLP_0 / MLP_1; the paper
  gives no width): 'quarter' D -> D/4 (GELU) -> 1; 'vit' a ViT MLP block D -> 4D (GELU)
  -> D, then D -> 1 (the reading whose total matches table VIII's 47.4M)."""
  kind: str = 'quarter'
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z):
    d = z.shape[-1]
    if self.kind == 'vit':
      h = Mlp(4 * d, self.dtype, name='mlp')(z)
    elif self.kind == 'quarter':
      h = nn.gelu(nn.Dense(d // 4, dtype=self.dtype)(z), approximate=False)
    else:
      raise UserError(f'model.score_mlp={self.kind!r}: use quarter or vit')
    return nn.Dense(1, dtype=self.dtype)(h)[..., 0]


class Model(nn.Module):
  aux: str = 'sobel'
  carp: bool = True
  cl: bool = True
  d: int = 32
  embed_dim: int = 384
  depth: int = 12
  num_heads: int = 6
  img_size: int = 224
  patch_size: int = 16
  stem: str = 'patch'
  # 'sincos': fixed 2-D sin-cos (the paper's "fixed positional encoding"); 'learned':
  # DeiT-S's learned embedding, trained; 'frozen': DeiT-S's, never updated
  pos_embed: str = 'sincos'
  score_mlp: str = 'quarter'  # TokenScore.kind
  tau: float = 1.0
  cl_noise: str = 'probs'     # CL_NOISE
  dtype: Any = jnp.float32
  remat: bool = False         # model.remat: backbone blocks recomputed in the backward pass

  def _branch(self, x, name):
    vit = ViT(embed_dim=self.embed_dim, depth=self.depth, num_heads=self.num_heads,
              img_size=self.img_size, patch_size=self.patch_size,
              pos_embed=self.pos_embed,
              return_attention=not self.carp, stem=self.stem, dtype=self.dtype,
              remat=self.remat, name=name)(x)
    h, w = vit['grid']
    tokens = vit['tokens'][:, 1:]                      # class token dropped for the maps
    f = tokens.reshape(x.shape[0], h, w, -1)
    if self.carp:
      y_loc, a, a_fake = CARP(self.d, self.dtype, name=f'{name}_carp')(f)
    else:  # ablation: the last block's class-token attention, averaged over heads
      attn = vit['attention'][:, :, 0, 1:].mean(1).reshape(x.shape[0], h, w)
      a = a_fake = attn / jnp.maximum(attn.max((1, 2), keepdims=True), 1e-12)
      y_loc = nn.Dense(2, dtype=self.dtype, name=f'{name}_cls')(vit['tokens'][:, 0])
    return tokens, y_loc.astype(jnp.float32), a, a_fake

  @nn.compact
  def __call__(self, images, *, train: bool = False):
    z_rgb, y_rgb, a_rgb, a_rgb_fake = self._branch(images, 'rgb_vit')
    z_aux, y_aux, a_aux, a_aux_fake = self._branch(AUX[self.aux](images), 'aux_vit')
    b, h, w = a_rgb.shape
    if self.cl:  # Complementary Learning (Algorithm 1)
      scores = jnp.stack([TokenScore(self.score_mlp, self.dtype, name='score_rgb')(z_rgb),
                          TokenScore(self.score_mlp, self.dtype, name='score_aux')(z_aux)],
                         -1)
      key = self.make_rng('gumbel') if train else None
      if self.cl_noise not in CL_NOISE:
        raise UserError(f'model.cl_noise={self.cl_noise!r}: use {" | ".join(CL_NOISE)}')
      mask = straight_through_choice(scores.astype(jnp.float32), key, self.tau,
                                     self.cl_noise)  # [B, N, 2]
      m_rgb, m_aux = mask[..., 0], mask[..., 1]
      z_fus = m_rgb[..., None] * z_rgb + m_aux[..., None] * z_aux
      fuse = lambda p, q: m_rgb.reshape(b, h, w) * p + m_aux.reshape(b, h, w) * q  # eq. 5
      cl_mask = m_rgb.reshape(b, h, w)
      p_rgb = keep_probability(scores.astype(jnp.float32), self.cl_noise).reshape(b, h, w)
    else:  # ablation: element-wise max fusion
      z_fus = jnp.maximum(z_rgb, z_aux)
      fuse = jnp.maximum
      cl_mask = p_rgb = jnp.ones((b, h, w))
    z_fus, _ = Block(self.num_heads, dtype=self.dtype, name='fusion_block')(z_fus)
    y_fus = nn.Dense(2, dtype=self.dtype, name='head')(z_fus.mean(1))
    return {'y_fus': y_fus.astype(jnp.float32), 'y_loc_rgb': y_rgb, 'y_loc_aux': y_aux,
            'a_rgb': a_rgb, 'a_aux': a_aux, 'a_fus': fuse(a_rgb, a_aux),
            'a_fus_fake': fuse(a_rgb_fake, a_aux_fake), 'cl_mask': cl_mask,
            'cl_p_rgb': p_rgb}


def build(config) -> nn.Module:
  # derived: the ViT's position grid follows the input size (config.input)
  return from_config(Model, config, img_size=config.input.image_size)


def _ce(logits, labels, weight):
  return losses.masked_mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels),
                            weight)


def loss_fn(outputs, batch, config):
  w, y = batch['valid'], batch['label']
  terms = {'loss_loc': _ce(outputs['y_loc_rgb'], y, w) + _ce(outputs['y_loc_aux'], y, w),
           'loss_fus': _ce(outputs['y_fus'], y, w)}                      # eqs. 6, 7
  # not a loss: the share of positions whose complementary mask kept the RGB token
  # (with the training step's Gumbel noise), logged to follow CL's competition
  terms['cl_rgb_share'] = jax.lax.stop_gradient(
      losses.masked_mean(outputs['cl_mask'].mean((1, 2)), w))
  return terms['loss_loc'] + config.model.alpha * terms['loss_fus'], terms  # eq. 8


def score(outputs):
  return jax.nn.softmax(outputs['y_fus'], -1)[:, 1]


def panels(outputs, masks):
  """The fused CAR maps (eq. 5), eq. 9's fake-class map and each branch's CAR map
  (eq. 4), for predict and map export."""
  del masks
  return {k: outputs[k] for k in ('a_fus', 'a_fus_fake', 'a_rgb', 'a_aux')}


def localization(outputs):
  return outputs['a_fus']
