"""Optax optimizers and learning-rate schedules from `config.optimizer` / `config.schedule`."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from fjax.util.errors import UserError


def schedule(config) -> optax.Schedule:
  s, lr, steps = config.schedule, config.optimizer.lr, config.total_steps
  decay_steps = max(steps - s.warmup_steps, 1)
  if s.name == 'cosine':  # cosine decay to end_factor * lr
    main = optax.cosine_decay_schedule(lr, decay_steps, alpha=s.end_factor)
  elif s.name == 'poly':  # lr * (1 - t / T) ** power, MSCCNet's "poly"
    # Not optax.polynomial_schedule: under jit 1 - T/T can round below 0 and 0-**0.9 is NaN.
    end = lr * s.end_factor
    main = lambda t: end + (lr - end) * jnp.clip(1.0 - t / decay_steps, 0.0, 1.0) ** s.power
  elif s.name == 'constant':
    main = optax.constant_schedule(lr)
  elif s.name == 'linear_decay':  # SBI's LinearDecayLR (src/utils/scheduler.py)
    main = linear_decay(lr, config.epochs, decay_steps, s.decay_start)
  else:
    raise UserError(f'config.schedule.name {s.name!r}: use cosine, poly, constant or '
                    'linear_decay')
  if s.warmup_steps:
    warm = optax.linear_schedule(0.0, lr, s.warmup_steps)
    return optax.join_schedules([warm, main], [s.warmup_steps])
  return main


def linear_decay(lr: float, epochs: int, steps: int, start: float) -> optax.Schedule:
  """SBI's LinearDecayLR, stepped once an epoch: n epochs (`config.epochs`; 0: each step
  is an epoch of one step), s = int(n * start) (SBI: int(n / 4 * 3)); in epoch e the rate
  is lr while e <= s, then lr - lr / (n - s) * (e - s), 0 from epoch n on."""
  n, unit = (epochs, max(steps // epochs, 1)) if epochs > 0 else (steps, 1)
  s = int(n * start)

  def rate(t):
    e = jnp.asarray(t) // unit
    return lr * jnp.clip(1.0 - jnp.maximum(e - s, 0) / max(n - s, 1), 0.0, 1.0)
  return rate


def optimizer(config) -> optax.GradientTransformation:
  o, lr = config.optimizer, schedule(config)
  if o.name == 'adam':
    tx = optax.adam(lr, b1=o.b1, b2=o.b2)
    if o.weight_decay:  # L2 added to the gradient, as torch.optim.Adam(weight_decay=...)
      tx = optax.chain(optax.add_decayed_weights(o.weight_decay), tx)
  elif o.name == 'adamw':
    tx = optax.adamw(lr, b1=o.b1, b2=o.b2, weight_decay=o.weight_decay)
  elif o.name == 'sgd':  # torch.optim.SGD(momentum, weight_decay) semantics
    tx = optax.chain(optax.add_decayed_weights(o.weight_decay),
                     optax.sgd(lr, momentum=o.momentum or None))
  else:
    raise UserError(f'config.optimizer.name {o.name!r}: use adam, adamw or sgd')
  if o.grad_clip:
    tx = optax.chain(optax.clip_by_global_norm(o.grad_clip), tx)
  if config.train_only:
    tx = optax.multi_transform({'train': tx, 'frozen': optax.set_to_zero()},
                               _labels(config.train_only))
  return tx


def _labels(train_only: str):
  """params -> 'train' / 'frozen' per leaf, by top-level module (`config.train_only`)."""
  wanted = {m.strip() for m in train_only.split(',') if m.strip()}

  def labels(params):
    if not wanted & set(params):
      raise UserError(f'train_only={train_only!r} names no module of this model '
                      f'(it has {sorted(params)})')
    return {k: jax.tree.map(lambda _, k=k: 'train' if k in wanted else 'frozen', v)
            for k, v in params.items()}
  return labels
