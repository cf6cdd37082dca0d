"""Parallel building (data_builders/parallel.py) writes the same data set as one process:
the FF++ fixture and a DFDC test-set layout (several faces per frame, a faceless frame),
built with --num_processes=1 and 2 (and through Apache Beam's DirectRunner over two
processes where Beam is installed), give the same record files byte for byte, the same
examples decoded by key, the same metadata.json and the same report counts."""
from __future__ import annotations

import collections
import json
import os
import re

import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_builders import parallel, report
from tests import ffpp_fixture, test_testsets
from tests.conftest import run_cli

FFPP_SPLITS = ('train', 'validation', 'test')


@pytest.fixture(scope='module')
def ffpp_manual(ffpp):
  return ffpp[0]


@pytest.fixture(scope='module')
def ffpp_one(ffpp):
  """The FF++ fixture built in one process (conftest): (data_dir, report counts)."""
  return ffpp[1], _counts('faceforensics', ffpp[2])


def _build(name, manual, data_dir, *flags):
  proc = run_cli('data_builders.build', name, '--config=tiny', f'--manual_dir={manual}',
                 f'--data_dir={data_dir}', *flags)
  return _counts(name, proc.stdout)


def _counts(name, stdout):
  counts = {}
  for line in stdout.splitlines():
    m = re.fullmatch(r'(.+): (\d+)', line)
    if m and not line.startswith(f'{name}/'):
      counts[m.group(1)] = int(m.group(2))
  return counts


def _version_dir(data_dir, name):
  root = os.path.join(data_dir, name, 'tiny')
  (version,) = [v for v in os.listdir(root) if not v.startswith('.')]  # not the lock
  return os.path.join(root, version)


def _examples_by_key(name, data_dir, split):
  __import__(f'data_builders.{name}')
  src = tfds.data_source(f'{name}/tiny', split=split, data_dir=data_dir)
  out = {}
  for i in range(len(src)):
    e = src[i]
    key = (e['method'], e['video_id'], int(e['frame']), int(e['face']))
    assert key not in out, key
    out[key] = e
  return out


def _assert_same_data_set(name, dirs, splits):
  one, other = (_version_dir(d, name) for d in dirs)
  # What the builders wrote: not the column caches that reading the set (other tests of the
  # shared FF++ build, fjax/data/sources.py) leaves beside it.
  built = lambda d: sorted(f for f in os.listdir(d) if not f.startswith('fjax-columns-'))
  files = built(one)
  assert files == built(other)
  assert any(f.endswith('metadata.json') for f in files)
  for f in files:  # record files, dataset_info.json (split sizes), metadata.json
    with open(os.path.join(one, f), 'rb') as a, open(os.path.join(other, f), 'rb') as b:
      assert a.read() == b.read(), f
  for split in splits:
    a, b = (_examples_by_key(name, d, split) for d in dirs)
    assert a and a.keys() == b.keys(), split
    for key, example in a.items():
      assert example.keys() == b[key].keys()
      for feature, value in example.items():
        np.testing.assert_array_equal(value, b[key][feature], err_msg=f'{key} {feature}')
  with open(os.path.join(one, 'metadata.json')) as f:
    return json.load(f)


def test_ffpp_in_two_processes_is_the_same_data_set(ffpp_manual, ffpp_one, tmp_path):
  dirs = [ffpp_one[0], str(tmp_path / 'two')]
  counts = [ffpp_one[1], _build('faceforensics', ffpp_manual, dirs[1], '--num_processes=2')]
  assert counts[0] == counts[1]
  assert counts[0]['frames without a face (recorded in metadata.json faceless_frames)'] == 9
  assert counts[0]['skipped videos that do not decode'] == 1
  metadata = _assert_same_data_set('faceforensics', dirs, FFPP_SPLITS)
  assert len(metadata['faceless_frames']['test']) == 9
  assert metadata['msccnet_annotation_frames_by_quality'] == {'c23': 45}


def test_test_set_in_two_processes_is_the_same_data_set(tmp_path):
  manual = str(tmp_path / 'manual')
  test_testsets.dfdc(manual, *test_testsets._clips())  # pylint: disable=protected-access
  dirs = [str(tmp_path / 'one'), str(tmp_path / 'two')]
  counts = [_build('dfdc', manual, dirs[0]), _build('dfdc', manual, dirs[1], '--num_processes=2')]
  assert counts[0] == counts[1]
  assert counts[0]['frames with several faces (each stored)'] == 2
  metadata = _assert_same_data_set('dfdc', dirs, ('test',))
  assert metadata['faceless_frames'] == {'test': test_testsets.FACELESS['dfdc']}


def test_beam_direct_runner_is_the_same_data_set(ffpp_manual, ffpp_one, tmp_path):
  pytest.importorskip('apache_beam')
  dirs = [ffpp_one[0], str(tmp_path / 'beam')]
  counts = [ffpp_one[1],
            _build('faceforensics', ffpp_manual, dirs[1], '--beam_runner=DirectRunner',
                   '--beam_options=--direct_num_workers=2 '
                   '--direct_running_mode=multi_processing')]
  assert counts[0] == counts[1]
  _assert_same_data_set('faceforensics', dirs, FFPP_SPLITS)
  assert not os.path.exists(os.path.join(dirs[1], 'downloads', 'fjax_parallel'))


def test_refusals_are_one_line(ffpp_manual, tmp_path):
  for flags, message in ((['--num_processes=0'], '--num_processes must be at least 1'),
                         (['--beam_options=--direct_num_workers=2'],
                          '--beam_options needs --beam_runner')):
    proc = run_cli('data_builders.build', 'faceforensics', '--config=tiny',
                   f'--manual_dir={ffpp_manual}', f'--data_dir={tmp_path}', *flags,
                   check=False)
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr
    assert message in proc.stderr.strip().splitlines()[-1]


def test_units_merge_in_order():
  """Metadata of units: lists appended, numbers added, dicts merged; report counts of a
  unit are its own and are added to the building process's."""
  into = {'faceless_frames': {'test': [['a', 0, 0, 'real']]}, 'by_quality': {'c23': 2}}
  parallel.merge_metadata(into, {'faceless_frames': {'test': [['b', 1, 1, 'fake']],
                                                     'train': [['c', 2, 0, 'real']]},
                                 'by_quality': {'c23': 3, 'raw': 1}})
  assert into == {'faceless_frames': {'test': [['a', 0, 0, 'real'], ['b', 1, 1, 'fake']],
                                      'train': [['c', 2, 0, 'real']]},
                  'by_quality': {'c23': 5, 'raw': 1}}

  def work(unit, metadata):
    report.note('seen')
    metadata.setdefault('units', []).append(unit)
    yield str(unit), {'x': unit}

  before = report.COUNTS.copy()
  done = parallel.run(work, 7)
  assert report.COUNTS == before  # counted in the unit's own Counter
  assert done == parallel.Done([('7', {'x': 7})], {'units': [7]}, collections.Counter(seen=1))
