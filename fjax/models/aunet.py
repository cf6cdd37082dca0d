"""AUNet (Bai et al., CVPR 2023): Action Units Relation Transformer (ART) on Xception's
block11 features, trained with Tampered AU Prediction (TAP) on real faces only.

outputs: `cls` [B, 2] class-token logits, `tokens` [B, h, w, 2] patch-token logits (the
localization map), `au` [E, B, h, w, K] the AU attention maps of the E encoders.
Training batches are pairs (examples.tampered_pair): images [B, 2, H, W, 3], the
real face then its fake, and `tamper_mask` [B, 2, H, W] (M_p on the fake, zeros on the real).
Loss 1 L_cls + lambda_t L_token + 0.5 L_att (sec. 3.4).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from fjax.models import losses
from fjax.models.backbones.xception import Xception
from fjax.models.config_fields import from_config
from fjax.models.layers import batch_norm

BATCH_KEYS = ('image', 'label', 'mask', 'au_maps')
RNGS = ('tamper',)
CONFIG = 'aunet'  # configs/aunet.py
MIX_LAYERS = tuple(range(1, 12))  # feature-level mixing after Xception block 1 .. 11
EPS = 1e-6


def _conv_bn_relu(x, features, train, dtype, name):
  x = nn.Conv(features, (3, 3), padding='SAME', use_bias=False, dtype=dtype,
              name=f'{name}_conv')(x)
  return nn.relu(batch_norm(train, dtype, name=f'{name}_bn')(x))


class AUEmbedding(nn.Module):
  """Eq. 2, E_i = GAP(Conv3x3(F * M_i + F)) for all K maps, without running K convs: a
  zero-padded 3x3 conv followed by a global mean equals, per kernel tap (dy, dx), the tap's
  weights applied to the mean of the input over the window that tap reads (the whole map
  less one border row / column). The parameters are an ordinary 3x3 conv's."""
  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, f, m_au):
    _, h, w, c = f.shape
    kernel = self.param('kernel', nn.initializers.lecun_normal(), (3, 3, c, self.features))
    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    # rows[ky, y] = 1 where output rows read input row y through tap ky (SAME padding).
    rows = jnp.stack([jnp.arange(h) < h - 1, jnp.ones(h, bool), jnp.arange(h) > 0])
    cols = jnp.stack([jnp.arange(w) < w - 1, jnp.ones(w, bool), jnp.arange(w) > 0])
    window = (rows[:, None, :, None] & cols[None, :, None, :]).astype(f.dtype)
    # s[b, ky, kx, k, c] = mean over the tap's window of F * (M_k + 1): sums over h*w
    # positions, accumulated and divided in float32 whatever the compute dtype.
    s = jnp.einsum('yxhw,bhwk,bhwc->byxkc', window, (m_au + 1).astype(f.dtype), f,
                   preferred_element_type=jnp.float32) / (h * w)
    e = jnp.einsum('byxkc,yxcd->bkd', s.astype(self.dtype), kernel.astype(self.dtype),
                   preferred_element_type=jnp.float32)
    return e + bias  # float32: eqs. 3-4 normalise by sums of its products


class AUSpecific(nn.Module):
  """Attention module -> M_AU (K maps, sigmoid); AU embeddings (eq. 2); correlation A
  (eq. 3); importance W (eq. 4); M_I = max_i W_i M_i (eq. 5); F_S = M_I * F."""
  num_aus: int
  width: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, f, train):
    x = _conv_bn_relu(f, self.width, train, self.dtype, 'att1')
    x = _conv_bn_relu(x, self.width, train, self.dtype, 'att2')
    m_au = nn.sigmoid(nn.Conv(self.num_aus, (1, 1), dtype=self.dtype, name='att_out')(x))
    e = AUEmbedding(f.shape[-1], self.dtype, name='embed')(f, m_au)
    return important_region(e, m_au).astype(f.dtype) * f, m_au


def important_region(e, m_au):
  """M_I [B, h, w, 1] from AU embeddings e [B, K, C] and maps M_AU [B, h, w, K], in
  float32 (the C-long dot products and the normalisation by their sum)."""
  e, m_au = e.astype(jnp.float32), m_au.astype(jnp.float32)
  a = jnp.einsum('bic,bjc->bij', e, e)  # eq. 3, dot products
  # Eq. 4. sum_ij a_ij = |sum_i E_i|^2 >= 0; EPS guards the all-zero case only.
  w_i = a.sum(-1) / (a.sum((1, 2))[:, None] + EPS)
  return jnp.max(w_i[:, None, None, :] * m_au, axis=-1, keepdims=True)  # eq. 5


