"""Builds a data set without TensorFlow (TFDS's own `tfds build` imports it).

  python -m data_builders.build demo_forgeries [--config tiny] --data_dir=DIR
  python -m data_builders.build faceforensics --config c23 --manual_dir=FF --data_dir=DIR
"""
from __future__ import annotations

import importlib
import os
import sys
import time

from absl import app, flags

from data_builders import report

flags.DEFINE_string('config', None, 'Builder config name (default: the first).')
flags.DEFINE_string('data_dir', os.path.expanduser('~/tensorflow_datasets'),
                    'Where the prepared data set is written.')
flags.DEFINE_string('manual_dir', None, 'Where the original media lie (official layout).')
FLAGS = flags.FLAGS


def builder_of(name: str, config: str | None, data_dir: str):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  importlib.import_module(f'data_builders.{name}')
  return tfds.builder(f'{name}/{config}' if config else name, data_dir=data_dir,
                      file_format='array_record')


def build(name: str, config: str | None, data_dir: str, manual_dir: str | None = None):
  """Prepares the data set (idempotent: an existing complete build is kept; a build
  running in another process is waited for, not repeated)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from fjax import locks  # pylint: disable=g-import-not-at-top
  return locks.prepared(lambda: builder_of(name, config, data_dir),
                        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))


def main(argv):
  if len(argv) != 2:
    sys.exit('usage: python -m data_builders.build NAME [--config C] --data_dir=DIR')
  name = argv[1]
  if not os.path.isdir(os.path.join(os.path.dirname(__file__), name)):
    sys.exit(f'error: no data builder named {name!r} in data_builders/')
  start = time.perf_counter()
  try:
    fresh = not builder_of(name, FLAGS.config, FLAGS.data_dir).is_prepared()
    builder = build(name, FLAGS.config, FLAGS.data_dir, FLAGS.manual_dir)
  except (FileNotFoundError, ValueError, AssertionError) as e:
    sys.exit(f'error: {str(e).strip().splitlines()[0]}')
  seconds = time.perf_counter() - start
  total = 0
  for split, info in builder.info.splits.items():
    print(f'{builder.info.full_name} {split}: {info.num_examples} examples')
    total += info.num_examples
  if fresh:
    print(f'built {total} examples in {seconds:.1f} s: {total / seconds:.2f} examples/s')
  for what, n in sorted(report.COUNTS.items()):
    print(f'{what}: {n}')
  print(f'written to {builder.data_dir}')


if __name__ == '__main__':
  app.run(main)
