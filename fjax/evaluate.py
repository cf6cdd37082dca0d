"""Evaluation: one pass over a split with a jitted step, metrics on the host.

The step returns scores and a 2x2 pixel confusion matrix (maps resized to the mask and
thresholded at 0.5, padding rows excluded), replicated: every process then holds the
scores, labels and video hashes of the whole global batch and computes the same exact
metrics.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from fjax import input_pipeline, metrics, sharding
from fjax.models import losses


def variables(state):
  return {'params': state['params'], **state['model_state']}


def make_eval_step(model_lib, model, mesh):

  def step(state, batch):
    out = model.apply(variables(state), batch['image'], train=False)
    maps = model_lib.localization(out).astype(jnp.float32)
    maps = losses.resize_map(maps, batch['mask'].shape[1:])
    pred, true = maps > 0.5, batch['mask'] > 0.5
    valid = batch['valid'][:, None, None] > 0
    cm = jnp.stack([jnp.sum(valid & ~true & ~pred), jnp.sum(valid & ~true & pred),
                    jnp.sum(valid & true & ~pred), jnp.sum(valid & true & pred)])
    result = {'score': model_lib.score(out).astype(jnp.float32), 'label': batch['label'],
              'valid': batch['valid'], 'video_hash': batch['video_hash'],
              'method_hash': batch['method_hash'], 'cm': cm}
    if hasattr(model_lib, 'class_predictions') and 'method_label' in batch:  # n-way heads
      result.update(pred_class=model_lib.class_predictions(out),
                    method_label=batch['method_label'])
    return result
  return jax.jit(step, out_shardings=sharding.replicated(mesh))


def evaluate(config, state, eval_step, mesh, split: str, progress: bool = True) -> dict:
  """Frame, video and pixel metrics of `state` on `split` of the configured data set."""
  local = sharding.local_batch_size(config.eval_batch_size, mesh)
  num_batches, size, batches = input_pipeline.eval_batches(config, split, local)
  parts, cm = [], np.zeros(4, np.int64)
  bar = tqdm(batches, total=num_batches, desc=f'eval {split}', leave=False,
             disable=not progress or jax.process_index() != 0)
  for batch in bar:
    batch = sharding.to_global({k: batch[k] for k in input_pipeline.device_keys(config)}, mesh)
    out = eval_step(state, batch)
    cm += np.asarray(jax.device_get(out.pop('cm')), np.int64)
    parts.append(jax.device_get(out))
  cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
  keep = cat['valid'] > 0
  assert keep.sum() == size, (keep.sum(), size)
  out = metrics.all_metrics(cat['label'][keep], cat['score'][keep],
                            cat['video_hash'][keep], cm.reshape(2, 2))
  names = input_pipeline.method_names(config, split)
  if len(set(names.values()) - {'real', ''}) > 1:  # more than one kind of fake
    methods = np.array([names.get(int(h), '?') for h in cat['method_hash'][keep]])
    out.update(metrics.per_method_auc(cat['label'][keep], cat['score'][keep], methods))
  if 'pred_class' in cat:
    known = keep & (cat['method_label'] >= 0)
    out.update(metrics.per_class_recall(cat['method_label'][known], cat['pred_class'][known],
                                        input_pipeline.METHOD_CLASSES))
  return out
