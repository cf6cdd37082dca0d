"""A split opened once: evaluation reads each split's metadata table once, and its batches'
rows name the table's examples."""
from __future__ import annotations

import collections
import functools
import json
import os


def _counted(module, name: str, calls: collections.Counter, monkeypatch, key=None):
  """Replaces module.name by a wrapper that counts its calls in `calls` (by key(args))."""
  function = getattr(module, name)

  @functools.wraps(function)
  def wrapper(*args, **kwargs):
    calls[(name, key(args) if key else None)] += 1
    return function(*args, **kwargs)
  monkeypatch.setattr(module, name, wrapper)


def test_evaluate_reads_each_splits_metadata_once(trained_workdir, data_dir, monkeypatch,
                                                  tmp_path):
  from fjax import run as run_lib  # pylint: disable=g-import-not-at-top
  from fjax.data import sources, splits  # pylint: disable=g-import-not-at-top
  from fjax.trainer import evaluate  # pylint: disable=g-import-not-at-top
  config = run_lib.saved_config(trained_workdir)
  config.dataset.data_dir = data_dir
  r = run_lib.open_run(config)
  state, _ = r.restore(trained_workdir)
  step = evaluate.make_eval_step(r.model_lib, r.model, r.mesh)
  monkeypatch.setattr(sources, '_TABLES', {})  # nothing held from earlier tests
  calls = collections.Counter()
  _counted(sources, 'table', calls, monkeypatch, key=lambda a: a[1])
  _counted(sources, '_read_table', calls, monkeypatch, key=lambda a: a[1])
  _counted(sources, '_builder', calls, monkeypatch)
  for split in ('test', 'train'):
    evaluate.evaluate(config, state, step, r.mesh, split, progress=False,
                      scores_dir=str(tmp_path))
  assert calls == {('table', 'test'): 1, ('_read_table', 'test'): 1,
                   ('table', 'train'): 1, ('_read_table', 'train'): 1,
                   ('_builder', None): 2}, calls
  opened = splits.open_split(config, 'test')
  t = opened.table
  with open(os.path.join(tmp_path, 'demo_forgeries_tiny_test.jsonl')) as f:
    rows = [json.loads(line) for line in f]
  assert sorted((r['method'], r['video_id'], r['frame'], r['face'], r['label'])
                for r in rows) == sorted(
      (t['method'][i], t['video_id'][i], int(t['frame'][i]), int(t['face'][i]),
       int(t['label'][i])) for i in opened.rows)
