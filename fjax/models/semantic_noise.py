"""Detect and Locate (Kong et al., TIFS 2022): Xception with semantic-map and noise-map
supervision at three taps, semantic-attention fusion and a classifier.

outputs: `logit` [B] (or `logits` [B, num_classes] for the five-way head), `seg1..3`
[B, h_t, w_t, 2] semantic logits at the taps conv2 / block2 / block11 (147, 37, 19 at
299 px; channel 1 = manipulated), `noise1..3` [B, h_t, w_t] noise maps.
Loss BCE_cls + lambda1 * sum_t L1(noise_t) + lambda2 * sum_t BCE(seg_t, soft mask) (eq. 1).
The heads follow the authors' released model (SPEC 4): plain conv / max-pool /
transposed-conv stacks that return to each tap's resolution.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from fjax.models import losses
from fjax.models.backbones.xception import Block, Xception
from fjax.models.config_fields import from_config
from fjax.models.layers import batch_norm

BATCH_KEYS = ('image', 'label', 'mask', 'noise')
RNGS = ()
CONFIG = 'semantic_noise'  # configs/semantic_noise.py
TAPS = ('conv2', 'block2', 'block11')
GAMMA = (0.1, 0.2, 0.7)  # localisation map: weights of the three semantic maps


# The released initialisation (arch/xcep_fusion.py): every Conv2d He-normal over its
# fan-out, N(0, 2 / (k k out)); the rest keep PyTorch's defaults, U(+-1/sqrt(fan)) with fan
# = in (Linear), k k out (ConvTranspose2d: torch reads fan from the weight's dim 1), and
# biases U(+-1/sqrt(fan_in)). Flax's fan_out of an HWIO ConvTranspose kernel is k k out.
HE_FAN_OUT = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')
TORCH_LINEAR = nn.initializers.variance_scaling(1 / 3, 'fan_in', 'uniform')
TORCH_CONVT = nn.initializers.variance_scaling(1 / 3, 'fan_out', 'uniform')


def torch_bias(fan: int):
  bound = 1.0 / math.sqrt(fan)
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


def _conv(features, kernel, fan_in, dtype, padding=None, name=None):
  pad = [(kernel // 2, kernel // 2)] * 2 if padding is None else padding
  return nn.Conv(features, (kernel, kernel), padding=pad, dtype=dtype, kernel_init=HE_FAN_OUT,
                 bias_init=torch_bias(fan_in * kernel * kernel), name=name)


def _up(features, kernel, stride, dtype, padding=None):
  """Transposed conv as PyTorch's (kernel k, stride s, padding 1): out = (in-1)s - 2 + k
  (PyTorch's stride-1, padding-1 case is 'SAME')."""
  pad = [(kernel - 2, kernel - 2)] * 2 if padding is None else padding
  return nn.ConvTranspose(features, (kernel, kernel), strides=(stride, stride), padding=pad,
                          dtype=dtype, kernel_init=TORCH_CONVT,
                          bias_init=torch_bias(features * kernel * kernel))


class TapHead(nn.Module):
  """Down (conv3x3, conv1x1, max-pool) stages then transposed convs back to the tap size:
  conv2 tap: two down stages (64 -> 128 -> 256), two x2 ups; block2 tap: one down stage
  (256 -> 512), one x2 up; outputs `out` channels at the input's resolution."""
  widths: Sequence[int]
  out: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    hw = x.shape[1:3]
    for width in self.widths:
      x = _conv(x.shape[-1], 3, x.shape[-1], self.dtype)(x)
      x = _conv(width, 1, x.shape[-1], self.dtype)(x)
      x = nn.max_pool(x, (2, 2), (2, 2))
    for i in range(len(self.widths)):
      last = i == len(self.widths) - 1
      x = _up(self.out if last else 64, 5, 2, self.dtype)(x)
    return _fit(x, hw)


def _fit(x, hw):
  """Crops or zero-pads [B, h, w, C] to hw (the ups return exactly to 147 / 37 at 299 px;
  other input sizes may land a pixel off)."""
  h, w = hw
  x = x[:, :h, :w]
  return jnp.pad(x, ((0, 0), (0, h - x.shape[1]), (0, w - x.shape[2]), (0, 0)))


class DeepHead(nn.Module):
  """At block11: 728 -> 256 (3x3) -> 64 (1x1) features, kept for the fusion, then two
  3x3 transposed convs (stride 1) 64 -> 16 -> `out`."""
  out: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    reduce = _conv(64, 1, 256, self.dtype)  # created first: parameter names Conv_0, Conv_1
    feat = reduce(_conv(256, 3, x.shape[-1], self.dtype)(x))
    y = _up(16, 3, 1, self.dtype, 'SAME')(feat)
    return feat, _up(self.out, 3, 1, self.dtype, 'SAME')(y)


FUSION_HW = 19  # block11 at 299 px; other sizes are resized to it before the fusion


class Model(nn.Module):
  num_classes: int = 1          # 1: real/fake logit; 5: real + DF, F2F, FS, NT
  semantic: bool = True         # ablation switches: heads and taps
  noise: bool = True
  taps: Sequence[int] = (1, 2, 3)
  official: bool = False        # released forward: attention by seg3's raw fake logit
  dtype: Any = jnp.float32
  remat: bool = False         # model.remat: backbone blocks recomputed in the backward pass
  middle_blocks: int = 8      # model.middle_blocks: Xception middle-flow blocks (tests: 1)

  @nn.compact
  def __call__(self, images, *, train: bool = False):
    feats = Xception(last_block=11, dtype=self.dtype, kernel_init=HE_FAN_OUT,
                     remat=self.remat, middle_blocks=self.middle_blocks,
                     name='backbone')(images, train=train)
    out = {}
    for t, (tap, widths) in enumerate(zip(TAPS[:2], ((128, 256), (512,))), 1):
      if t in self.taps:
        if self.semantic:
          out[f'seg{t}'] = TapHead(widths, 2, self.dtype, name=f'seg{t}')(feats[tap])
        if self.noise:
          out[f'noise{t}'] = TapHead(widths, 1, self.dtype, name=f'noise{t}')(feats[tap])[..., 0]
    deep = feats['block11']
    parts = []
    if self.semantic:
      seg_feat, out['seg3'] = DeepHead(2, self.dtype, name='seg3')(deep)
      parts.append(seg_feat)
    if self.noise:
      noise_feat, noise3 = DeepHead(1, self.dtype, name='noise3')(deep)
      out['noise3'] = noise3[..., 0]
      parts.append(noise_feat)
    # Fusion: the 64-channel features, spatial attention by the fake channel of seg3 (its
    # probability; the released code multiplies by the raw logit).
    fused = jnp.concatenate(parts, -1)
    if self.semantic:
      fake = out['seg3'][..., 1:]
      fused = fused * (fake if self.official else jax.nn.sigmoid(fake))
    if fused.shape[1:3] != (FUSION_HW, FUSION_HW):  # the classifier tail is sized for 19x19
      fused = jax.image.resize(fused, (fused.shape[0], FUSION_HW, FUSION_HW, fused.shape[-1]),
                               method='bilinear')
    x = Block(128, 2, 2, start_with_relu=True, grow_first=False, dtype=self.dtype,
              kernel_init=HE_FAN_OUT, name='fusion_block')(fused, train)
    for i, (mid, width) in enumerate(((128, 256), (256, 728))):
      x = _conv(mid, 3, x.shape[-1], self.dtype, 'VALID', name=f'cls_conv{i}a')(x)
      x = _conv(width, 1, mid, self.dtype, name=f'cls_conv{i}b')(x)
      x = nn.relu(batch_norm(train, self.dtype, name=f'cls_bn{i}')(x))
      if i == 0:
        x = nn.max_pool(x, (2, 2), (2, 2))
    x = x.reshape(x.shape[0], -1)  # 2 x 2 x 728
    x = nn.Dense(100, dtype=self.dtype, kernel_init=TORCH_LINEAR,
                 bias_init=torch_bias(x.shape[-1]), name='fc0')(x)
    logits = nn.Dense(self.num_classes, dtype=self.dtype, kernel_init=TORCH_LINEAR,
                      bias_init=torch_bias(100), name='fc1')(x).astype(jnp.float32)
    out = {k: v.astype(jnp.float32) for k, v in out.items()}
    if self.num_classes == 1:
      out['logit'] = logits[:, 0]
    else:
      out['logits'] = logits
    return out


def build(config) -> nn.Module:
  return from_config(Model, config)


def loss_fn(outputs, batch, config):
  """Eq. 1. The noise label is the per-channel wavelet residual averaged over RGB, in
  units of sigma; masks and noise are resized to each tap."""
  m, w = config.model, batch['valid']
  if m.num_classes == 1:
    cls = losses.bce(outputs['logit'], batch['label'].astype(jnp.float32), w)
  else:
    known = batch['method_label'] >= 0  # fakes of other methods do not train this head
    cls = losses.masked_mean(optax.softmax_cross_entropy_with_integer_labels(
        outputs['logits'], jnp.maximum(batch['method_label'], 0)), w * known)
  terms = {'loss_cls': cls}
  seg = [k for k in ('seg1', 'seg2', 'seg3') if k in outputs]
  noise = [k for k in ('noise1', 'noise2', 'noise3') if k in outputs]
  terms['loss_seg'] = sum((_seg_bce(outputs[k], batch['mask'], w) for k in seg), jnp.float32(0))
  residual = batch['noise'].mean(-1) / config.input.noise_sigma
  terms['loss_noise'] = sum((losses.masked_mean(jnp.abs(
      outputs[k] - losses.resize_map(residual, outputs[k].shape[1:3])), w) for k in noise), jnp.float32(0))
  stage_cls = 0.0 if m.stage == 1 else 1.0  # stage 1: backbone + semantic heads only
  total = stage_cls * cls + m.noise_weight * terms['loss_noise'] * stage_cls + \
      m.seg_weight * terms['loss_seg']
  return total, terms


def _seg_bce(logits, mask, weight):
  """BCE of both channels against the soft mask resized to the map: [1 - m, m] (channel 1
  manipulated; the released code orders them [m, 1 - m]), averaged over pixels and channels."""
  m = losses.resize_map(mask, logits.shape[1:3])
  return losses.masked_mean(optax.sigmoid_binary_cross_entropy(
      logits, jnp.stack([1.0 - m, m], -1)), weight)


def score(outputs):
  if 'logit' in outputs:
    return jax.nn.sigmoid(outputs['logit'])
  return 1.0 - jax.nn.softmax(outputs['logits'], -1)[:, 0]  # 1 - p(real)


def class_predictions(outputs):
  """The five-way head's class (0 real, then examples.METHOD_CLASSES); the binary
  head predicts 0 or 1."""
  if 'logits' in outputs:
    return jnp.argmax(outputs['logits'], -1).astype(jnp.int32)
  return (outputs['logit'] > 0).astype(jnp.int32)


def localization(outputs):
  """Gamma-weighted sum of the semantic maps' fake probability (the sigmoid of the BCE-trained
  manipulated channel) at the first map's size."""
  keys = [k for k in ('seg1', 'seg2', 'seg3') if k in outputs]
  if not keys:
    return jnp.zeros((outputs[next(iter(outputs))].shape[0], 1, 1))
  hw = outputs[keys[0]].shape[1:3]
  total = sum(GAMMA[int(k[-1]) - 1] * losses.resize_map(jax.nn.sigmoid(outputs[k][..., 1]), hw)
              for k in keys)
  return total / sum(GAMMA[int(k[-1]) - 1] for k in keys)
