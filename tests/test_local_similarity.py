"""Learnable local similarity: decomposed pairwise network, targets, CLAFFM, learning."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from configs import local_similarity as ls_config
from fjax.models import image_ops
from fjax.models import local_similarity as ls
from tests.conftest import run_steps


def test_decomposed_pairs_equal_the_explicit_pair_network():
  feat = jax.random.normal(jax.random.key(0), (2, 3, 4, 10))
  module = ls.LLSM(hidden=6)
  variables = module.init(jax.random.key(1), feat)
  got = np.asarray(module.apply(variables, feat))
  p = variables['params']
  ref = np.asarray(ls.naive_pairs(feat, p['kernel_p'], p['kernel_q'], p['bias'],
                                  p['out_kernel'], p['out_bias']))[..., 0]
  assert got.shape == (2, 12, 12)
  np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
  # and one pair by hand: f([F_p, F_q]) with the (2C, hidden) first layer
  f = np.asarray(feat).reshape(2, 12, 10)
  pair = np.concatenate([f[1, 7], f[1, 2]])
  kernel = np.concatenate([p['kernel_p'], p['kernel_q']])
  hand = np.maximum(pair @ kernel + p['bias'], 0) @ np.asarray(p['out_kernel'])[:, 0]
  assert abs(got[1, 7, 2] - (hand + float(p['out_bias']))) < 1e-4


def test_similarity_targets():
  mask = np.zeros((2, 8, 8), np.float32)
  mask[1, :4, :4] = 1.0  # top-left quarter of the second face is fake
  gt = np.asarray(ls.similarity_target(jnp.asarray(mask), (2, 2)))
  assert not gt[0].any()                       # a real face: all similar
  np.testing.assert_array_equal(gt[1], gt[1].T)  # symmetric
  m = np.array([1, 0, 0, 0], np.float32)       # the downsampled second mask, flattened
  for p in range(4):
    for q in range(4):
      assert gt[1, p, q] == float(abs(m[p] - m[q]) > 0.5)


def test_adaptive_pooling_is_pytorchs():
  """Against torch's adaptive_avg_pool2d and a loop over its bins (7 -> 4 overlaps)."""
  import torch  # pylint: disable=g-import-not-at-top
  x = np.random.default_rng(0).normal(size=(2, 7, 9, 3)).astype(np.float32)
  got = np.asarray(image_ops.adaptive_avg_pool(jnp.asarray(x), (4, 4)))
  ref = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(x.transpose(0, 3, 1, 2)), 4)
  np.testing.assert_allclose(got, ref.numpy().transpose(0, 2, 3, 1), rtol=1e-6, atol=1e-6)
  for i in range(4):
    for j in range(4):
      rows = slice(math.floor(i * 7 / 4), math.ceil((i + 1) * 7 / 4))
      cols = slice(math.floor(j * 9 / 4), math.ceil((j + 1) * 9 / 4))
      np.testing.assert_allclose(got[:, i, j], x[:, rows, cols].mean((1, 2)), rtol=1e-5)


def test_claffm_is_pool_conv_relu_conv_sigmoid_gate():
  """CLAFFM written out with loops: 4x4 adaptive average pool of B, the 4x4 valid conv,
  ReLU, the 1x1 conv, sigmoid, A times the gate per channel."""
  rng = np.random.default_rng(1)
  a = rng.normal(size=(2, 14, 14, 32)).astype(np.float32)
  b = (rng.normal(size=(2, 7, 7, 128)) * 5).astype(np.float32)
  module = ls.CLAFFM()
  variables = module.init(jax.random.key(2), jnp.asarray(a), jnp.asarray(b))
  out, gate = module.apply(variables, jnp.asarray(a), jnp.asarray(b))
  p = jax.tree_util.tree_map(np.asarray, variables['params'])
  k1, b1, k2, b2 = p['Conv_0']['kernel'], p['Conv_0']['bias'], p['Conv_1']['kernel'], p['Conv_1']['bias']
  for n in range(2):
    pooled = np.zeros((4, 4, 128))
    for i in range(4):
      for j in range(4):
        pooled[i, j] = b[n, (i * 7) // 4:-((-(i + 1) * 7) // 4),
                         (j * 7) // 4:-((-(j + 1) * 7) // 4)].mean((0, 1))
    hidden = np.maximum([sum(pooled[i, j] @ k1[i, j, :, o] for i in range(4) for j in range(4))
                         + b1[o] for o in range(k1.shape[-1])], 0)
    g = 1 / (1 + np.exp(-(hidden @ k2[0, 0] + b2)))
    np.testing.assert_allclose(np.asarray(gate)[n, 0, 0], g, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(out)[n], a[n] * g, rtol=1e-4, atol=1e-6)


def test_table_iv_rows_drop_their_modules_and_losses():
  """Baseline (no LLSM, no FLM: Xception's pooled features), +LLSM, +FLM (the full model
  trains in test_steps_lower_every_loss_term)."""
  images = jax.random.normal(jax.random.key(0), (2, 32, 32, 3))
  batch = {'valid': jnp.ones(2), 'label': jnp.array([0, 1]), 'mask': jnp.zeros((2, 32, 32))}
  for llsm, flm in ((False, False), (True, False), (False, True)):
    config = ls_config.get_config('test')
    config.model.llsm, config.model.flm = llsm, flm
    model = ls.build(config)
    variables = jax.eval_shape(model.init, jax.random.key(1), images)
    out, terms = jax.eval_shape(lambda v: (lambda o: (o, ls.loss_fn(o, batch, config)[1]))(
        model.apply(v, images)), variables)  # shapes only: no compute
    assert ('loss_ls' in terms) == llsm and ('loss_loc' in terms) == flm
    assert ('llsm' in variables['params']) == llsm and ('mask_head' in variables['params']) == flm
    assert ('mask_logits' in out) == flm and out['logit'].shape == (2,)


def test_steps_lower_every_loss_term(data_dir):
  config = ls_config.get_config('test')
  config.optimizer.lr = 3e-4
  *_, values = run_steps(config, data_dir, 12)
  for term in ('loss_cls', 'loss_ls', 'loss_loc'):
    first, last = values[0][term], min(v[term] for v in values[-3:])
    assert last < 0.9 * first, (term, first, last)
