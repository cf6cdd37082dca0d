"""MSCCNet: DCT bases, batched class centers, GCN mixing, shapes, ablations, learning."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import fft

from configs import msccnet as msccnet_config
from fjax import registry
from fjax.data import examples
from fjax.models import image_ops, msccnet
from tests.conftest import run_steps


def test_dct_bases_are_orthonormal_scipy_dct_ii_vectors():
  h, w, k = 8, 6, 3
  bases = image_ops.dct_bases(h, w, k)
  flat = bases.reshape(k * k, -1)
  np.testing.assert_allclose(flat @ flat.T, np.eye(k * k), atol=1e-6)
  eye_h, eye_w = np.eye(h), np.eye(w)
  for n, (u, v) in enumerate((u, v) for u in range(k) for v in range(k)):
    ref = np.outer(fft.idct(eye_h[u], norm='ortho'), fft.idct(eye_w[v], norm='ortho'))
    np.testing.assert_allclose(bases[n], ref, atol=1e-6)


def test_class_centers_equal_a_loop_over_groups():
  rng = np.random.default_rng(0)
  probs = rng.random((2, 4, 30, 2)).astype(np.float32)
  feats = rng.standard_normal((2, 4, 30, 5)).astype(np.float32)
  got = np.asarray(msccnet.class_centers(jnp.asarray(probs), jnp.asarray(feats)))
  for b in range(2):
    for n in range(4):
      np.testing.assert_allclose(got[b, n], probs[b, n].T @ feats[b, n], rtol=1e-5, atol=1e-5)


def _mscc_refined(module, variables, f_a):
  _, inter = module.apply(variables, f_a, train=False, mutable=['intermediates'])
  return np.asarray(inter['intermediates']['refined'][0])


@pytest.mark.parametrize('gcn', [True, False])
def test_gcn_mixes_groups(gcn):
  """With the GCN, changing group 0 of F_A changes group 1's refined features; without it
  the groups stay independent."""
  module = msccnet.MSCC(groups=4, gcn=gcn)
  f_a = jax.random.normal(jax.random.key(0), (1, 8, 8, 16))
  variables = module.init(jax.random.key(1), f_a, train=False)
  base = _mscc_refined(module, variables, f_a)
  moved = _mscc_refined(module, variables, f_a.at[..., 0:4].multiply(3.0))  # group 0
  change = np.abs(moved - base)[..., 4:8].max()  # group 1's channels
  assert (change > 1e-4) if gcn else (change < 1e-6), change


def _config(**model):
  config = msccnet_config.get_config('test')
  for k, v in model.items():
    setattr(config.model, k, v)
  return config


def test_output_shapes_at_512_and_another_size():
  config = _config(channels=16)
  model = registry.model_module('msccnet').build(config)
  for size in (512, 96):
    x = jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32)
    variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x), x)
    out = jax.eval_shape(lambda v, x: model.apply(v, x), variables, x)
    assert out['cls_logits'].shape == (2, 2)
    assert out['seg_logits'].shape == out['mscc_logits'].shape == (2, size, size, 2)


@pytest.mark.parametrize('ablation', [  # tables 6-8, combined to keep the suite short
    {'gcn': False, 'dct': False, 'groups': 16}, {'fuse': 'add', 'groups': 1, 'mfa': False},
    {'mscc': False, 'mscc_weight': 0.0}, {'official': True}])
def test_ablations_train_a_step_with_finite_gradients(ablation, data_dir):
  config = _config(**ablation)
  *_, values = run_steps(config, data_dir, 1)
  assert all(np.isfinite(v).all() for v in values[0].values())
  assert ('loss_mscc' in values[0]) == ablation.get('mscc', True)


def test_steps_lower_all_three_losses(data_dir):
  config = _config()
  config.optimizer.lr, config.total_steps = 0.02, 100
  *_, values = run_steps(config, data_dir, 12)
  for term in ('loss_cls', 'loss_seg', 'loss_mscc'):
    first, last = values[0][term], min(v[term] for v in values[-3:])
    assert last < 0.8 * first, (term, first, last)


def test_pixel_losses_skip_the_ignored_border():
  """The released CE (ignore_index 255, mean over the batch's other pixels), written as
  a loop over known pixels; -1 marks examples.IGNORE pixels."""
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(2, 6, 6, 2)).astype(np.float32)
  mask = (rng.uniform(size=(2, 6, 6)) > 0.5).astype(np.float32)
  mask[:, :2] = examples.IGNORE
  total, count = 0.0, 0
  for b, i, j in np.ndindex(2, 6, 6):
    if mask[b, i, j] >= 0:
      z = logits[b, i, j]
      total += np.log(np.exp(z).sum()) - z[int(mask[b, i, j])]
      count += 1
  got = msccnet._pixel_ce(jnp.asarray(logits), jnp.asarray(mask), jnp.ones(2))  # pylint: disable=protected-access
  np.testing.assert_allclose(float(got), total / count, rtol=1e-5)
