"""Learning-rate schedules under jit, at and beyond their last step."""
from __future__ import annotations

import jax
import numpy as np
import pytest

from configs import common
from fjax import optim


@pytest.mark.parametrize('name', ['poly', 'cosine', 'constant'])
def test_schedules_are_finite_and_match_their_formula(name):
  config = common.get_base_config()
  config.optimizer.lr, config.total_steps = 0.009, 3
  config.schedule.update(name=name, power=0.9, warmup_steps=0, end_factor=0.0)
  lr = jax.jit(optim.schedule(config))
  got = np.array([float(lr(t)) for t in range(7)])
  assert np.isfinite(got).all(), got
  t = np.minimum(np.arange(7), 3) / 3
  want = {'poly': 0.009 * (1 - t) ** 0.9, 'cosine': 0.009 * 0.5 * (1 + np.cos(np.pi * t)),
          'constant': np.full(7, 0.009)}[name]
  np.testing.assert_allclose(got, want, atol=1e-7)


def test_poly_floor_is_the_released_min_lr():
  # MSCCNet's released PolyScheduler: min_lr = lr / 100, lr_t = (lr - min) (1 - t/T)^0.9 + min.
  config = common.get_base_config()
  config.optimizer.lr, config.total_steps = 0.009, 5
  config.schedule.update(name='poly', power=0.9, warmup_steps=0, end_factor=0.01)
  lr = jax.jit(optim.schedule(config))
  t = np.minimum(np.arange(8), 5) / 5
  np.testing.assert_allclose([float(lr(i)) for i in range(8)],
                             (0.009 - 9e-5) * (1 - t) ** 0.9 + 9e-5, rtol=1e-6)


def test_total_steps_from_epochs():
  from fjax import train  # pylint: disable=g-import-not-at-top
  config = common.get_base_config()
  config.batch_size, config.total_steps = 8, 100
  train.steps_from_epochs(config, 26)  # epochs = 0: total_steps stays
  assert config.total_steps == 100
  config.epochs = 3
  train.steps_from_epochs(config, 26)  # 26 // 8 = 3 steps an epoch (the rest dropped)
  assert config.total_steps == 9
