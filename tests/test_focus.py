"""FoCus: filters against SciPy/NumPy, CARP equations on hand inputs, the straight-through
Complementary-Learning choice, learning."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import fft, ndimage

from configs import focus as focus_config
from fjax import registry
from fjax.models import focus, image_ops
from fjax.models.backbones.vit import ViT
from tests.conftest import run_steps


def _images(seed=0, shape=(2, 16, 24, 3)):
  return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_sobel_matches_scipy():
  x = _images()
  got = np.asarray(image_ops.sobel(jnp.asarray(x)))
  for b in range(2):
    for c in range(3):
      gx = ndimage.sobel(x[b, :, :, c], axis=1, mode='reflect')
      gy = ndimage.sobel(x[b, :, :, c], axis=0, mode='reflect')
      np.testing.assert_allclose(got[b, :, :, c], np.hypot(gx, gy), rtol=1e-4, atol=1e-4)


def test_srm_matches_scipy():
  x = _images(1)
  got = np.asarray(image_ops.srm(jnp.asarray(x)))
  grey = x @ np.array([0.299, 0.587, 0.114], np.float32)
  for b in range(2):
    for k in range(3):
      ref = ndimage.correlate(grey[b], image_ops.SRM[k], mode='reflect')
      np.testing.assert_allclose(got[b, :, :, k], ref, rtol=1e-4, atol=1e-4)


def test_block_dct_matches_scipy():
  x = _images(2)
  got = np.asarray(image_ops.block_dct(jnp.asarray(x)))
  for i in range(0, 16, 8):
    for j in range(0, 24, 8):
      ref = fft.dctn(x[1, i:i + 8, j:j + 8, 2], norm='ortho')
      np.testing.assert_allclose(got[1, i:i + 8, j:j + 8, 2], ref, atol=1e-4)


def test_carp_follows_eqs_4_and_9():
  d = 3
  f = _images(3, (2, 4, 5, 2 * d))
  carp = focus.CARP(d=d)
  variables = carp.init(jax.random.key(0), jnp.asarray(f))
  eye = {'params': {'proj': {'kernel': jnp.eye(2 * d)[None, None], 'bias': jnp.zeros(2 * d)}}}
  y_loc, a, a_fake = map(np.asarray, carp.apply(eye, jnp.asarray(f)))
  fc = f.reshape(2, 4, 5, 2, d)  # f'_c: the d maps of class c
  want_y = fc.max(axis=(1, 2)).mean(-1)
  np.testing.assert_allclose(y_loc, want_y, rtol=1e-5)
  p = np.exp(want_y) / np.exp(want_y).sum(-1, keepdims=True)
  sig = lambda v: 1 / (1 + np.exp(-v))
  for b in range(2):
    maps = fc[b].mean(-1)  # [h, w, 2]
    np.testing.assert_allclose(a[b], sig(p[b, 0] * maps[..., 0] + p[b, 1] * maps[..., 1]),
                               rtol=1e-5)
    np.testing.assert_allclose(a_fake[b], sig(p[b, 1] * maps[..., 1]), rtol=1e-5)
  assert a.shape == a_fake.shape == (2, 4, 5)
  del variables


def test_straight_through_is_one_hot_forward_with_gradients_to_both_scores():
  scores = jax.random.normal(jax.random.key(0), (3, 10, 2))
  values = jax.random.normal(jax.random.key(1), (3, 10, 2))
  mask = focus.straight_through_choice(scores, jax.random.key(2))
  assert set(np.unique(np.asarray(mask)).tolist()) == {0.0, 1.0}
  np.testing.assert_array_equal(np.asarray(mask).sum(-1), 1.0)
  grads = jax.grad(lambda s: jnp.sum(focus.straight_through_choice(
      s, jax.random.key(2)) * values))(scores)
  g = np.asarray(grads)
  assert np.isfinite(g).all() and (np.abs(g[..., 0]) > 0).any() and (np.abs(g[..., 1]) > 0).any()
  # without noise (evaluation) the choice is the argmax of the scores
  hard = np.asarray(focus.straight_through_choice(scores, None))
  np.testing.assert_array_equal(hard.argmax(-1), np.asarray(scores).argmax(-1))


@pytest.mark.parametrize('noise', ['probs', 'log_probs'])
def test_keep_probability_is_the_frequency_of_the_noisy_choice(noise):
  """Issue 28: the closed-form P(RGB kept) under the Gumbel noise against the frequency
  of the sampled choice over 40000 draws (binomial sd <= 0.0025), for score gaps from
  none to saturated: Algorithm 1's noise on the probabilities stops at sigmoid(1) =
  0.731, Jang et al.'s on the log-probabilities follows softmax(scores) to 1."""
  scores = jnp.array([[0.0, 0.0], [0.5, -0.5], [2.0, -1.0], [-3.0, 1.0], [40.0, -40.0]])
  draws = jax.vmap(lambda k: focus.straight_through_choice(scores, k, 0.5, noise))(
      jax.random.split(jax.random.key(6), 40000))
  freq = np.asarray(draws[..., 0]).mean(0)
  p = np.asarray(focus.keep_probability(scores, noise))
  np.testing.assert_allclose(freq, p, atol=0.01)
  top = 1 / (1 + np.exp(-1.0)) if noise == 'probs' else 1.0
  assert p[0] == 0.5 and p[-1] == pytest.approx(top, abs=1e-6)
  if noise == 'log_probs':
    np.testing.assert_allclose(p, np.asarray(jax.nn.softmax(scores, -1))[:, 0], atol=1e-6)


