"""The train state (a plain dict pytree) and its creation on a mesh.

{'step': int32, 'params': ..., 'model_state': {collection: ...} (BatchNorm statistics),
 'opt_state': ...}. Created by a jitted init whose outputs carry the state shardings, so
it is born sharded (replicated by default) on every process.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from absl import logging

from fjax.trainer import checkpoint, optim, sharding


def init_fn(config, model, tx, rngs=()):
  """The state's initialisation from one key: 'params' and the model's own streams
  (`RNGS` of its module, e.g. FoCus's 'gumbel')."""
  size = config.input.image_size

  def init(rng):
    variables = model.init({name: rng for name in ('params', *rngs)},
                           jnp.zeros((1, size, size, 3), jnp.float32), train=False)
    variables = dict(variables)
    params = variables.pop('params')
    return {'step': jnp.zeros((), jnp.int32), 'params': params,
            'model_state': variables, 'opt_state': tx.init(params)}
  return init


def abstract_state(config, model, mesh, rngs=()):
  """(ShapeDtypeStructs with shardings, shardings) of the train state, no compute."""
  return _abstract(config, mesh, init_fn(config, model, optim.optimizer(config), rngs))


def _abstract(config, mesh, init):
  shapes = jax.eval_shape(init, jax.random.key(0))
  shardings = sharding.state_shardings(mesh, shapes, config.mesh.param_rules)
  abstract = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                          shapes, shardings)
  return abstract, shardings


def create(config, model, mesh, rngs=()):
  """A fresh train state on the mesh, with `config.init_from` weights merged in."""
  tx = optim.optimizer(config)
  init = init_fn(config, model, tx, rngs)
  # The same function object: jit finds eval_shape's trace (the model is traced once).
  _, shardings = _abstract(config, mesh, init)
  state = jax.jit(init, out_shardings=shardings)(jax.random.key(config.seed))
  if config.init_from:
    loaded = checkpoint.nest_pretrained(checkpoint.load_pretrained(config.init_from),
                                        config.init_into)
    if config.init_only:  # e.g. stage 2 of Detect and Locate: backbone + semantic heads
      keep = {m.strip() for m in config.init_only.split(',') if m.strip()}
      loaded = {kind: ({k: v for k, v in tree.items() if k in keep} if kind == 'params' else
                       {col: {k: v for k, v in t.items() if k in keep}
                        for col, t in tree.items()})
                for kind, tree in loaded.items()}
    state = with_weights(state, shardings, loaded, tx, config.init_from, config.init_strict)
  return state, shardings


def with_weights(state, shardings, loaded: dict, tx, label: str, strict: bool = False):
  """`state` with the {'params', 'model_state'} leaves of `loaded` copied in (shapes must
  agree) and a fresh optimizer state for them; prints what was loaded, dropped and left
  uninitialised (`strict`: either of the last two stops with one line)."""
  host = jax.device_get({'params': state['params'], 'model_state': state['model_state']})
  merged, report = checkpoint.merge_pretrained(host, loaded, label)
  lines = checkpoint.init_report(label, report, strict)
  logging.info('%s: %d arrays loaded', label, report['loaded'])
  if jax.process_index() == 0:
    print('\n'.join(lines), flush=True)
  return jax.device_put(dict(state, **merged, opt_state=tx.init(merged['params'])), shardings)
