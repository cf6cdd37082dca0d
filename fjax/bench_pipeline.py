"""`python -m fjax.bench --input`: the train input pipeline's images/s on this host and the
host cores an accelerator needs (`bench_input`); the demo set standing in for a paper
preset's data (`on_demo_data`, `cycled_source`), also for `--suite`."""
from __future__ import annotations

import os
import time

from fjax.bench_step import images_per_example, step_flops


def bench_input(config, steps: int, demo_data: bool = False, tflops=()) -> dict:
  """Images/s of the grain train loader (decode, augment, every label the host makes,
  batch) on this host, and, from the train step's FLOPs (XLA's count of the lowered step,
  with the labels made on device; nothing compiled), how many such host cores keep an
  accelerator of each effective TFLOP/s busy. With `workers=0` the loader runs in this
  process and the per-core rate is images per CPU-second of this process (other jobs on
  a loaded machine then lengthen the wall time, not the count); with workers, per wall
  second per worker."""
  from fjax.data import loaders, schema  # pylint: disable=g-import-not-at-top
  if demo_data:
    config = on_demo_data(config)
  it = iter(loaders.train_loader(config, config.batch_size, cycled_source(config)))
  next(it)  # start-up: opening files, starting workers
  t0, cpu0 = time.perf_counter(), time.process_time()
  for _ in range(steps):
    next(it)
  per_batch = (time.perf_counter() - t0) / steps
  cpu_per_batch = (time.process_time() - cpu0) / steps
  n = config.batch_size * images_per_example(config)
  images = n / per_batch
  device = schema.on_device(config)
  out = {'dataset': config.dataset.name, 'batch': config.batch_size,
         'image_size': config.input.image_size, 'workers': config.input.workers,
         'labels': [k for k in config.input.labels if k not in device],
         'labels_on_device': list(device), 'batches_per_s': round(1 / per_batch, 2),
         'images_per_s': round(images, 1),
         'images_per_cpu_s': round(n / cpu_per_batch, 1),
         'load_average': [round(x, 2) for x in os.getloadavg()]}
  per_core = images / max(config.input.workers, 1) if config.input.workers else n / cpu_per_batch
  if tflops:
    flops = step_flops(config)
    out['tflops_per_step'] = round(flops / 1e12, 3)
    for t in tflops:
      rate = n * float(t) * 1e12 / flops
      out[f'accelerator_images_per_s@{t}'] = round(rate, 1)
      out[f'host_cores@{t}'] = round(rate / per_core, 1)
  return out


def on_demo_data(config):
  """The config reading the embedded demo set (128 px faces, resized to the preset's
  input size; a demo set the config names already is kept) with its FF++ data selection
  dropped: the same transforms and labels."""
  c = config.copy_and_resolve_references()
  name = c.dataset.name if c.dataset.name.startswith('demo_forgeries') else 'demo_forgeries'
  with c.unlocked():
    c.dataset.update(name=name, methods=(), holdout='', train_method='',
                     frames_train=0, frames_test=0)
  return c


def cycled_source(config):
  """The train split's examples, repeated in order until one batch fits (a paper batch
  may exceed the demo split: FoCus's 128 against 114 faces); for timing only."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from fjax.data import loaders  # pylint: disable=g-import-not-at-top
  source = loaders.train_source(config)
  if len(source) >= config.batch_size:
    return source
  rows = np.arange(len(source.base)) if source.indices is None else source.indices
  return source.where('cycled', np.resize(rows, config.batch_size))
