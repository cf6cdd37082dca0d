"""Detect and Locate: shapes at 299, ablations, learning, localisation map, five-way head."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import semantic_noise as sn_config
from fjax import evaluate
from fjax.models import semantic_noise
from tests.conftest import run_steps


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
  probs = {k: jax.nn.softmax(v, -1)[..., 1] for k, v in outs.items()}
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


def test_five_way_head_reports_recall_per_class(data_dir):
  config = _config('test,five_way')
  model_lib, model, mesh, st, batch, values = run_steps(config, data_dir, 1)
  assert np.isfinite(values[0]['loss_cls'])
  out = evaluate.make_eval_step(model_lib, model, mesh)(st, batch)
  assert out['pred_class'].shape == out['method_label'].shape == (8,)
  assert set(np.asarray(out['pred_class']).tolist()) <= set(range(5))
  # demo fakes are none of FF++'s four methods: -1, excluded from the recall
  labels = np.asarray(out['method_label'])
  assert set(labels.tolist()) <= {-1, 0} and (labels == 0).any()