@pytest.mark.parametrize('tau', [1.0, 0.5])
def test_straight_through_gradient_is_the_soft_paths_under_jit(tau):
  """d/ds sum(choice * v) equals the gradient of the soft path of Algorithm 1,
  sum(softmax((softmax(s) + g) / tau) * v) with the same Gumbel noise g, written out by
  hand (softmax Jacobians), inside jit."""
  scores = jax.random.normal(jax.random.key(3), (4, 7, 2))
  values = jax.random.normal(jax.random.key(4), (4, 7, 2))
  key = jax.random.key(5)
  grad = jax.jit(jax.grad(lambda s: jnp.sum(focus.straight_through_choice(s, key, tau) *
                                            values)))(scores)
  softmax = lambda z: np.exp(z - z.max(-1, keepdims=True)) / np.exp(
      z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)
  vjp = lambda p, v: p * (v - (p * v).sum(-1, keepdims=True))  # J_softmax(p)^T v
  g = np.asarray(jax.random.gumbel(key, scores.shape, scores.dtype), np.float64)
  q = softmax(np.asarray(scores, np.float64))
  p = softmax((q + g) / tau)
  ref = vjp(q, vjp(p, np.asarray(values, np.float64)) / tau)
  np.testing.assert_allclose(np.asarray(grad), ref, rtol=1e-4, atol=1e-6)


def test_both_score_mlps_get_finite_nonzero_gradients():
  config = focus_config.get_config('test')
  model = registry.model_module('focus').build(config)
  x = jnp.asarray(_images(4, (4, 32, 32, 3)))
  variables = model.init({'params': jax.random.key(0), 'gumbel': jax.random.key(1)}, x)

  def loss(params):
    out = model.apply({'params': params}, x, train=True, rngs={'gumbel': jax.random.key(3)})
    return jnp.sum(out['y_fus'] ** 2)
  grads = jax.grad(loss)(variables['params'])
  for name in ('score_rgb', 'score_aux'):
    leaves = jax.tree_util.tree_leaves(grads[name])
    assert all(np.isfinite(np.asarray(g)).all() for g in leaves)
    assert max(float(jnp.abs(g).max()) for g in leaves) > 0, name


@pytest.mark.parametrize('switches', [{}, {'aux': 'dct', 'cl': False},
                                      {'aux': 'srm', 'carp': False}])
def test_demo_steps_lower_the_loss(switches, data_dir):
  config = focus_config.get_config('test')
  config.optimizer.lr, config.total_steps = 1e-3, 100
  for k, v in switches.items():
    setattr(config.model, k, v)
  *_, values = run_steps(config, data_dir, 12 if not switches else 2)
  assert all(np.isfinite(v['loss']) for v in values)
  if not switches:
    first, last = values[0]['loss'], min(v['loss'] for v in values[-3:])
    assert last < 0.8 * first, (first, last)


def _param_counts(config):
  model = registry.model_module('focus').build(config)
  size = config.input.image_size
  shapes = jax.eval_shape(lambda x: model.init({'params': jax.random.key(0),
                                                'gumbel': jax.random.key(1)}, x),
                          jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32))['params']
  return {k: sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(v))
          for k, v in shapes.items()}


def test_paper_preset_has_table_viii_parameters_and_position_embedding_options():
  """Table VIII's 47.4M: the paper preset's token-score MLPs are ViT MLP blocks (D -> 4D ->
  D, then D -> 1); counts against the layer shapes written out by hand (D = 384)."""
  d = 384
  paper = focus_config.get_config('paper')
  counts = _param_counts(paper)
  vit_mlp = (d * 4 * d + 4 * d) + (4 * d * d + d)  # fc1, fc2 (kernels and biases)
  assert counts['score_rgb'] == counts['score_aux'] == vit_mlp + d + 1
  assert abs(sum(counts.values()) - 47.4e6) / 47.4e6 < 0.005
  paper.model.score_mlp = 'quarter'  # the narrower reading: 45.08M
  quarter = _param_counts(paper)
  assert quarter['score_rgb'] == d * (d // 4) + d // 4 + d // 4 + 1
  paper.model.score_mlp, paper.model.pos_embed = 'vit', 'learned'  # DeiT-S's embedding kept
  learned = _param_counts(paper)
  assert learned['rgb_vit'] - counts['rgb_vit'] == (1 + (224 // 16) ** 2) * d
  # 'frozen': DeiT-S's embedding with no gradient; 'learned' trains it (the ViT FoCus
  # builds, without blocks: the embedding is its own part).
  x = jnp.asarray(_images(4, (1, 32, 32, 3)))
  for kind, moves in (('learned', True), ('frozen', False)):
    vit = ViT(patch_size=16, embed_dim=8, depth=0, num_heads=2, img_size=32, pos_embed=kind)
    params = vit.init(jax.random.key(0), x)['params']
    grads = jax.grad(lambda p: jnp.sum(vit.apply({'params': p}, x)['tokens'] ** 2))(params)
    assert (float(jnp.abs(grads['pos_embed']).max()) > 0) == moves, kind
