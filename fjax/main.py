"""fjax entry point.

  python -m fjax.main --config=configs/xception.py:demo --workdir=/tmp/run [--mode=train]
  python -m fjax.main --config=... --workdir=... --mode=eval [--split=test]
  python -m fjax.main --config=... --workdir=... --mode=eval --datasets=celeb_df,dfd,dfdc
  python -m fjax.main --config=... --workdir=... --mode=summary
  python -m fjax.main --config=... --workdir=... --mode=robustness [--split=test]

Any config value can be overridden: --config.optimizer.lr=3e-4. Bad input (config, data,
checkpoint) ends with one line on stderr and exit status 1. Installed (`pip install -e .`),
`fjax ...` is the same command.
"""
from __future__ import annotations

import json
import os
import sys

from absl import flags, logging
from ml_collections import config_flags

flags.DEFINE_string('workdir', None, 'Where checkpoints, metrics and summaries go.')
flags.DEFINE_enum('mode', 'train', ['train', 'eval', 'summary', 'robustness'],
                  'What to do.')
flags.DEFINE_string('split', None, 'Split for --mode=eval (default: the test split).')
flags.DEFINE_list('datasets', [], 'With --mode=eval: evaluate on each of these data sets '
                  '(TFDS names, e.g. celeb_df,dfd,dfdc) and write DIR/eval_table.md/.json.')
flags.mark_flags_as_required(['workdir'])
FLAGS = flags.FLAGS


def _define_config_flag():
  config_flags.DEFINE_config_file('config', None, 'Config file[:preset].',
                                  lock_config=True)


def run(config, workdir: str, mode: str, split: str | None = None, datasets=()):
  import jax  # pylint: disable=g-import-not-at-top
  from fjax import run as run_lib, summary  # pylint: disable=g-import-not-at-top
  from fjax.models.layers import compute_dtype  # pylint: disable=g-import-not-at-top
  from fjax.trainer import checkpoint, evaluate, sharding, train  # pylint: disable=g-import-not-at-top
  from fjax.trainer.writers import MetricWriter  # pylint: disable=g-import-not-at-top
  from fjax.util import files  # pylint: disable=g-import-not-at-top
  from fjax.util.paths import check_dir_path  # pylint: disable=g-import-not-at-top
  compute_dtype(config)  # a bad model.dtype is one line before anything starts
  sharding.initialize_distributed()
  check_dir_path(workdir, '--workdir')
  files.makedirs(workdir)
  r = run_lib.open_run(config)
  if mode == 'train':
    result = train.train_and_evaluate(r, workdir)
    _print_table(config, result)
    return result
  checkpoint.check_workdir_model(workdir, config)
  if mode == 'summary':
    return summary.write_summary(config, r.model_lib, r.model, workdir)
  mesh = r.mesh
  st, step = r.restore(workdir)
  eval_step = evaluate.make_eval_step(r.model_lib, r.model, mesh)
  requested_split, split = split, split or config.dataset.split_test
  writer = MetricWriter(workdir)
  if mode == 'robustness':
    from fjax.trainer import robustness  # pylint: disable=g-import-not-at-top
    table = robustness.run(config, lambda c, s: evaluate.evaluate(c, st, eval_step, mesh, s),
                           split, workdir, writer, step)
    writer.close()
    if jax.process_index() == 0:
      for kind, r in table.items():
        print(f'{kind:<16} mean AUC {r["mean_auc"]:.4f}  per level ' +
              ' '.join(f'{a:.4f}' for a in r['auc_per_level']))
    return table
  if datasets:
    from fjax import eval_table  # pylint: disable=g-import-not-at-top
    rows = eval_table.evaluate_datasets(
        config, datasets, requested_split,
        lambda c, s, d: evaluate.evaluate(c, st, eval_step, mesh, s, scores_dir=d),
        workdir, writer, step)
    writer.close()
    return rows
  result = evaluate.evaluate(config, st, eval_step, mesh, split,
                             scores_dir=os.path.join(workdir, 'scores'))
  writer.write(step, split, result)
  writer.close()
  if jax.process_index() == 0:
    print(json.dumps({'step': step, 'split': split, **result}))
  _print_table(config, result)
  return result


def _print_table(config, result: dict) -> None:
  """One line with the metrics the paper's tables report (`config.table_metrics`)."""
  import jax  # pylint: disable=g-import-not-at-top
  if config.table_metrics and result and jax.process_index() == 0:
    print('paper table metrics: ' + ', '.join(
        f'{k} {result[k]:.4f}' if k in result else f'{k} n/a' for k in config.table_metrics),
          file=sys.stderr, flush=True)


from fjax.util import cli  # pylint: disable=g-import-not-at-top,wrong-import-position
from fjax.util.errors import UserError, fail  # pylint: disable=g-import-not-at-top,wrong-import-position


def main(argv):
  if len(argv) > 1:
    sys.exit(f'error: unexpected arguments {argv[1:]}')
  config = _load_config()
  if config is None:
    sys.exit('error: --config=configs/<model>.py[:preset] is required')
  try:
    if FLAGS.datasets and FLAGS.mode != 'eval':
      raise UserError('--datasets is for --mode=eval')
    run(config, FLAGS.workdir, FLAGS.mode, FLAGS.split, FLAGS.datasets)
  except UserError as e:
    if e.prefix == 'stopped':  # everything was closed in order: a normal exit
      logging.flush()
      print(f'{e.prefix}: {e}', file=sys.stderr, flush=True)
      sys.exit(e.exit_code)
    fail(str(e), e.exit_code, e.prefix)


def _load_config():
  """FLAGS.config, loaded now: config_flags defers file errors to first attribute use."""
  try:
    config = FLAGS.config
    if config is not None:
      _ = config.model.name
    return config
  except Exception as e:  # pylint: disable=broad-except
    print(f'error: cannot load the config: {cli.last_line(e)}', file=sys.stderr)
    sys.exit(1)


def entry():
  """`python -m fjax.main` and the `fjax` console script (fjax.util.cli's conventions)."""
  _define_config_flag()
  cli.run(main, __doc__, __name__, config_files=('config',))


if __name__ == '__main__':
  entry()
