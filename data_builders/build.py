"""Builds a data set without TensorFlow (TFDS's own `tfds build` imports it).

  python -m data_builders.build demo_forgeries [--config tiny] --data_dir=DIR
  python -m data_builders.build faceforensics --config c23 --manual_dir=FF --data_dir=DIR
  (installed: `fjax-build NAME ...`, the same command)

In parallel (data_builders/parallel.py; the same data set as one process writes):
  ... --num_processes=8                      N local worker processes
  ... --beam_runner=DirectRunner --beam_options='--direct_num_workers=8
      --direct_running_mode=multi_processing'   Apache Beam (pip install -r
                                                requirements-beam.txt); any runner:
      --beam_runner=DataflowRunner --beam_options='--project=P --region=R
      --temp_location=gs://B/tmp --requirements_file=requirements.txt
      --setup_file=./setup.py'   (workers need fjax and data_builders, and data_dir and
                                  manual_dir on storage they reach)
      --beam_runner=SparkRunner --beam_options='--spark_master_url=spark://HOST:7077'
      --beam_runner=FlinkRunner --beam_options='--flink_master=HOST:8081'
"""
from __future__ import annotations

import importlib
import os
import shlex
import sys
import time

from absl import flags

import data_builders
from data_builders import report
from fjax.util.errors import UserError

flags.DEFINE_string('config', None, 'Builder config name (default: the first).')
flags.DEFINE_string('data_dir', os.path.expanduser('~/tensorflow_datasets'),
                    'Where the prepared data set is written.')
flags.DEFINE_string('manual_dir', None, 'Where the original media lie (official layout).')
flags.DEFINE_integer('num_processes', 1, 'Local worker processes doing the videos.')
flags.DEFINE_string('beam_runner', None, 'Build through Apache Beam on this runner '
                    '(DirectRunner, DataflowRunner, SparkRunner, FlinkRunner, ...).')
flags.DEFINE_string('beam_options', '', 'Beam pipeline options, one string '
                    '("--direct_num_workers=4 --direct_running_mode=multi_processing").')
FLAGS = flags.FLAGS


def builder_of(name: str, config: str | None, data_dir: str, num_processes: int = 1,
               beam: bool = False):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from data_builders import parallel  # pylint: disable=g-import-not-at-top
  importlib.import_module(f'data_builders.{name}')
  data_builders.check_config(name, config)
  builder = tfds.builder(f'{name}/{config}' if config else name, data_dir=data_dir,
                         file_format='array_record')
  if isinstance(builder, parallel.ParallelBuilder):
    builder.configure(num_processes, beam)
  elif (num_processes > 1 or beam) and name not in _TOLD:
    _TOLD.add(name)
    print(f'{name} builds in one process (its examples depend on each other)',
          file=sys.stderr)
  return builder


_TOLD = set()


def build(name: str, config: str | None, data_dir: str, manual_dir: str | None = None,
          num_processes: int = 1, beam_runner: str | None = None, beam_options: str = ''):
  """Prepares the data set (idempotent: an existing complete build is kept; a build
  running in another process is waited for, not repeated), in `num_processes` local
  processes or through Apache Beam's `beam_runner` with `beam_options` (command-line
  options in one string). The local workers are spawned: a script that calls this with
  num_processes > 1 needs Python's usual `if __name__ == '__main__':` guard, and cannot
  be read from stdin."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from fjax.util import locks  # pylint: disable=g-import-not-at-top
  if num_processes < 1:
    raise ValueError(f'--num_processes must be at least 1, not {num_processes}')
  beam_kwargs = {}
  if beam_runner:
    try:
      from apache_beam.options import pipeline_options  # pylint: disable=g-import-not-at-top
    except ImportError:
      raise ValueError('--beam_runner needs Apache Beam: pip install -r '
                       'requirements-beam.txt') from None
    beam_kwargs = dict(beam_runner=beam_runner,
                       beam_options=pipeline_options.PipelineOptions(shlex.split(beam_options)))
  elif beam_options:
    raise ValueError('--beam_options needs --beam_runner')
  return locks.prepared(
      lambda: builder_of(name, config, data_dir, num_processes, bool(beam_runner)),
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir, **beam_kwargs))


def main(argv):
  if len(argv) != 2:
    sys.exit('usage: python -m data_builders.build NAME [--config C] --data_dir=DIR')
  name = argv[1]
  if not os.path.isdir(os.path.join(os.path.dirname(__file__), name)):
    sys.exit(f'error: no data builder named {name!r} in data_builders/')
  start = time.perf_counter()
  try:
    fresh = not builder_of(name, FLAGS.config, FLAGS.data_dir).is_prepared()
    builder = build(name, FLAGS.config, FLAGS.data_dir, FLAGS.manual_dir,
                    FLAGS.num_processes, FLAGS.beam_runner, FLAGS.beam_options)
  except (FileNotFoundError, ValueError, AssertionError, UserError) as e:
    message = one_line(e)
    if 'Manual directory' in message and FLAGS.manual_dir is None:
      message += ' (no --manual_dir was given: name the folder of the originals with it)'
    sys.exit(f'error: {message}')
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


def one_line(e: BaseException) -> str:
  """The whole message on one line: TFDS puts what the user needs (the manual-download
  instructions, the close config names) on the lines after the first."""
  return ' '.join(l.strip() for l in str(e).strip().splitlines() if l.strip())


def entry():
  """`python -m data_builders.build` and the `fjax-build` console script
  (fjax.util.cli)."""
  from fjax.util import cli  # pylint: disable=g-import-not-at-top
  cli.run(main, __doc__, __name__)


if __name__ == '__main__':
  entry()