class AUAgnostic(nn.Module):
  """1x1 conv to C', class token + patch tokens, one post-LN encoder layer (eq. 6), patch
  tokens back to a map and a 1x1 conv to C. No position embedding: the 3x3 convs before
  it see the zero-padded borders (a choice; the paper names none)."""
  width: int
  heads: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, f):
    b, h, w, c = f.shape
    x = nn.Conv(self.width, (1, 1), dtype=self.dtype, name='proj_in')(f).reshape(b, h * w, -1)
    cls = self.param('cls_token', nn.initializers.zeros, (1, 1, self.width))
    x = jnp.concatenate([jnp.broadcast_to(cls, (b, 1, self.width)).astype(x.dtype), x], 1)
    attn = nn.MultiHeadDotProductAttention(self.heads, dtype=self.dtype,
                                           force_fp32_for_softmax=True, name='msa')(x, x)
    x = nn.LayerNorm(dtype=self.dtype, name='ln1')(x + attn)  # x' = LN(x + MSA(x))
    ffn = nn.Dense(self.width, dtype=self.dtype, name='ffn2')(
        nn.gelu(nn.Dense(4 * self.width, dtype=self.dtype, name='ffn1')(x)))
    x = nn.LayerNorm(dtype=self.dtype, name='ln2')(x + ffn)  # x_o = LN(x' + FFN(x'))
    f_a = nn.Conv(c, (1, 1), dtype=self.dtype, name='proj_out')(x[:, 1:].reshape(b, h, w, -1))
    return f_a, x[:, 0], x[:, 1:]


class ARTEncoder(nn.Module):
  """F_out = two 3x3 convs (F_S + F_A) (eq. 7); either branch may be switched off."""
  num_aus: int
  width: int
  heads: int
  au_specific: bool = True
  au_agnostic: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, f, train):
    total, m_au, cls, patches = 0.0, None, None, None
    if self.au_specific:
      f_s, m_au = AUSpecific(self.num_aus, self.width, self.dtype, name='specific')(f, train)
      total = total + f_s
    if self.au_agnostic:
      f_a, cls, patches = AUAgnostic(self.width, self.heads, self.dtype, name='agnostic')(f)
      total = total + f_a
    x = _conv_bn_relu(total, f.shape[-1], train, self.dtype, 'fuse1')
    return _conv_bn_relu(x, f.shape[-1], train, self.dtype, 'fuse2'), m_au, cls, patches


def feature_mixing(f_real, f_fake, mask, lam):
  """Eqs. 10-17 for features [B, h, w, C], the resized M_p [B, h, w, 1] and mixing weights
  lam = (lambda1, lambda2, lambda3), each [B]: the fake features with their masked region's
  statistics and normalised features mixed with the real ones; elsewhere unchanged.
  Computed in float32 (means and variances over the region, the division by sigma) and
  returned in the features' dtype."""
  dtype = f_fake.dtype
  f_real, f_fake, mask = (t.astype(jnp.float32) for t in (f_real, f_fake, mask))
  lam = tuple(l.astype(jnp.float32) for l in lam)
  area = jnp.maximum(mask.sum((1, 2), keepdims=True), EPS)

  def stats(f):
    mu = (f * mask).sum((1, 2), keepdims=True) / area  # eq. 10
    sigma = jnp.sqrt(((f - mu) ** 2 * mask).sum((1, 2), keepdims=True) / area + EPS)  # eq. 11
    return mu, sigma, (f - mu) * mask / sigma  # eq. 12

  (mu_r, sig_r, bar_r), (mu_f, sig_f, bar_f) = stats(f_real), stats(f_fake)
  l1, l2, l3 = (l[:, None, None, None] for l in lam)
  mu_s = l1 * mu_f + (1 - l1) * mu_r  # eq. 13
  sig_s = l2 * sig_f + (1 - l2) * sig_r  # eq. 14
  bar_s = l3 * bar_f + (1 - l3) * bar_r  # eq. 15
  region = sig_s * bar_s + mu_s * mask  # eq. 16
  return (f_fake * (1 - mask) + region).astype(dtype)  # eq. 17


