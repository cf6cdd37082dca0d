"""Metric events to `workdir/metrics.jsonl`, TensorBoard (tensorboardX) and the console.

Only process 0 writes. One JSON object per event: {"step", "split", name: value, ...}.
"""
from __future__ import annotations

import json
import math
import os

import jax
from absl import logging


class MetricWriter:

  def __init__(self, workdir: str):
    self.active = jax.process_index() == 0
    self.path = os.path.join(workdir, 'metrics.jsonl')
    self._tb = None
    if self.active:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self._tb = SummaryWriter(os.path.join(workdir, 'tb'), flush_secs=10)

  def write(self, step: int, split: str, values: dict) -> None:
    if not self.active:
      return
    values = {k: float(v) for k, v in values.items()}
    with open(self.path, 'a') as f:
      f.write(json.dumps({'step': int(step), 'split': split, **{
          k: (None if math.isnan(v) else v) for k, v in values.items()}}) + '\n')
    for k, v in values.items():
      self._tb.add_scalar(f'{split}/{k}', v, step)
    logging.info('[%s] step %d: %s', split, step,
                 ', '.join(f'{k}={v:.4g}' for k, v in values.items()))

  def close(self):
    if self._tb is not None:
      self._tb.close()
