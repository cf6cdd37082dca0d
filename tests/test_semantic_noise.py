"""Detect and Locate: shapes at 299, ablations, learning, localisation map, five-way head."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import semantic_noise as sn_config
from fjax.data import examples
from fjax.trainer import evaluate
from fjax.models import semantic_noise
from tests.conftest import read_metrics, run_steps


def _config(arg='test', **model):
  config = sn_config.get_config(arg)
  for k, v in model.items():
    setattr(config.model, k, v)
  return config


@pytest.mark.parametrize('size,taps', [(299, (147, 37, 19)), (224, (109, 28, 14))])
def test_output_shapes(size, taps):
  model = semantic_noise.build(_config())
  x = jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x), x)
  out = jax.eval_shape(lambda v, x: model.apply(v, x), variables, x)
  assert out['logit'].shape == (2,)
  for t, hw in enumerate(taps, 1):
    assert out[f'seg{t}'].shape == (2, hw, hw, 2)
    assert out[f'noise{t}'].shape == (2, hw, hw)


def test_localization_is_the_gamma_weighted_sum():
  rng = np.random.default_rng(0)
  outs = {f'seg{t}': jnp.asarray(rng.standard_normal((1, n, n, 2)), jnp.float32)
          for t, n in ((1, 8), (2, 4), (3, 2))}
  got = np.asarray(semantic_noise.localization(outs))
  probs = {k: jax.nn.sigmoid(v[..., 1]) for k, v in outs.items()}  # BCE-trained channel 1
  up = {k: np.asarray(jax.image.resize(v, (1, 8, 8), 'linear', antialias=True))
        for k, v in probs.items()}
  np.testing.assert_allclose(got, 0.1 * up['seg1'] + 0.2 * up['seg2'] + 0.7 * up['seg3'],
                             atol=1e-6)


@pytest.mark.parametrize('ablation', [{'noise': False, 'taps': (3,)},
                                      {'semantic': False, 'stage': 1}])
def test_ablations_train_a_step(ablation, data_dir):
  *_, values = run_steps(_config(**ablation), data_dir, 1)
  assert all(np.isfinite(v) for v in values[0].values())
  if ablation.get('semantic') is False:
    assert values[0]['loss_seg'] == 0


def test_steps_lower_every_loss_term(data_dir):
  config = _config()
  config.optimizer.lr = 3e-4
  *_, values = run_steps(config, data_dir, 20)
  for term in ('loss_cls', 'loss_seg', 'loss_noise'):
    first, last = values[0][term], min(v[term] for v in values[-3:])
    assert last < 0.9 * first, (term, first, last)


def test_five_way_head_reports_recall_per_class(straight_run):
  """The fault matrix's five-way stage-2 run (shared): its classification loss is finite
  at every step, and each evaluation reports recall per class; the demo fakes are none of
  FF++'s four methods (-1, excluded), so only the real class has a recall (NaN, written
  as null, for the others)."""
  rows = read_metrics(straight_run('semantic_noise_stage2_five_way'))
  assert all(np.isfinite(r['loss_cls']) for r in rows if r['split'] == 'train')
  evals = [r for r in rows if 'mean_recall' in r]
  assert {r['split'] for r in evals} >= {'validation', 'test'}, rows[-1]
  for r in evals:
    assert 0.0 <= r['recall_real'] <= 1.0 and r['mean_recall'] == r['recall_real'], r
    assert all(r[f'recall_{m}'] is None for m in examples.METHOD_CLASSES[1:]), r


def test_stage1_moves_only_its_modules_and_stage2_trains_the_classifier(data_dir,
                                                                       semantic_stage1):
  """Issue 16.1: with Adam's L2 weight decay strong enough to matter in 4 steps, stage 1
  leaves every module it does not train bit-identical to its initialisation; stage 2
  takes the backbone and semantic heads from stage 1, the rest fresh, and its classifier
  learns (its weights move, scores differ between faces)."""
  from fjax import run as run_lib  # pylint: disable=g-import-not-at-top
  from tests.test_faults import final_state  # pylint: disable=g-import-not-at-top
  stage1 = semantic_stage1  # 4 steps with weight decay 0.5 (conftest)
  trained = final_state(stage1, 4)['params']
  config = _config('test,stage1')
  fresh = jax.device_get(run_lib.open_run(config).fresh_state()[0]['params'])
  stage1_modules = sn_config.STAGE1_MODULES.split(',')
  for name in fresh:
    same = jax.tree.leaves(jax.tree.map(np.array_equal, fresh[name], trained[name]))
    assert (not all(same)) if name in stage1_modules else all(same), name

  config = _config(f'test,stage2={stage1}')
  created = jax.device_get(run_lib.open_run(config).fresh_state()[0]['params'])
  for name in fresh:
    source = trained if name in stage1_modules else fresh
    assert all(jax.tree.leaves(jax.tree.map(np.array_equal, created[name], source[name]))), name
  model_lib, model, _, st, batch, _ = run_steps(config, data_dir, 2)
  assert not np.array_equal(np.asarray(st['params']['fc1']['kernel']), created['fc1']['kernel'])
  out = model.apply(evaluate.variables(st), batch['image'], train=False)
  scores = np.asarray(model_lib.score(out))
  assert scores.max() - scores.min() > 1e-6, scores


def test_semantic_loss_is_bce_on_soft_masks_as_released():
  """L_seg against PyTorch's BCEWithLogitsLoss on the released target [m, 1 - m]
  (channel 0 manipulated there, 1 here) with the mask resized to each tap, soft."""
  import torch  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(1)
  mask = (rng.uniform(size=(2, 32, 32)) > 0.6).astype(np.float32)
  outputs = {f'seg{t}': jnp.asarray(rng.normal(size=(2, n, n, 2)), jnp.float32)
             for t, n in ((1, 13), (2, 4), (3, 2))}
  config = _config()
  batch = {'valid': jnp.ones(2), 'label': jnp.ones(2, jnp.int32), 'mask': jnp.asarray(mask),
           'noise': jnp.zeros((2, 32, 32, 3))}
  outputs['logit'] = jnp.zeros(2)
  _, terms = semantic_noise.loss_fn(outputs, batch, config)
  ref = 0.0
  for k in ('seg1', 'seg2', 'seg3'):
    n = outputs[k].shape[1]
    m = np.asarray(jax.image.resize(jnp.asarray(mask), (2, n, n), 'linear', antialias=True))
    assert 0 < ((m > 0.01) & (m < 0.99)).mean()  # soft, not thresholded
    target = torch.from_numpy(np.stack([m, 1 - m], 1))
    logits = torch.from_numpy(np.asarray(outputs[k])[..., ::-1].transpose(0, 3, 1, 2).copy())
    ref += float(torch.nn.functional.binary_cross_entropy_with_logits(logits, target))
  np.testing.assert_allclose(float(terms['loss_seg']), ref, rtol=1e-5)


def test_initialisation_is_the_released_one():
  """Convs He-normal over fan-out (N(0, 2 / (k k out))), biases and linears PyTorch's
  uniform defaults, transposed convs uniform over torch's fan (k k out)."""
  config = _config()
  config.input.image_size = 64
  model = semantic_noise.build(config)
  # jitted: op by op, the whole network's init took 9 minutes in the session-9 CI run
  p = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 64, 64, 3)))['params']
  k = np.asarray(p['seg3']['Conv_1']['kernel'])  # 3x3, 728 -> 256
  assert np.std(k) == pytest.approx(math.sqrt(2 / (9 * 256)), rel=0.02)
  assert np.asarray(p['backbone']['conv1']['kernel']).std() == pytest.approx(
      math.sqrt(2 / (9 * 32)), rel=0.15)
  b = np.asarray(p['seg3']['Conv_1']['bias'])
  assert np.abs(b).max() <= 1 / math.sqrt(9 * 728) and np.abs(b).max() > 0.8 / math.sqrt(9 * 728)
  t = np.asarray(p['seg1']['ConvTranspose_0']['kernel'])  # 5x5, 256 -> 64
  bound = 1 / math.sqrt(25 * 64)
  assert np.abs(t).max() <= bound and np.abs(t).max() > 0.99 * bound
  fc = np.asarray(p['fc0']['kernel'])
  assert np.abs(fc).max() <= 1 / math.sqrt(2912) and np.abs(fc).max() > 0.99 / math.sqrt(2912)
