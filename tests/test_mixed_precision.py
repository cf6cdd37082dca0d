"""model.dtype=bfloat16: bf16 compute, float32 parameters, optimizer state, BatchNorm
statistics, losses and the outputs metrics read; one train step of every model config's
test preset against float32 from the same initial state and batch."""
from __future__ import annotations

import importlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.conftest import error_line, run_cli

# One SGD step at lr 1 without momentum or decay (so the update is minus the gradient) of
# every test preset in bfloat16 and in float32 from the same state and batch.
#
# The loss: bf16 keeps 8 significant bits, so each rounding is off by at most u = 2^-9
# (0.2 %) relative; statistics, reductions and losses stay float32 (layers.py), so the
# roundings that reach the loss are those of the L bf16 convolutions and dot products on
# the forward path, one relative error of up to u each. Independent roundings add as a
# random walk (Higham and Mary's probabilistic bound): sqrt(L) u, and the test allows
# three times that, LOSS_TOL = 3 sqrt(L) u. L is read from the step itself: its bf16
# convolutions and dots over 3 (each forward op has a data and a weight gradient), e.g.
# xception 21 -> 2.7 %, focus_eval 71 -> 4.9 %. Measured (AVX512-BF16 CPU): 0.0-2.4 %.
# BatchNorm over maps of 1x1 amplifies a rounding by |mean| / std of its 8 values, which
# no bound in u covers (focus_eval's test preset at 32 px: EfficientNet's last stage is
# 1x1; 5-8 % measured), so the cases below run where the deepest maps are at least 2x2.
# The update cannot be bounded that way: BatchNorm over 4-8 examples of 1x1-4x4 maps
# divides by batch statistics that bf16's rounding of its inputs moves, and the backward
# pass amplifies that layer by layer, so |g_bf16 - g_f32| / |g_f32| depends on how the CPU
# multiplies bf16. Measured: 0.3-0.6 where XLA widens bf16 to float32; 0.10-0.86 on a CPU
# with native bf16 dot products (AVX512-BF16; focus_eval the highest). The float32
# gradient at bf16-rounded parameters and inputs alone is 0.35 away from float32's. What
# must hold is that it is the same step: REL_UPDATE_TOL = 1, because
# |g16 - g32| < |g32| <=> 2<g16, g32> > |g16|^2, i.e. the bf16 update descends the float32
# loss (L(p - e g16) ~ L - e<g32, g16> < L) by at least half its own squared length.
# A broken cast or a layer computed wrongly does not.
ROUNDING = 2.0 ** -9  # bf16's unit roundoff
REL_UPDATE_TOL = 1.0
MIN_SIZE = {'focus_eval': 64}  # EfficientNet's stride-32 stage at 2x2 (see above)
CASES = ('aunet', 'focus', 'focus_eval', 'local_similarity', 'msccnet', 'semantic_noise',
         'xception')


def _config(name: str, dtype: str):
  config = importlib.import_module(f'configs.{name}').get_config('test')
  config.model.dtype = dtype
  config.input.image_size = max(config.input.image_size, MIN_SIZE.get(name, 0))
  # SGD at lr 1 without momentum or decay: params_after - params_before = -gradient.
  config.optimizer.update(name='sgd', lr=1.0, momentum=0.0, weight_decay=0.0,
                          grad_clip=0.0)
  return config


def _batch(config, model_lib):
  from fjax import registry  # pylint: disable=g-import-not-at-top
  from fjax.data import loaders  # pylint: disable=g-import-not-at-top
  if config.input.tamper.pairs:  # pairs exist only in training batches
    batch = next(iter(loaders.train_loader(config, 4)))
  else:
    batch = next(loaders.eval_batches(config, 'train', 8)[2])
  return {k: batch[k] for k in registry.batch_keys(model_lib, config)}


def _dtypes(tree) -> set[str]:
  return {str(x.dtype) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)}


def _compute_ops(hlo: str) -> dict[str, int]:
  """Convolutions and dot products of a lowered (StableHLO) program by result dtype."""
  counts: dict[str, int] = {}
  for line in hlo.splitlines():
    if 'stablehlo.convolution' in line or 'stablehlo.dot_general' in line:
      found = re.findall(r'->\s*tensor<[^>]*x(\w+)>', line)
      if found:
        counts[found[-1]] = counts.get(found[-1], 0) + 1
  return counts


