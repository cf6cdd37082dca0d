"""Grad-CAM and Score-CAM maps for any fjax model, without touching its code.

  python -m fjax.predict --workdir=DIR --input face.jpg --output OUT --cam=gradcam
  python -m fjax.focus_maps --workdir=DIR --output=MAPS --map=scorecam

The target layer (the activations A [B, h, w, K] the map is made of) is reached through
`flax.linen.intercept_methods`: an interceptor on the target submodule's `__call__`
records its output (or first argument) A and passes on A + delta, with delta = 0, so that
d class score / d delta is the Grad-CAM gradient (one `jax.grad` of the batch's summed
class scores: faces are independent in eval mode). Token activations [B, N, D] are
reshaped to their square grid, the class token dropped when N = 1 + s^2.

Class score: the fake logit, i.e. the log-odds of the model's fake probability taken from
the logits the probability is made of (a sigmoid head's logit, or y_fake - y_real of a
two-way softmax head, which is the log-odds of its softmax probability); for a model whose
score is not one sigmoid or softmax (AUNet's mean of two probabilities) the log-odds of
`score` itself.

Grad-CAM (Selvaraju et al. 2017): w_k = mean over the grid of dS/dA_k, map = ReLU(sum_k
w_k A_k). Score-CAM (Wang et al. 2020): each channel A_k bilinearly upsampled to the
input and min-max normalised per face (a constant channel: 1 where it is positive, else 0),
the input multiplied by it and forwarded; w_k = fake probability of that input minus that
of the baseline input X_b = 0 (the all-zero normalised image: mean colour), map = ReLU(sum_k
w_k A_k). The masked forwards run inside the jitted function in chunks of channels
folded into the batch axis (`lax.map` over chunks; no Python loop over channels).

Both maps are upsampled bilinearly to the input size and then divided by their per-face
maximum: they are normalised per face (values in [0, 1], 1 at each face's peak; a map
that is 0 everywhere stays 0), not probabilities. Unlike pytorch-grad-cam we do not also
subtract the minimum, so a map that is positive everywhere keeps its floor (and a grid of
1 x 1, e.g. Xception at 32 px, gives a constant map of 1).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from fjax.util.errors import UserError

METHODS = ('gradcam', 'scorecam')
TITLES = {'gradcam': 'Grad-CAM', 'scorecam': 'Score-CAM'}


@dataclasses.dataclass(frozen=True)
class Target:
  """A submodule's activations: `path` (names below the model, as in the params tree),
  `where` 'output' (its return value) or 'input' (its first positional argument), and
  `key` (a dict key or tuple index inside that value; None: the value itself)."""
  path: tuple[str, ...]
  where: str = 'output'
  key: Any = None
  why: str = ''

  def describe(self) -> str:
    key = '' if self.key is None else f'[{self.key!r}]'
    return f'{"/".join(self.path)} {self.where}{key}'


def _local_similarity(model) -> Target:
  from fjax.models.local_similarity import STAGES  # pylint: disable=g-import-not-at-top
  last = len(STAGES) - 1
  if not model.flm:
    return Target(('backbone',), 'output', 'features',
                  'no decoder: the classifier pools the exit-flow features')
  if model.claffm:
    return Target((f'claffm{last}',), 'output', 0,
                  'the last decoder stage after CLAFFM: the map the classifier pools')
  return Target((f'up{last}',), 'output', None,
                'the last decoder stage: the map the classifier pools')


def _aunet(model) -> Target:
  if model.encoders < 1:
    return Target(('backbone',), 'output', 'block11', 'Xception block 11 (no ART encoder)')
  return Target((f'encoder{model.encoders}',), 'input', None,
                'the feature map the last ART encoder reads (its output feeds no head: '
                'both heads read its class and patch tokens)')


# The last feature map before each model's classifier (model.name -> Target of the built
# module). Keep in step with the model files; tests/test_cam.py runs every entry.
TARGETS: dict[str, Callable[[Any], Target]] = {
    'xception_baseline': lambda m: Target(
        ('backbone',), 'output', 'features',
        'Xception exit flow (conv4 + BN + ReLU, 2048 ch, stride 32): fc reads its mean'),
    'local_similarity': _local_similarity,
    'aunet': _aunet,
    'semantic_noise': lambda m: Target(
        ('fusion_block',), 'input', None,
        'the fused 19x19 semantic/noise features the classifier tail reads (after the '
        'seg3 attention)'),
    'msccnet': lambda m: Target(
        ('backbone',), 'output', 'layer4', 'ResNet layer4: cls_head reads its mean'),
    'focus_eval': lambda m: Target(
        ('backbone',), 'output', 'features',
        'EfficientNet last stage after conv_head: the classifier reads its mean'),
    'focus': lambda m: Target(
        ('fusion_block', 'norm1'), 'output', None,
        "the last (fusion) block's first LayerNorm on the fused patch tokens, as "
        "pytorch-grad-cam's ViT recipe (blocks[-1].norm1); tokens reshaped to the grid"),
}


def _diff(key):
  return lambda outputs: outputs[key][:, 1] - outputs[key][:, 0]


def _semantic_noise_logit(outputs):
  if 'logit' in outputs:
    return outputs['logit']
  logits = outputs['logits']  # n-way: log-odds of 1 - p(real)
  return jax.nn.logsumexp(logits[:, 1:], -1) - logits[:, 0]


# The fake logit each model's `score` is the sigmoid of (model.name -> fn(outputs) -> [B]).
LOGITS: dict[str, Callable] = {
    'xception_baseline': lambda o: o['logit'],
    'local_similarity': lambda o: o['logit'],
    'semantic_noise': _semantic_noise_logit,
    'msccnet': _diff('cls_logits'),
    'focus_eval': _diff('logits'),
    'focus': _diff('y_fus'),
}


def log_odds(p):
  p = jnp.clip(p.astype(jnp.float32), 1e-7, 1 - 1e-7)
  return jnp.log(p) - jnp.log1p(-p)


def for_model(name: str, model) -> tuple[Target, Callable | None]:
  """(target layer, fake-logit function or None: log-odds of score) of a model."""
  if name not in TARGETS:
    raise UserError(f'no CAM target layer is known for model {name!r} '
                    f'(fjax.cam.TARGETS: {", ".join(sorted(TARGETS))})')
  return TARGETS[name](model), LOGITS.get(name)


def _get(value, key):
  return value if key is None else value[key]


def _put(value, key, new):
  if key is None:
    return new
  if isinstance(value, tuple):
    return value[:key] + (new,) + value[key + 1:]
  return {**value, key: new}


def apply_at(model, variables, images, target: Target, delta=None):
  """model.apply(variables, images, train=False) -> (outputs, A), where A is the target's
  activation; with `delta`, the model runs on A + delta instead of A."""
  seen = []

  def interceptor(next_fun, args, kwargs, context):
    if context.method_name != '__call__' or tuple(context.module.path) != target.path:
      return next_fun(*args, **kwargs)
    if seen:
      raise UserError(f'CAM target {target.describe()} runs twice in one forward pass')
    if target.where == 'input':
      a = _get(args[0], target.key)
      seen.append(a)
      if delta is not None:
        args = (_put(args[0], target.key, a + delta.astype(a.dtype)),) + tuple(args[1:])
      return next_fun(*args, **kwargs)
    out = next_fun(*args, **kwargs)
    a = _get(out, target.key)
    seen.append(a)
    return out if delta is None else _put(out, target.key, a + delta.astype(a.dtype))

  with nn.intercept_methods(interceptor):
    outputs = model.apply(variables, images, train=False)
  if not seen:
    raise UserError(f'CAM target {target.describe()} never ran: the model has no such '
                    'submodule (see fjax.cam.TARGETS)')
  return outputs, seen[0]


def to_grid(a):
  """[B, h, w, K] activations as they are; [B, N, D] tokens on their s x s grid (the
  first token, a class token, dropped when N = 1 + s^2)."""
  if a.ndim == 4:
    return a
  if a.ndim != 3:
    raise UserError(f'CAM target activations of shape {a.shape}: need [B, h, w, K] or '
                    '[B, N, D]')
  n = a.shape[1]
  for drop in (0, 1):
    s = math.isqrt(n - drop)
    if s * s == n - drop:
      return a[:, drop:].reshape(a.shape[0], s, s, a.shape[2])
  raise UserError(f'{n} tokens are not a square grid (with or without a class token)')


def finish(cam, hw: tuple[int, int]):
  """[B, h, w] >= 0 -> [B, H, W]: bilinear upsampling, then divided by each face's
  maximum (0 stays 0)."""
  up = jax.image.resize(cam, (cam.shape[0], *hw), 'bilinear')
  top = up.max((1, 2), keepdims=True)
  return jnp.where(top > 0, up / jnp.where(top > 0, top, 1), 0.0)


def gradcam_grid(model, variables, images, target: Target, class_logit):
  """Grad-CAM on the target's grid [B, h, w] (before upsampling and normalisation),
  with the activations [B, h, w, K] and gradients [B, h, w, K]."""
  shape = jax.eval_shape(lambda x: apply_at(model, variables, x, target)[1], images).shape

  def total(delta):
    outputs, a = apply_at(model, variables, images, target, delta)
    return class_logit(outputs).astype(jnp.float32).sum(), a

  grads, a = jax.grad(total, has_aux=True)(jnp.zeros(shape, jnp.float32))
  a, grads = to_grid(a).astype(jnp.float32), to_grid(grads)
  weights = grads.mean((1, 2))                                   # [B, K]
  return jax.nn.relu(jnp.einsum('bhwk,bk->bhw', a, weights)), a, grads


def channel_masks(a, hw: tuple[int, int]):
  """Score-CAM's masks: activations [B, h, w, c] upsampled bilinearly to hw and min-max
  normalised per face and channel -> [B, H, W, c]; a constant channel: 1 where > 0."""
  up = jax.image.resize(a, (a.shape[0], *hw, a.shape[-1]), 'bilinear')
  lo, hi = up.min((1, 2), keepdims=True), up.max((1, 2), keepdims=True)
  span = hi - lo
  return jnp.where(span > 0, (up - lo) / jnp.where(span > 0, span, 1),
                   (up > 0).astype(up.dtype))


def scorecam_grid(model, variables, images, target: Target, probability,
                  forward_batch: int = 64):
  """Score-CAM on the target's grid [B, h, w] (before upsampling and normalisation),
  with the channel weights [B, K]. `probability(outputs) -> [B]`: the fake probability.
  The B x K masked forwards run as lax.map over chunks of c channels, each one forward of
  B * c images (c = max(1, forward_batch // B))."""
  _, a = apply_at(model, variables, images, target)
  a = to_grid(a).astype(jnp.float32)
  b, _, _, k = a.shape
  hw = images.shape[1:3]
  c = min(k, max(1, forward_batch // b))
  n = -(-k // c)
  padded = jnp.pad(a, ((0, 0), (0, 0), (0, 0), (0, n * c - k)))
  chunks = jnp.moveaxis(padded.reshape(*a.shape[:3], n, c), 3, 0)   # [n, B, h, w, c]

  def forward(chunk):
    masks = jnp.moveaxis(channel_masks(chunk, hw), 3, 1)            # [B, c, H, W]
    x = (images[:, None] * masks[..., None].astype(images.dtype)).reshape(b * c, *images.shape[1:])
    return probability(model.apply(variables, x, train=False)).astype(jnp.float32).reshape(b, c)

  scores = jnp.moveaxis(jax.lax.map(forward, chunks), 0, 1).reshape(b, n * c)[:, :k]
  base = probability(model.apply(variables, jnp.zeros_like(images[:1]), train=False))
  weights = scores - base.astype(jnp.float32)[0]
  return jax.nn.relu(jnp.einsum('bhwk,bk->bhw', a, weights)), weights


def make(method: str, name: str, model, model_lib, forward_batch: int = 64):
  """fn(variables, images) -> (fake probability [B], CAM [B, H, W] in [0, 1], normalised
  per face) of a model; jit it. `forward_batch`: images per Score-CAM forward."""
  if method not in METHODS:
    raise UserError(f'unknown CAM {method!r}: use one of {", ".join(METHODS)}')
  target, logit = for_model(name, model)
  return functools.partial(_maps, method, model, model_lib.score, target,
                           logit or (lambda o: log_odds(model_lib.score(o))), forward_batch)


def _maps(method, model, score, target, class_logit, forward_batch, variables, images):
  hw = images.shape[1:3]
  prob = score(model.apply(variables, images, train=False))
  if method == 'gradcam':
    cam = gradcam_grid(model, variables, images, target, class_logit)[0]
  else:
    cam = scorecam_grid(model, variables, images, target, score, forward_batch)[0]
  return prob, finish(cam, hw)
