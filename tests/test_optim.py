"""Learning-rate schedules under jit, at and beyond their last step."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import common
from fjax.trainer import optim
from fjax.util.errors import UserError


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
  from fjax.trainer import train  # pylint: disable=g-import-not-at-top
  config = common.get_base_config()
  config.batch_size, config.total_steps = 8, 100
  train.steps_from_epochs(config, 26)  # epochs = 0: total_steps stays
  assert config.total_steps == 100
  config.epochs = 3
  train.steps_from_epochs(config, 26)  # 26 // 8 = 3 steps an epoch (the rest dropped)
  assert config.total_steps == 9


def test_accumulated_micro_batches_give_the_big_batchs_update():
  """accum_steps=4 on a batch of 8 (no BatchNorm, so the micro-batches see the same
  model) equals one step on the whole batch; with BatchNorm (Xception) it runs finite."""
  import types  # pylint: disable=g-import-not-at-top
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  from configs import xception  # pylint: disable=g-import-not-at-top
  from fjax.trainer import sharding, state, train  # pylint: disable=g-import-not-at-top
  from fjax.models import losses  # pylint: disable=g-import-not-at-top

  class Tiny(nn.Module):
    @nn.compact
    def __call__(self, images, *, train=False):
      x = nn.relu(nn.Dense(16)(images.reshape(images.shape[0], -1)))
      return {'logit': nn.Dense(1)(x)[:, 0]}

  def loss_fn(out, batch, config):
    cls = losses.bce(out['logit'], batch['label'].astype(jnp.float32), batch['valid'])
    return cls, {'loss_cls': cls}
  lib = types.SimpleNamespace(RNGS=(), loss_fn=loss_fn)
  rng = np.random.default_rng(0)
  batch = {'image': rng.normal(size=(8, 8, 8, 3)).astype(np.float32),
           'label': rng.integers(0, 2, 8).astype(np.int32), 'valid': np.ones(8, np.float32)}
  results = []
  for accum in (1, 4):
    config = xception.get_config('test')
    config.input.image_size, config.batch_size, config.accum_steps = 8, 8, accum
    config.optimizer.update(name='adam', lr=1e-2)
    mesh = sharding.make_mesh(config)
    st, shardings = state.create(config, Tiny(), mesh)
    step = train.make_train_step(config, lib, Tiny(), mesh, shardings)
    st, metrics = step(st, sharding.to_global(dict(batch), mesh))
    results.append((jax.device_get(st['params']), jax.device_get(metrics)))
  (p1, m1), (p4, m4) = results
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), p1, p4)
  for k in ('loss', 'loss_cls', 'grad_norm'):
    np.testing.assert_allclose(m1[k], m4[k], rtol=1e-5)
  config = xception.get_config('test')
  config.accum_steps = 3
  with pytest.raises(UserError, match='accum_steps=3'):
    train.make_train_step(config, lib, Tiny(), sharding.make_mesh(config), None)


def test_bench_plan_compiles_for_host_devices_without_running():
  """`fjax.bench --plan`: the train step compiled for 2 host devices; per-device batch,
  the state in the arguments (parameters and Adam's two moments), FLOPs, the fits table."""
  import json  # pylint: disable=g-import-not-at-top
  from tests.conftest import run_cli  # pylint: disable=g-import-not-at-top
  proc = run_cli('fjax.bench', '--plan', '--config=configs/xception.py:test', '--devices=2',
                 '--config.accum_steps=2')
  row = json.loads(proc.stdout.strip().splitlines()[-1])
  assert row['devices'] == 2 and row['batch_per_device'] == row['global_batch'] // 2
  assert row['accum_steps'] == 2 and row['tflops_per_step'] > 0
  state_gib = row['params_m'] * 1e6 * 4 * 3 / 2 ** 30  # params, Adam mu and nu (replicated)
  # (the row rounds params_m to 0.01 M and GiB to 0.001: the lower bound allows that)
  assert state_gib - 1e-3 <= row['argument_gib'] < state_gib * 1.2
  assert row['peak_gib'] == pytest.approx(row['argument_gib'] + row['temp_gib'], abs=2e-3)
  assert set(row['fits']) == {'16 GB', '40 GB', '80 GB'}


def test_bench_input_sizes_host_cores_from_the_step_flops(data_dir):
  """`fjax.bench --input --demo_data`: a preset's pipeline with its FF++ selection dropped
  runs on the demo set; host cores = accelerator images/s (batch x TFLOP/s / FLOPs per
  step) over the loader's images/s."""
  from configs import xception  # pylint: disable=g-import-not-at-top
  from fjax import bench_pipeline, bench_step  # pylint: disable=g-import-not-at-top
  config = xception.get_config('test')
  config.dataset.update(data_dir=data_dir, methods=('Deepfakes',), frames_train=10)
  row = bench_pipeline.bench_input(config, 2, demo_data=True, tflops=['2'])
  assert row['images_per_s'] > 0 and row['labels'] == []
  flops = bench_step.step_flops(bench_pipeline.on_demo_data(config))
  assert row['tflops_per_step'] == pytest.approx(flops / 1e12, abs=1e-3)
  rate = config.batch_size * 2e12 / flops
  assert row['accelerator_images_per_s@2'] == pytest.approx(rate, rel=1e-3)
  # workers=0: the per-core rate is images per CPU-second of the process
  assert row['host_cores@2'] == pytest.approx(rate / row['images_per_cpu_s'], rel=0.02, abs=0.1)
  assert row['images_per_cpu_s'] > 0 and row['labels_on_device'] == []


def test_linear_decay_is_sbis_linear_decay_lr_stepped_per_epoch():
  """SBI's src/utils/scheduler.py LinearDecayLR(optimizer, n_epoch=100, start_decay=75),
  stepped after each epoch: epoch e trains at 1e-3 up to e = 75, then at
  1e-3 - 1e-3 / 25 * (e - 75). Values written out by hand at chosen epochs, 7 steps an
  epoch (total_steps 700); then the per-step form (epochs = 0, 20 steps, start 15)."""
  config = common.get_base_config()
  config.optimizer.lr, config.epochs, config.total_steps = 1e-3, 100, 700
  config.schedule.update(name='linear_decay', warmup_steps=0, decay_start=0.75)
  lr = jax.jit(optim.schedule(config))
  by_hand = {0: 1e-3, 75: 1e-3, 76: 0.96e-3, 80: 0.8e-3, 90: 0.4e-3, 99: 0.04e-3, 100: 0.0}
  for epoch, want in by_hand.items():
    for step in (7 * epoch, 7 * epoch + 6):  # first and last step of the epoch
      assert float(lr(step)) == pytest.approx(want, abs=1e-9), (epoch, step)
  config.epochs, config.total_steps = 0, 20
  lr = jax.jit(optim.schedule(config))
  np.testing.assert_allclose([float(lr(t)) for t in (0, 15, 16, 17, 19, 20, 25)],
                             [1e-3, 1e-3, 0.8e-3, 0.6e-3, 0.2e-3, 0.0, 0.0], atol=1e-9)
