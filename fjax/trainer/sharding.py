"""Meshes, shardings and multi-process start-up.

The batch is split over the `data` axis of a mesh built from `config.mesh`; the train
state is replicated except for parameters matched by `config.mesh.param_rules`. The same
code runs on one device, many devices of one host, and many hosts: each process feeds
its own slice of the global batch and `make_array_from_process_local_data` assembles it.
"""
from __future__ import annotations

import os
import re

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from fjax.util.errors import UserError

DATA_AXIS = 'data'


def initialize_distributed() -> None:
  """Joins a multi-process run when the launcher says so (see launch/).

  FJAX_COORDINATOR (host:port), FJAX_NUM_PROCESSES and FJAX_PROCESS_ID name the run
  explicitly (GPU clusters, loopback tests); FJAX_DISTRIBUTED=1 lets JAX discover them
  (Cloud TPU pods, SLURM).
  """
  explicit = bool(os.environ.get('FJAX_COORDINATOR'))
  if not explicit and os.environ.get('FJAX_DISTRIBUTED') != '1':
    return
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')  # CPU processes only
  if explicit:
    jax.distributed.initialize(
        coordinator_address=os.environ['FJAX_COORDINATOR'],
        num_processes=int(os.environ['FJAX_NUM_PROCESSES']),
        process_id=int(os.environ['FJAX_PROCESS_ID']))
  else:  # SLURM: one process per GPU (SLURM_LOCALID picks it); TPU VMs: one per host
    try:
      jax.distributed.initialize()
    except ValueError as e:  # no cluster found in the environment
      raise UserError(f'FJAX_DISTRIBUTED=1 but JAX finds no TPU pod or SLURM job: {e}')


def make_mesh(config) -> Mesh:
  axes, shape = tuple(config.mesh.axes), list(config.mesh.shape)
  if DATA_AXIS not in axes or len(axes) != len(shape):
    raise UserError(f'config.mesh: axes {axes} must include {DATA_AXIS!r} and match '
                    f'shape {tuple(shape)}')
  n = jax.device_count()
  known = int(np.prod([s for s in shape if s != -1]))
  if shape.count(-1) > 1 or n % known:
    raise UserError(f'config.mesh.shape {tuple(shape)} does not fit {n} devices')
  shape = [n // known if s == -1 else s for s in shape]
  if int(np.prod(shape)) != n:
    raise UserError(f'config.mesh.shape {tuple(shape)} does not use all {n} devices')
  # Auto axes: XLA propagates the batch sharding through every op (Explicit axes would
  # make flax layers that draw their own random arrays, e.g. Dropout, disagree on it).
  return jax.make_mesh(tuple(shape), axes, devices=jax.devices(),
                       axis_types=(jax.sharding.AxisType.Auto,) * len(axes))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def state_shardings(mesh: Mesh, abstract_state, rules=()):
  """NamedSharding per leaf: the first rule whose regex matches the leaf's path, else
  replicated. Paths read like 'params/backbone/block1/rep_1/pointwise/kernel'."""
  compiled = [(re.compile(r), P(*spec)) for r, spec in rules]

  def one(path, leaf):
    name = path_name(path)
    for regex, spec in compiled:
      if regex.fullmatch(name) and len(spec) <= getattr(leaf, 'ndim', 0):
        return NamedSharding(mesh, spec)
    return NamedSharding(mesh, P())
  return jax.tree_util.tree_map_with_path(one, abstract_state)


def path_name(path) -> str:
  """'params/backbone/conv1/kernel' for a pytree key path (dict keys, fields, indices)."""
  return '/'.join(str(getattr(k, 'key', getattr(k, 'name', getattr(k, 'idx', k))))
                  for k in path)


def local_batch_size(global_batch: int, mesh: Mesh) -> int:
  """This process's share of the global batch; checks that it divides evenly."""
  data_devices = mesh.shape[DATA_AXIS]
  if global_batch % data_devices or global_batch % jax.process_count():
    raise UserError(f'batch size {global_batch} must be divisible by the {data_devices} '
                    f'devices of the data axis and the {jax.process_count()} processes')
  return global_batch // jax.process_count()


def to_global(local_batch: dict, mesh: Mesh) -> dict:
  """Assembles each process's NumPy slice into one globally sharded jax.Array."""
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, v)
          for k, v in local_batch.items()}


def barrier(name: str) -> None:
  """Waits until every process reaches this point (a no-op with one process)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices(name)
