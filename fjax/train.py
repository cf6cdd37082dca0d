"""The generic trainer: one jitted, sharded step for any model of `fjax.models`.

Loop: restore (or create) state -> for each step: next grain batch, assembled into a
global array, one `train_step` (donated state) -> log, evaluate and checkpoint on their
schedules -> final evaluation on the test split.
"""
from __future__ import annotations

import math
import os

import jax
import numpy as np
import optax
from absl import logging
from tqdm import tqdm

from fjax import checkpoint, evaluate, input_pipeline, optim, registry, sharding, state
from fjax.errors import UserError
from fjax.writers import MetricWriter


def make_train_step(config, model_lib, model, mesh, shardings):
  tx, lr = optim.optimizer(config), optim.schedule(config)
  rng0 = jax.random.key(config.seed)

  def train_step(st, batch):
    rng = jax.random.fold_in(rng0, st['step'])
    rngs = {name: jax.random.fold_in(rng, i) for i, name in enumerate(model_lib.RNGS)}

    # Optional hook: extra training-call inputs (AUNet's tampering mask).
    extra = model_lib.train_inputs(batch) if hasattr(model_lib, 'train_inputs') else {}

    def loss(params):
      out, new_state = model.apply(
          {'params': params, **st['model_state']}, batch['image'], train=True, rngs=rngs,
          mutable=list(st['model_state']), **extra)
      value, terms = model_lib.loss_fn(out, batch, config)
      return value, (terms, new_state)

    (value, (terms, new_state)), grads = jax.value_and_grad(loss, has_aux=True)(
        st['params'])
    updates, opt_state = tx.update(grads, st['opt_state'], st['params'])
    new = {'step': st['step'] + 1, 'params': optax.apply_updates(st['params'], updates),
           'model_state': dict(new_state), 'opt_state': opt_state}
    return new, {'loss': value, **terms, 'grad_norm': optax.global_norm(grads),
                 'lr': lr(st['step'])}

  return jax.jit(train_step, in_shardings=(shardings, sharding.batch_sharding(mesh)),
                 out_shardings=(shardings, sharding.replicated(mesh)), donate_argnums=0)


def _device_batch(batch, config, mesh):
  return sharding.to_global({k: batch[k] for k in input_pipeline.device_keys(config)}, mesh)


def _check_finite(values: dict, step: int, last_saved):
  loss = float(values['loss'])
  if not math.isfinite(loss):
    kept = f'checkpoints up to step {last_saved} are intact' if last_saved else \
        'no checkpoint was written'
    raise UserError(f'loss is {loss} at step {step}: training diverged ({kept}); lower '
                    'optimizer.lr or set optimizer.grad_clip')


def write_config(config, workdir):
  if jax.process_index() == 0:
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      f.write(config.to_json_best_effort(indent=2))


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains (resuming if `workdir` holds checkpoints), returns the test metrics."""
  model_lib = registry.model_module(config.model.name)
  model = model_lib.build(config)
  mesh = sharding.make_mesh(config)
  local_batch = sharding.local_batch_size(config.batch_size, mesh)
  checkpoint.check_workdir_model(workdir, config)
  loader = input_pipeline.train_loader(config, local_batch)
  batches = iter(loader)
  mgr = checkpoint.manager(workdir, config)
  if mgr.latest_step() is not None:
    abstract, shardings = state.abstract_state(config, model, mesh)
    st, start = checkpoint.restore(mgr, abstract, batches)
    logging.info('resumed from step %d', start)
  else:
    st, shardings = state.create(config, model, mesh)
    start = 0
  os.makedirs(workdir, exist_ok=True)
  write_config(config, workdir)
  train_step = make_train_step(config, model_lib, model, mesh, shardings)
  eval_step = evaluate.make_eval_step(model_lib, model, mesh)
  try:
    return _loop(config, workdir, mgr, st, start, batches, mesh, train_step, eval_step)
  finally:
    mgr.wait_until_finished()  # never leave a save in flight, even on error
    mgr.close()


def _loop(config, workdir, mgr, st, start, batches, mesh, train_step, eval_step):
  writer = MetricWriter(workdir)
  last_saved = start or None
  bar = tqdm(range(start, config.total_steps), initial=start, total=config.total_steps,
             desc='train', disable=jax.process_index() != 0)
  for i in bar:
    st, step_metrics = train_step(st, _device_batch(next(batches), config, mesh))
    step = i + 1
    last = step == config.total_steps
    if step % config.log_every == 0 or last:
      values = jax.device_get(step_metrics)
      _check_finite(values, step, last_saved)
      writer.write(step, 'train', values)
      bar.set_postfix(loss=f'{float(values["loss"]):.4f}')
    eval_metrics = None
    if step % config.eval_every == 0 or last:
      eval_metrics = evaluate.evaluate(config, st, eval_step, mesh,
                                       config.dataset.split_eval)
      writer.write(step, config.dataset.split_eval, eval_metrics)
    if step % config.checkpoint_every == 0 or last:
      _check_finite(jax.device_get(step_metrics), step, last_saved)
      checkpoint.save(mgr, step, st, batches, _rankable(eval_metrics, config))
      last_saved = step
  mgr.wait_until_finished()
  test = evaluate.evaluate(config, st, eval_step, mesh, config.dataset.split_test)
  writer.write(config.total_steps, config.dataset.split_test, test)
  writer.close()
  return test


def _rankable(eval_metrics, config):
  if not eval_metrics:
    return None
  value = eval_metrics.get(config.best_metric, float('nan'))
  return {config.best_metric: value} if np.isfinite(value) else None