class Model(nn.Module):
  num_aus: int = 15
  encoders: int = 3
  width: int = 256            # C' of the AU-agnostic branch, width of the attention convs
  heads: int = 8
  au_specific: bool = True    # table 4 ablation switches
  au_agnostic: bool = True
  mixing: bool = True         # feature-level mixing (FM)
  mix_with_other: bool = False  # "w/o IT": mix with another real face's statistics
  mix_beta: float = 1.0       # lambda_1..3 ~ Beta(mix_beta, mix_beta)
  dtype: Any = jnp.float32
  remat: bool = False         # model.remat: backbone blocks recomputed in the backward pass
  middle_blocks: int = 8      # model.middle_blocks: Xception middle-flow blocks (tests: 1)

  @nn.compact
  def __call__(self, images, *, train: bool = False, tamper_mask=None):
    pairs = images.ndim == 5  # training: [B, 2, H, W, 3], real then tampered
    if pairs:
      images = images.reshape(-1, *images.shape[2:])
    between = None
    if pairs and train and self.mixing:
      between = self._mixer(tamper_mask[:, 1])
    f = Xception(last_block=11, dtype=self.dtype, remat=self.remat,
                 middle_blocks=self.middle_blocks, name='backbone')(
        images, train=train, between=between)['block11']
    maps, cls, patches = [], None, None
    for i in range(self.encoders):  # encoders=0: table 4's "Backbone" row
      f, m_au, cls, patches = ARTEncoder(self.num_aus, self.width, self.heads,
                                         self.au_specific, self.au_agnostic, self.dtype,
                                         name=f'encoder{i + 1}')(f, train)
      maps.append(m_au)
    if cls is None:  # no AU-agnostic branch: pooled features and positions stand in
      cls, patches = f.mean((1, 2)), f.reshape(f.shape[0], -1, f.shape[-1])
    head = nn.Dense(2, dtype=self.dtype, name='token_head')  # fc shared by all patch tokens
    b, h, w = f.shape[:3]
    out = {'cls': nn.Dense(2, dtype=self.dtype, name='cls_head')(cls),
           'tokens': head(patches).reshape(b, h, w, 2)}
    if maps and self.au_specific:
      out['au'] = jnp.stack(maps)
    return {k: v.astype(jnp.float32) for k, v in out.items()}

  def _mixer(self, mask):
    """`between` for the backbone with a layer and weights drawn for this step."""
    layer_rng, lam_rng = jax.random.split(self.make_rng('tamper'))
    layer = jax.random.choice(layer_rng, jnp.array(MIX_LAYERS))
    lam = jax.random.beta(lam_rng, self.mix_beta, self.mix_beta, (3, mask.shape[0]))
    return mixer(mask, layer, lam, self.mix_with_other)


def mixer(mask, layer, lam, other: bool = False):
  """`between(i, x)` for the backbone: on pair-interleaved features x [2B, h, w, C] (real,
  fake, real, ...), eqs. 10-17 on the fakes at block `layer` (traced: one jitted program
  for every draw, a lax.cond per candidate layer); other layers pass through. With
  `other` the fake is the real face itself ("w/o IT") and its region takes the next real
  face's statistics."""

  def between(i, x):
    pair = x.reshape(-1, 2, *x.shape[1:])
    real, fake = pair[:, 0], pair[:, 1]
    if other:
      real = jnp.roll(real, 1, axis=0)
    m = losses.resize_map(mask, x.shape[1:3])[..., None]
    mixed = jax.lax.cond(layer == i, lambda: feature_mixing(real, fake, m, lam), lambda: fake)
    return jnp.stack([pair[:, 0], mixed], 1).reshape(x.shape)
  return between


def build(config) -> nn.Module:
  # derived: without image-level tampering ("w/o IT") mixing takes another real face's
  # statistics (config.input.tamper)
  return from_config(Model, config, mix_with_other=not config.input.tamper.image)


def train_inputs(batch):
  return {'tamper_mask': batch['mask']}


def token_labels(mask, hw):
  """Eq. 18: M_p averaged over each token's patch (a plain resize where the grid does
  not divide the image), > t = 0.5."""
  b, hh, ww = mask.shape
  h, w = hw
  if hh % h == 0 and ww % w == 0:
    coarse = mask.reshape(b, h, hh // h, w, ww // w).mean((2, 4))
  else:
    coarse = losses.resize_map(mask, hw)
  return (coarse > 0.5).astype(jnp.int32)


def loss_fn(outputs, batch, config):
  m = config.model
  pairs = batch['image'].ndim == 5
  flat = (lambda x: x.reshape(-1, *x.shape[2:])) if pairs else (lambda x: x)
  w, label, mask = flat(batch['valid']), flat(batch['label']), flat(batch['mask'])
  ce = optax.softmax_cross_entropy_with_integer_labels
  terms = {'loss_cls': losses.masked_mean(ce(outputs['cls'], label), w)}
  tokens = outputs['tokens']
  terms['loss_token'] = losses.masked_mean(  # eq. 19
      ce(tokens, token_labels(mask, tokens.shape[1:3])), w)
  terms['loss_att'] = jnp.float32(0)
  if 'au' in outputs:  # eq. 1, Huber (delta 0.5) against Y_att at the feature grid
    y_att = flat(batch['au_maps'])
    y_att = jax.image.resize(y_att, (*y_att.shape[:1], *tokens.shape[1:3], y_att.shape[-1]),
                             method='linear', antialias=True)
    terms['loss_att'] = jnp.mean(jnp.stack([losses.masked_mean(
        optax.huber_loss(a, y_att, delta=0.5), w) for a in outputs['au']]))
  total = (m.cls_weight * terms['loss_cls'] + m.token_weight * terms['loss_token'] +
           m.att_weight * terms['loss_att'])
  return total, terms


def localization(outputs):
  """The patch tokens' fake probability on the token grid (sec. 4.6)."""
  return jax.nn.softmax(outputs['tokens'], -1)[..., 1]


def score(outputs):
  """The paper leaves the rule to its supplement; ours: the mean of the class token's fake
  probability and the most confident patch token's (a local tampering flags the face)."""
  p_cls = jax.nn.softmax(outputs['cls'], -1)[:, 1]
  p_tok = localization(outputs).reshape(p_cls.shape[0], -1).max(-1)
  return 0.5 * (p_cls + p_tok)
