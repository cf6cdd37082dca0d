"""Evaluation: one pass over a split with a jitted step, metrics on the host.

The step returns scores, each image's pixel tp, fp, fn at 0.5 and a histogram of the
map values (bins: metrics.PIXEL_BINS) of fake-mask and real-mask pixels (maps resized to
the mask, padding rows excluded), from which the pooled confusion matrix at 0.5 and the
pixel AUC follow, the same over the fake images' pixels and for the painted map (each
image's score on all its pixels), replicated: every process then holds the
scores, labels and video hashes of the whole global batch and computes the same exact
metrics.
"""
from __future__ import annotations

import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from fjax import registry
from fjax.data import examples, loaders, schema, splits
from fjax.trainer import metrics, sharding
from fjax.util import files
from fjax.models import losses


def variables(state):
  return {'params': state['params'], **state['model_state']}


# The step's [2 * PIXEL_BINS] pixel histograms (metrics.all_metrics' arguments): every
# valid pixel, the fake images' pixels, the painted map's pixels.
HISTOGRAMS = ('pixel_hist', 'pixel_hist_fakes', 'pixel_hist_painted')


def make_eval_step(model_lib, model, mesh):

  @functools.partial(jax.shard_map, mesh=mesh, out_specs=P(),
                     in_specs=(P(sharding.DATA_AXIS), P(sharding.DATA_AXIS)))
  def pixel_histogram(cell, weight):  # each device its rows, then one sum over the data axis
    weight = jnp.broadcast_to(weight.reshape(weight.shape + (1,) * (cell.ndim - weight.ndim)),
                              cell.shape).astype(jnp.int32)
    hist = jnp.zeros(2 * metrics.PIXEL_BINS, jnp.int32).at[cell.ravel()].add(weight.ravel())
    return jax.lax.psum(hist, sharding.DATA_AXIS)

  def step(state, batch):
    out = model.apply(variables(state), batch['image'], train=False)
    maps = model_lib.localization(out).astype(jnp.float32)
    maps = losses.resize_map(maps, batch['mask'].shape[1:])
    pred, true = maps > 0.5, batch['mask'] > 0.5
    # Pixel statistics stay on device: one scatter-add of every valid pixel into its
    # (true class, map bin) cell, and each image's tp, fp, fn at 0.5.
    cell = metrics.pixel_bins(maps, jnp) + metrics.PIXEL_BINS * true
    valid = batch['valid'] > 0
    hist = pixel_histogram(cell, valid)
    hist_fakes = pixel_histogram(cell, valid & (batch['label'] > 0))  # fake images only
    # The painted map: each image's score on all its pixels, i.e. its (real, fake) pixel
    # counts in the score's bin (two cells per image, not a pixel scatter).
    score = model_lib.score(out).astype(jnp.float32)
    n_true = jnp.sum(true, (1, 2))
    painted = pixel_histogram(
        metrics.pixel_bins(score, jnp)[:, None] + metrics.PIXEL_BINS * jnp.arange(2),
        valid[:, None] * jnp.stack([true[0].size - n_true, n_true], 1))
    counts = jnp.stack([jnp.sum(true & pred, (1, 2)), jnp.sum(~true & pred, (1, 2)),
                        jnp.sum(true & ~pred, (1, 2))], 1).astype(jnp.int32)
    result = {'score': score, 'label': batch['label'],
              'valid': batch['valid'], 'row': batch['row'], 'pixel_hist': hist,
              'pixel_hist_fakes': hist_fakes, 'pixel_hist_painted': painted,
              'pixel_counts': counts}
    class_predictions = registry.hook(model_lib, 'class_predictions')
    if class_predictions and 'method_label' in batch:  # n-way heads
      result.update(pred_class=class_predictions(out),
                    method_label=batch['method_label'])
    return result
  return jax.jit(step, out_shardings=sharding.replicated(mesh))


def evaluate(config, state, eval_step, mesh, split: str, progress: bool = True,
             scores_dir: str | None = None, validation: bool = False) -> dict:
  """Frame, video and pixel metrics of `state` on `split` of the configured data set,
  under the protocol of `config.evaluation` (face -> frame -> video scores, faceless
  frames). The split is opened once (`splits.open_split`): its table names each row's
  video and method. With `scores_dir`, process 0 writes every example's score there
  (`write_scores`). `validation`: the evaluation during training, on training's methods
  (`splits.open_split`)."""
  local = sharding.local_batch_size(config.eval_batch_size, mesh)
  opened = splits.open_split(config, split, validation=validation)
  num_batches, size, batches = loaders.eval_batches(config, opened, local)
  parts = []
  hists = {k: np.zeros(2 * metrics.PIXEL_BINS, np.int64) for k in HISTOGRAMS}
  keys = schema.evaluated(config)
  bar = tqdm(batches, total=num_batches, desc=f'eval {split}', leave=False,
             disable=not progress or jax.process_index() != 0)
  for batch in bar:
    batch = sharding.to_global({k: batch[k] for k in keys}, mesh)
    out = eval_step(state, batch)
    for k in HISTOGRAMS:
      hists[k] += np.asarray(jax.device_get(out.pop(k)), np.int64)
    parts.append(jax.device_get(out))
  cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
  keep = cat['valid'] > 0
  assert keep.sum() == size, (keep.sum(), size)
  cat = {k: v[keep] for k, v in cat.items()}
  out = metrics.all_metrics(cat['label'], cat['score'], pixel_counts=cat['pixel_counts'],
                            **{k: h.reshape(2, -1) for k, h in hists.items()})
  rules = config.evaluation  # frame and video metrics under the protocol replace all_metrics'
  t, f = opened.table, opened.faceless
  videos, frames = opened.videos[cat['row']], t['frame'][cat['row']]
  out.update(metrics.detection_metrics(
      videos, frames, cat['label'], cat['score'], rules.video_score, rules.faceless,
      (f['video'], f['frame'], f['label'] > 0)))
  if len(set(t['method']) - {'real', ''}) > 1:  # more than one kind of fake
    out.update(metrics.per_method_metrics(  # on the rows of auc / video_auc
        videos, frames, cat['label'], cat['score'], t['method'][cat['row']], rules.video_score,
        rules.faceless, (f['video'], f['frame'], f['label'] > 0), f['method']))
  if 'pred_class' in cat:
    known = cat['method_label'] >= 0
    out.update(metrics.per_class_recall(cat['method_label'][known], cat['pred_class'][known],
                                        examples.METHOD_CLASSES))
  if scores_dir and jax.process_index() == 0:
    write_scores(opened, cat, scores_dir)
  return out


def write_scores(opened: splits.Split, cat: dict, directory: str) -> str:
  """DIR/<data set>_<split>.jsonl: one row per evaluated face (video id, frame, face,
  label, method, score; named from the split's table by each face's `row`), from which
  any metric can be recomputed outside fjax; written whole (`files.write_text`: a
  temporary name renamed, or one object upload), so a file there is always whole."""
  t = opened.table
  files.makedirs(directory)
  path = os.path.join(directory, f'{opened.dataset.replace("/", "_")}_{opened.name}.jsonl')
  rows = []
  for row, label, score in zip(cat['row'], cat['label'], cat['score']):
    rows.append(json.dumps({'video_id': t['video_id'][row], 'frame': int(t['frame'][row]),
                            'face': int(t['face'][row]), 'label': int(label),
                            'method': t['method'][row], 'score': float(score)}) + '\n')
  files.write_text(path, ''.join(rows))
  return path
