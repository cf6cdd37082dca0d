"""Grain loaders: shard by process, shuffle, decode, augment, batch.

Train batches come from a `grain.DataLoader` whose iterator state is saved in every
checkpoint (exact resumption). Evaluation walks a split once, each process its own shard,
padded to a fixed number of equal batches with `valid = 0` rows so that every process runs
the same jitted steps.
"""
from __future__ import annotations

import math

import grain
import jax
import numpy as np

from fjax.data import examples, sources, splits
from fjax.util.errors import UserError


def train_source(config) -> sources.Source:
  """The training examples after the holdout, real-only and balance options: what one
  epoch walks through."""
  examples.check_train_options(config)
  return splits.open_split(config, config.dataset.split_train, train=True).source


def train_loader(config, local_batch: int,
                 source: sources.Source | None = None) -> grain.DataLoader:
  """The training loader over `source` (default: `train_source(config)`)."""
  source = train_source(config) if source is None else source
  if len(source) < local_batch * jax.process_count():
    raise UserError(f'split {config.dataset.split_train} has {len(source)} examples, '
                    f'fewer than one batch of {config.batch_size}')
  sampler = grain.samplers.IndexSampler(
      num_records=len(source), shuffle=True, seed=config.seed, num_epochs=None,
      shard_options=grain.sharding.ShardByJaxProcess(drop_remainder=True))
  return grain.DataLoader(
      data_source=source, sampler=sampler, worker_count=config.input.workers,
      operations=[examples.TrainTransform(examples.Recipe.of(config)),
                  grain.transforms.Batch(local_batch, drop_remainder=True)])


def eval_batches(config, split: str | splits.Split, local_batch: int):
  """One pass over the examples evaluation sees of `split` (a name, or a split opened
  with `splits.open_split`), this process's shard of them: (batches per process, the same
  on every process; examples in the whole selection, over all processes; an iterator of
  this process's batches of `local_batch` rows, the last ones padded with `valid` = 0
  rows)."""
  split = splits.open_split(config, split) if isinstance(split, str) else split
  source = split.source
  sampler = grain.samplers.IndexSampler(
      num_records=len(source), shuffle=False, num_epochs=1,
      shard_options=grain.sharding.ShardByJaxProcess(drop_remainder=False))
  loader = grain.DataLoader(
      data_source=source, sampler=sampler, worker_count=config.input.workers,
      operations=[examples.EvalTransform(examples.Recipe.of(config)),
                  grain.transforms.Batch(local_batch, drop_remainder=False)])
  per_process = math.ceil(len(source) / jax.process_count())
  num_batches = math.ceil(per_process / local_batch)

  def padded():
    # Grain's workers batch their own share of the records (with 2 workers, 8 examples
    # arrive as two batches of 4), so the rows are re-cut into full local batches here.
    rows, sent = None, 0
    for batch in loader:
      rows = batch if rows is None else {k: np.concatenate([rows[k], batch[k]]) for k in batch}
      while len(rows['label']) >= local_batch:
        yield {k: v[:local_batch] for k, v in rows.items()}
        rows, sent = {k: v[local_batch:] for k, v in rows.items()}, sent + 1
    for _ in range(sent, num_batches):  # the rest, then all-padding batches
      yield {k: _pad(v, local_batch) for k, v in rows.items()}
      rows = {k: v[:0] for k, v in rows.items()}
  return num_batches, len(source), padded()


def _pad(x: np.ndarray, n: int) -> np.ndarray:
  if len(x) == n:
    return x
  return np.concatenate([x, np.zeros((n - len(x),) + x.shape[1:], x.dtype)])
