"""The train step as the benchmarks compile it (no flags here: `fjax.bench` defines them):
synthetic batches shaped by the batch schema, the step compiled on the config's mesh or
only lowered, XLA's FLOP count."""
from __future__ import annotations

import time


def synthetic_batch(config, batch: int):
  """Random arrays shaped like a training batch (`schema.arrays`, with AUNet's pair axis
  when `input.tamper.pairs`): `batch` examples."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from fjax.data import schema  # pylint: disable=g-import-not-at-top
  lead = (batch, 2) if config.input.tamper.pairs else (batch,)
  return schema.arrays(config, lead, np.random.default_rng(0))


def images_per_example(config) -> int:
  return 2 if config.input.tamper.pairs else 1  # AUNet: a real face and its fake


def compiled_step(config):
  """(the jitted, sharded train step compiled for the config, a fresh state, a synthetic
  device batch, compile seconds)."""
  from fjax import run as run_lib  # pylint: disable=g-import-not-at-top
  from fjax.trainer import sharding, train  # pylint: disable=g-import-not-at-top
  sharding.initialize_distributed()
  r = run_lib.open_run(config)
  local = sharding.local_batch_size(config.batch_size, r.mesh)
  st, shardings = r.fresh_state()
  step_fn = train.make_train_step(config, r.model_lib, r.model, r.mesh, shardings)
  batch = sharding.to_global(synthetic_batch(config, local), r.mesh)
  t0 = time.perf_counter()
  compiled = step_fn.lower(st, batch).compile()
  return compiled, st, batch, time.perf_counter() - t0


def lowered_step(config):
  """(the train step lowered for the config's mesh with abstract state and a synthetic
  global batch, the mesh, the abstract state): nothing is allocated or run."""
  import jax  # pylint: disable=g-import-not-at-top
  from fjax import run as run_lib  # pylint: disable=g-import-not-at-top
  from fjax.trainer import sharding, train  # pylint: disable=g-import-not-at-top
  r = run_lib.open_run(config)
  sharding.local_batch_size(config.batch_size, r.mesh)  # one line when it does not divide
  abstract, shardings = r.abstract_state()
  step_fn = train.make_train_step(config, r.model_lib, r.model, r.mesh, shardings)
  batch = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                     sharding=sharding.batch_sharding(r.mesh)),
      synthetic_batch(config, config.batch_size))
  return step_fn.lower(abstract, batch), r.mesh, abstract


def step_flops(config) -> float:
  """FLOPs of one train step at the config's global batch on one device (XLA's cost
  analysis of the lowered step; the accumulation scan's body counted accum_steps times)."""
  cost = lowered_step(config)[0].cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else (cost or {})
  return float(cost.get('flops', 0.0)) * config.accum_steps
