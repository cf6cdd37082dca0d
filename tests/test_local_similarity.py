"""Learnable local similarity: decomposed pairwise network, targets, CLAFFM, learning."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from configs import local_similarity as ls_config
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


def test_claffm_shapes_and_gate_range():
  a = jax.random.normal(jax.random.key(0), (2, 14, 14, 32))
  b = jax.random.normal(jax.random.key(1), (2, 7, 7, 128)) * 5
  module = ls.CLAFFM()
  variables = module.init(jax.random.key(2), a, b)
  out, gate = module.apply(variables, a, b)
  assert out.shape == a.shape and gate.shape == (2, 1, 1, 32)
  assert float(gate.min()) >= 0 and float(gate.max()) <= 1
  np.testing.assert_allclose(out, a * gate, rtol=1e-6)


def test_steps_lower_every_loss_term(data_dir):
  config = ls_config.get_config('test')
  config.optimizer.lr = 3e-4
  *_, values = run_steps(config, data_dir, 12)
  for term in ('loss_cls', 'loss_ls', 'loss_loc'):
    first, last = values[0][term], min(v[term] for v in values[-3:])
    assert last < 0.9 * first, (term, first, last)