@pytest.mark.parametrize('name', CASES)
def test_one_bf16_step_matches_float32(name, data_dir):
  from fjax import run as run_lib  # pylint: disable=g-import-not-at-top
  from fjax.trainer import sharding, train  # pylint: disable=g-import-not-at-top
  c32, c16 = _config(name, 'float32'), _config(name, 'bfloat16')
  for c in (c32, c16):
    c.dataset.data_dir = data_dir
  r32, r16 = run_lib.open_run(c32), run_lib.open_run(c16)
  model_lib, m32, m16, mesh = r32.model_lib, r32.model, r16.model, r32.mesh
  # The initial state does not depend on the compute dtype: one init serves both.
  st, shardings = r32.fresh_state()
  abstract16, _ = r16.abstract_state()
  assert _dtypes(abstract16) == {'float32'}
  batch = sharding.to_global(_batch(c32, model_lib), mesh)
  results = {}
  for dtype, config, model in (('float32', c32, m32), ('bfloat16', c16, m16)):
    step = train.make_train_step(config, model_lib, model, mesh, shardings)
    fresh = jax.tree.map(jnp.copy, st)  # the step donates its state
    lowered = step.lower(fresh, dict(batch))
    new, values = lowered.compile()(fresh, dict(batch))
    results[dtype] = (jax.device_get(new), jax.device_get(values), lowered.as_text())
  (s32, v32, hlo32), (s16, v16, hlo16) = results['float32'], results['bfloat16']

  # Parameters, optimizer state and BatchNorm statistics stay float32 in bf16 mode.
  assert _dtypes(s16['params']) == {'float32'}
  assert _dtypes(s16['opt_state']) <= {'float32'}
  assert _dtypes(s16['model_state']) <= {'float32'}
  if 'batch_stats' in s32['model_state']:
    assert _dtypes(s16['model_state']['batch_stats']) == {'float32'}
  # bf16 really computes in bf16: its convolutions and dots are bf16 (float32 ones are the
  # precision-kept reductions: attention scores, class centres, GCN, LLSM's sum, ...);
  # float32 mode has none.
  ops16, ops32 = _compute_ops(hlo16), _compute_ops(hlo32)
  assert 'bf16' not in ops32, ops32
  assert ops16.get('bf16', 0) > ops16.get('f32', 0), ops16

  # One step: the same loss to 3 sqrt(L) u, a descent step of the float32 loss (see above).
  assert np.isfinite(v16['loss'])
  rel_loss = abs(float(v16['loss']) - float(v32['loss'])) / abs(float(v32['loss']))
  loss_tol = 3 * np.sqrt(ops16['bf16'] / 3) * ROUNDING
  assert rel_loss < loss_tol, (float(v32['loss']), float(v16['loss']), loss_tol)
  diff = jax.tree.map(lambda a, b: np.sum((np.asarray(a, np.float64) - b) ** 2),
                      s16['params'], s32['params'])
  rel_update = np.sqrt(sum(jax.tree.leaves(diff))) / float(v32['grad_norm'])
  print(f'{name}: relative loss {rel_loss:.4f} (< {loss_tol:.4f}), relative update '
        f'{rel_update:.3f}')
  assert rel_update < REL_UPDATE_TOL, rel_update

  # What the metrics read is float32: every output, the score and the map.
  images = batch['image'][:, 0] if batch['image'].ndim == 5 else batch['image']
  def outputs(variables, images):
    out = m16.apply(variables, images)
    return out, model_lib.score(out), model_lib.localization(out)
  out, score, localization = jax.eval_shape(  # dtypes as traced: nothing to compile
      outputs, {'params': s16['params'], **s16['model_state']}, images)
  assert _dtypes(out) == {'float32'}, {k: v.dtype for k, v in out.items()}
  assert score.dtype == jnp.float32 and localization.dtype == jnp.float32


def test_depthwise_conv_vjp_in_bf16():
  """The shifted-slice depthwise conv and its hand-written VJP run in bf16 (float32
  accumulation) and agree with XLA's grouped convolution in float32 to bf16's precision."""
  from fjax.models.layers import depthwise_conv  # pylint: disable=g-import-not-at-top
  x = jax.random.normal(jax.random.key(0), (2, 9, 9, 8))
  k = jax.random.normal(jax.random.key(1), (3, 3, 1, 8))
  for stride in (1, 2):
    def f(x, k, impl, dtype, stride=stride):
      y = depthwise_conv(x.astype(dtype), k.astype(dtype), stride, 'SAME', impl=impl)
      return (y.astype(jnp.float32) ** 2).sum(), y
    (_, y16), g16 = jax.value_and_grad(f, (0, 1), has_aux=True)(x, k, 'shifts', jnp.bfloat16)
    (_, y32), g32 = jax.value_and_grad(f, (0, 1), has_aux=True)(x, k, 'conv', jnp.float32)
    assert y16.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(y16, np.float32), y32, atol=0.05, rtol=2e-2)
    for a, b in zip(g16, g32):
      assert a.dtype == jnp.float32  # the cast's VJP returns the float32 primal's dtype
      assert np.linalg.norm(a - b) / np.linalg.norm(b) < 1e-2


def test_unknown_dtype_is_one_line(tmp_path):
  proc = run_cli('fjax.main', '--config=configs/xception.py:test',
                 '--config.model.dtype=float16x', f'--workdir={tmp_path / "run"}', check=False)
  assert error_line(proc) == ("error: model.dtype='float16x': use float32 or bfloat16 "
                              '(mixed precision: bfloat16 compute, float32 parameters)')
  assert not (tmp_path / 'run').exists()
