"""The generic trainer: one jitted, sharded step for any model of `fjax.models`.

Loop: restore (or create) state -> for each step: next grain batch, assembled into a
global array, one `train_step` (donated state) -> log, evaluate and checkpoint on their
schedules -> final evaluation on the test split.
"""
from __future__ import annotations

import math
import os
import signal
import sys
import threading

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging
from tqdm import tqdm

from fjax import registry
from fjax.data import loaders, schema
from fjax.models import au_regions, wavelet
from fjax.trainer import checkpoint, evaluate, optim, sharding
from fjax.util import files, locks
from fjax.util.errors import UserError
from fjax.trainer.writers import MetricWriter


def make_train_step(config, model_lib, model, mesh, shardings):
  """The jitted step. With `accum_steps` = a > 1 the batch is a micro-batches of B / a
  (rows i, i + a, ... : every device keeps its own rows), run one after the other
  (BatchNorm statistics carried through, as a PyTorch loop over micro-batches); their
  gradients, loss and terms are averaged and the optimizer updates once."""
  tx, lr = optim.optimizer(config), optim.schedule(config)
  rng0 = jax.random.key(config.seed)
  accum = config.accum_steps
  per_device = config.batch_size // mesh.shape[sharding.DATA_AXIS]
  if accum < 1 or per_device % accum:
    raise UserError(f'accum_steps={accum}: the batch per device ({per_device}) must split '
                    'into that many equal micro-batches')

  def grads_of(params, model_state, batch, rng):
    rngs = {name: jax.random.fold_in(rng, i) for i, name in enumerate(model_lib.RNGS)}
    train_inputs = registry.hook(model_lib, 'train_inputs')  # e.g. AUNet's tampering mask
    extra = train_inputs(batch) if train_inputs else {}

    def loss(params):
      out, new_state = model.apply(
          {'params': params, **model_state}, batch['image'], train=True, rngs=rngs,
          mutable=list(model_state), **extra)
      value, terms = model_lib.loss_fn(out, batch, config)
      return value, (terms, dict(new_state))
    (value, (terms, new_state)), grads = jax.value_and_grad(loss, has_aux=True)(params)
    return grads, {'loss': value, **terms}, new_state

  def train_step(st, batch):
    rng = jax.random.fold_in(rng0, st['step'])
    stop = batch.pop('stop', None)
    batch = device_labels(batch, config)
    if accum == 1:
      grads, values, model_state = grads_of(st['params'], st['model_state'], batch, rng)
    else:
      micro = jax.tree.map(lambda x: jnp.swapaxes(
          x.reshape(x.shape[0] // accum, accum, *x.shape[1:]), 0, 1), batch)

      def one(carry, i):
        grad_sum, value_sum, model_state = carry
        grads, values, model_state = grads_of(
            st['params'], model_state, jax.tree.map(lambda x: x[i], micro),
            jax.random.fold_in(rng, i))
        add = lambda a, b: jax.tree.map(jnp.add, a, b)
        return (add(grad_sum, grads), add(value_sum, values), model_state), None
      shapes = jax.eval_shape(grads_of, st['params'], st['model_state'],
                              jax.tree.map(lambda x: x[0], micro), rng)
      zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes[:2])
      (grads, values, model_state), _ = jax.lax.scan(
          one, (*zeros, st['model_state']), jnp.arange(accum))
      grads, values = jax.tree.map(lambda x: x / accum, (grads, values))
    updates, opt_state = tx.update(grads, st['opt_state'], st['params'])
    new = {'step': st['step'] + 1, 'params': optax.apply_updates(st['params'], updates),
           'model_state': model_state, 'opt_state': opt_state}
    metrics = {**values, 'grad_norm': optax.global_norm(grads), 'lr': lr(st['step'])}
    if stop is not None:  # any process asked to stop (SIGTERM): all learn it from one step
      metrics['stop'] = stop.max()
    return new, metrics

  return jax.jit(train_step, in_shardings=(shardings, sharding.batch_sharding(mesh)),
                 out_shardings=(shardings, sharding.replicated(mesh)), donate_argnums=0)


def device_labels(batch, config):
  """The batch with the labels `schema.on_device` names made on device: Detect and
  Locate's noise residual from its images (`input.noise_on=device`, fjax/models/
  wavelet.py), AUNet's AU maps from its landmarks (`input.au_maps_on=device`,
  fjax/models/au_regions.py; the landmarks and flips leave the batch)."""
  device, i = schema.on_device(config), config.input
  if 'noise' in device:
    batch = {**batch, 'noise': wavelet.noise_label(batch['image'], i.mean, i.std,
                                                   i.noise_sigma)}
  if 'au_maps' in device:
    batch = dict(batch)
    lm, flipped = batch.pop('landmarks'), batch.pop('flipped')
    if i.tamper.pairs:  # a pair shares crop, landmarks and flip: its maps made once (host too)
      maps = au_regions.au_maps(lm[:, 0], flipped[:, 0], i.image_size)
      batch['au_maps'] = jnp.broadcast_to(maps[:, None], (*lm.shape[:2], *maps.shape[1:]))
    else:
      batch['au_maps'] = au_regions.au_maps(lm, flipped, i.image_size)
  return batch


def _device_batch(batch, keys, mesh, stop: bool):
  local = {k: batch[k] for k in keys}
  local['stop'] = np.full(len(batch['label']), stop, np.int32)
  return sharding.to_global(local, mesh)


class Stopped(UserError):
  """The run stopped on a signal after writing a checkpoint (exit status 128 + signal,
  as a shell reports a process killed by it)."""
  prefix = 'stopped'

  def __init__(self, message: str, signum: int):
    super().__init__(message)
    self.exit_code = 128 + signum


class _StopSignals:
  """Notes SIGTERM (TPU maintenance, SLURM preemption and time limits, Colab, docker
  stop) while the loop runs; the loop then checkpoints the step in flight and stops.
  Only the main thread can install handlers: elsewhere nothing is caught."""

  def __init__(self):
    self.signum, self._old = 0, None

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._old = signal.signal(signal.SIGTERM, self._note)
    return self

  def _note(self, signum, frame):
    del frame
    self.signum = signum

  def __exit__(self, *exc):
    if self._old is not None:
      signal.signal(signal.SIGTERM, self._old)


def _check_finite(values: dict, step: int, last_saved):
  loss = float(values['loss'])
  if not math.isfinite(loss):
    kept = f'checkpoints up to step {last_saved} are intact' if last_saved else \
        'no checkpoint was written'
    raise UserError(f'loss is {loss} at step {step}: training diverged ({kept}); lower '
                    'optimizer.lr or set optimizer.grad_clip')


def write_config(config, workdir):
  if jax.process_index() == 0:
    files.write_text(os.path.join(workdir, 'config.json'), config.to_json_best_effort(indent=2))


def train_and_evaluate(run, workdir: str) -> dict:
  """Trains the opened run (`fjax.run.open_run`), resuming if `workdir` holds checkpoints;
  returns the test metrics. Process 0 holds the workdir's lock for the whole run: a second
  run on it is refused."""
  checkpoint.check_workdir_model(workdir, run.config)
  if jax.process_index() != 0:
    return _train(run, workdir)
  with locks.exclusive(os.path.join(workdir, '.lock'), f'workdir {workdir}', wait=False):
    return _train(run, workdir)


def _train(r, workdir):
  config, model_lib, model, mesh = r.config, r.model_lib, r.model, r.mesh
  checkpoint.check_test_checkpoint(config)
  local_batch = sharding.local_batch_size(config.batch_size, mesh)
  source = loaders.train_source(config)
  steps_from_epochs(config, len(source))
  batches = iter(loaders.train_loader(config, local_batch, source))
  mgr = checkpoint.manager(workdir, config)
  if mgr.latest_step() is not None:
    abstract, shardings = r.abstract_state()
    mgr, st, start = _resume(workdir, config, mgr, abstract, batches)
  else:
    st, shardings = r.fresh_state()
    start = 0
  write_config(config, workdir)
  train_step = make_train_step(config, model_lib, model, mesh, shardings)
  eval_step = evaluate.make_eval_step(model_lib, model, mesh)
  try:
    return _loop(config, workdir, mgr, st, start, batches, mesh, train_step, eval_step,
                 registry.batch_keys(model_lib, config))
  finally:
    mgr.wait_until_finished()  # never leave a save in flight, even on error
    mgr.close()
    _close(batches)


def steps_from_epochs(config, count: int) -> None:
  """With `config.epochs` > 0, sets total_steps = epochs x (count // batch_size), count
  being the examples of the training set after its filters and balance (one epoch: every
  example once, the last partial batch dropped, as a drop_last PyTorch loader)."""
  if config.epochs <= 0:
    return
  per_epoch = count // config.batch_size
  if per_epoch == 0:
    raise UserError(f'epochs={config.epochs}: the training set has {count} examples, '
                    f'fewer than one batch of {config.batch_size}')
  config.total_steps = config.epochs * per_epoch
  if jax.process_index() == 0:
    print(f'epochs: {config.epochs} x {per_epoch} steps ({count} examples // batch '
          f'{config.batch_size}) = {config.total_steps} steps', flush=True)


def _close(batches):
  """Stops grain's worker processes and frees their shared memory now: an exit through
  `errors.fail` skips the interpreter teardown that would otherwise do it (grain 0.2's
  DataLoaderIterator has no close of its own; its inner dataset iterator does)."""
  close = getattr(batches, 'close', None) or getattr(getattr(batches, '_iterator', None),
                                                     'close', None)
  if close is not None:
    close()


def _resume(workdir, config, mgr, abstract, batches):
  """(manager, state, step) from the newest readable checkpoint: an unreadable one
  (truncated by a full disk, a copy cut short) is set aside with one line on stderr and
  the one before it is used; a mismatch (another model, data or sampler) is an error."""
  while True:
    step = mgr.latest_step()
    try:
      st, start = checkpoint.restore(mgr, abstract, batches)
      logging.info('resumed from step %d', start)
      return mgr, st, start
    except checkpoint.CorruptCheckpoint as e:
      if len(mgr.all_steps()) < 2:
        raise
      moved = checkpoint.set_aside(mgr, step)
      mgr.close()
      mgr = checkpoint.manager(workdir, config)
      checkpoint.speak_again()
      if jax.process_index() == 0:
        print(f'warning: {e}; moved it to {moved}, resuming from checkpoint '
              f'{mgr.latest_step()}', file=sys.stderr, flush=True)


def _loop(config, workdir, mgr, st, start, batches, mesh, train_step, eval_step, keys):
  writer = MetricWriter(workdir)
  last_saved = start or None
  bar = tqdm(range(start, config.total_steps), initial=start, total=config.total_steps,
             desc='train', disable=jax.process_index() != 0)
  with _StopSignals() as signals:
    stop_asked = None  # the previous step's all-process "stop" flag, on device
    for i in bar:
      st, step_metrics = train_step(
          st, _device_batch(next(batches), keys, mesh, signals.signum != 0))
      step = i + 1
      # Read one step late so that the host never waits for the step just dispatched;
      # every process reads the same value and stops at the same step.
      stopping = stop_asked is not None and bool(stop_asked)
      stop_asked = step_metrics['stop']
      last = step == config.total_steps
      if step % config.log_every == 0 or last or stopping:
        values = jax.device_get(step_metrics)
        _check_finite(values, step, last_saved)
        writer.write(step, 'train', _without_stop(values))
        bar.set_postfix(loss=f'{float(values["loss"]):.4f}')
      if stopping:  # checkpoint now; this step's evaluation runs after the resume
        checkpoint.save(mgr, step, st, batches)
        mgr.wait_until_finished()
        writer.close()
        signum = signals.signum or signal.SIGTERM  # another process got it
        raise Stopped(f'{signal.Signals(signum).name} at step {step}, checkpoint {step} '
                      'written; run the same command to resume', signum)
      eval_metrics = None
      if step % config.eval_every == 0 or last:
        eval_metrics = evaluate.evaluate(config, st, eval_step, mesh,
                                         config.dataset.split_eval, validation=True)
        writer.write(step, config.dataset.split_eval, eval_metrics)
      if step % config.checkpoint_every == 0 or last:
        _check_finite(jax.device_get(step_metrics), step, last_saved)
        checkpoint.save(mgr, step, st, batches, _rankable(eval_metrics, config))
        last_saved = step
  mgr.wait_until_finished()
  tested = checkpoint.test_step(mgr, config)
  if tested is not None and tested != config.total_steps:  # test_checkpoint=best
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), st)
    st, _ = checkpoint.restore(mgr, abstract, step=tested)
    logging.info('testing checkpoint %d (best %s)', tested, config.best_metric)
  test = evaluate.evaluate(config, st, eval_step, mesh, config.dataset.split_test,
                           scores_dir=os.path.join(workdir, 'scores'))
  writer.write(config.total_steps, config.dataset.split_test,
               {**test, 'checkpoint_step': tested or config.total_steps})
  writer.close()
  return test


def _without_stop(values: dict) -> dict:
  return {k: v for k, v in values.items() if k != 'stop'}


def _rankable(eval_metrics, config):
  """The finite validation metrics saved with a checkpoint (None unless best_metric is
  among them): `checkpoint.best_step` can rank the kept steps by any of them."""
  if not eval_metrics:
    return None
  if not np.isfinite(eval_metrics.get(config.best_metric, float('nan'))):
    return None
  return {k: float(v) for k, v in eval_metrics.items() if np.isfinite(v)}
