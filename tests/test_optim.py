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
