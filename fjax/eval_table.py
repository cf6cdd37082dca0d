"""`--mode=eval --datasets=a,b,...`: one checkpoint on several data sets, the cross-dataset
table the papers print (frame and video AUC, ACC, EER, AP per data set and their mean),
written as DIR/eval_table.md and DIR/eval_table.json, each data set's scores as
DIR/scores/<data set>_<split>.jsonl and its metrics in metrics.jsonl (split
`<data set>/<split>`). A data set that is not built is skipped with one line.

Every data set is evaluated under the run's `evaluation` rules and `dataset.frames_test`;
the training set's method selection (`dataset.methods`, `holdout`, `train_method`) and its
mask source apply to the run's own data set only (others: their own `mask`); `dataset.single_subject` names the
data sets evaluated on their one-person videos.
"""
from __future__ import annotations

import json
import os
import sys

import jax
import numpy as np

from fjax.data import sources
from fjax.util import files
from fjax.util.errors import UserError

COLUMNS = ('auc', 'acc', 'eer', 'ap', 'video_auc', 'video_acc', 'video_eer', 'video_ap')


def config_for(config, name: str):
  """The run's config reading data set `name` (a TFDS name, optionally `name/config`)."""
  c = config.copy_and_resolve_references()
  with c.unlocked():
    c.dataset.name = name
    if name.split('/')[0] != config.dataset.name.split('/')[0]:  # another data set
      # the set's own masks: test sets have no real counterpart for pair-derived maps
      c.dataset.update(methods=(), holdout='', train_method='', mask_source='mask')
  return c


def split_of(config, split: str | None) -> str:
  """`split`, else the data set's test split (`test` for the cross-dataset sets)."""
  return split or config.dataset.split_test


def evaluate_datasets(config, names, split, evaluate_split, workdir: str, writer, step: int):
  """`evaluate_split(config, split, scores_dir) -> metrics` per data set; returns the table
  {data set: metrics} (data sets that are not built are left out, each with one line)."""
  rows = {}
  for name in names:
    c = config_for(config, name)
    try:
      if not sources.is_built(c):
        print(f'skipped: {name}: not built in {sources.data_dir(c)} (python -m '
              f'data_builders.build {name.split("/")[0]} ...)', file=sys.stderr, flush=True)
        continue
      s = split_of(c, split)
      result = evaluate_split(c, s, os.path.join(workdir, 'scores'))
    except UserError as e:  # e.g. no such split: this data set only
      print(f'skipped: {name}: {e}', file=sys.stderr, flush=True)
      continue
    writer.write(step, f'{name}/{s}', result)
    rows[f'{name}/{s}'] = result
  if not rows:
    raise UserError(f'none of the data sets {", ".join(names)} could be evaluated')
  if jax.process_index() == 0:
    write(rows, workdir, step)
  return rows


def mean_row(rows: dict) -> dict:
  return {k: float(np.nanmean([r.get(k, np.nan) for r in rows.values()])) for k in COLUMNS}


def markdown(rows: dict, step: int) -> str:
  lines = [f'Checkpoint step {step}; frame- and video-level metrics per data set.', '',
           '| data set | ' + ' | '.join(COLUMNS) + ' |',
           '| --- |' + ' --- |' * len(COLUMNS)]
  for name, r in {**rows, 'mean': mean_row(rows)}.items():
    lines.append(f'| {name} | ' + ' | '.join(f'{r.get(k, float("nan")):.4f}' for k in COLUMNS)
                 + ' |')
  return '\n'.join(lines) + '\n'


def write(rows: dict, workdir: str, step: int) -> None:
  text = markdown(rows, step)
  for suffix, body in (('md', text), ('json', json.dumps(
      {'step': step, 'datasets': rows, 'mean': mean_row(rows)}, indent=2))):
    files.write_text(os.path.join(workdir, f'eval_table.{suffix}'), body)
  print(text, flush=True)
