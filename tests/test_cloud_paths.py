"""gs:// workdirs and data directories (issue 19), against a local GCS emulator.

The emulator (gcp-storage-emulator, requirements-test.txt; tests/gcs_emulator.py adds the
generation header tensorstore needs) runs in its own process and keeps its objects under
a temporary directory. Every client fjax drives is pointed at it:
gcsfs behind etils.epath (fjax's own files, Orbax's metadata, TFDS, grain's iterator
state) through STORAGE_EMULATOR_HOST, tensorstore (Orbax's arrays) through
TENSORSTORE_GCS_HTTP_URL and array_record's reader (the data set's records) through
CLOUD_STORAGE_EMULATOR_ENDPOINT. The CLI runs in an empty working directory: a POSIX call
on a `gs://...` string would fail there, or leave a `gs:` folder behind, and the files
must be found in the emulator's bucket.
"""
from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from conftest import ROOT, TEST_CONFIG

if not all(importlib.util.find_spec(m) for m in ('gcsfs', 'gcp_storage_emulator')):
  pytest.skip('gcsfs and gcp-storage-emulator (requirements-test.txt) are not installed',
              allow_module_level=True)
# read by gcsfs when imported: no bucket-layout lookups (a gRPC API the emulator lacks)
os.environ.setdefault('GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT', 'false')

BUCKET = 'fjax-test'
CONFIG = os.path.join(ROOT, TEST_CONFIG)  # the CLI runs in an empty directory


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


@pytest.fixture(scope='module')
def gcs(tmp_path_factory):
  """(environment for a client of the emulator, the folder holding the bucket's objects)."""
  store = tmp_path_factory.mktemp('gcs')
  port = _free_port()
  url = f'http://127.0.0.1:{port}'
  log = open(store / 'emulator.log', 'w')  # pylint: disable=consider-using-with
  proc = subprocess.Popen(
      [sys.executable, os.path.join(ROOT, 'tests', 'gcs_emulator.py'), 'start', '-H', '127.0.0.1', '--port', str(port), '--default-bucket', BUCKET, '--quiet'],
      cwd=store, env=dict(os.environ, STORAGE_BASE=str(store)), stdout=log, stderr=log)
  deadline = time.monotonic() + 60
  while True:
    try:
      socket.create_connection(('127.0.0.1', port), timeout=1).close()
      break
    except OSError:
      if proc.poll() is not None or time.monotonic() > deadline:
        proc.kill()
        raise RuntimeError(f'the GCS emulator did not start: {open(store / "emulator.log").read()}')
      time.sleep(0.2)
  env = {'STORAGE_EMULATOR_HOST': url, 'TENSORSTORE_GCS_HTTP_URL': url,
         'CLOUD_STORAGE_EMULATOR_ENDPOINT': url, 'GOOGLE_CLOUD_PROJECT': 'fjax-test',
         # no credentials lookup on a metadata server, no bucket-layout RPCs (gRPC)
         'NO_GCE_CHECK': 'true', 'GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT': 'false'}
  saved = {k: os.environ.get(k) for k in env}
  os.environ.update(env)  # for this process's epath (gcsfs reads it when first used)
  try:
    yield env, store / '.cloudstorage' / BUCKET
  finally:
    for k, v in saved.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def _fresh_gcsfs():
  """gcsfs caches its filesystem (and the emulator's address) per process."""
  import fsspec  # pylint: disable=g-import-not-at-top
  from etils.epath import backend  # pylint: disable=g-import-not-at-top
  fsspec.filesystem('gs').clear_instance_cache()
  backend.fsspec_backend._get_filesystem.cache_clear()  # pylint: disable=protected-access


def _cli(gcs_env, cwd, *args, check=True):
  env = dict(os.environ, **gcs_env, JAX_PLATFORMS='cpu', PYTHONPATH=ROOT)
  proc = subprocess.run([sys.executable, '-m', 'fjax.main', *args], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=900)
  if check and proc.returncode != 0:
    raise AssertionError(f'fjax.main {args} failed ({proc.returncode}):\n{proc.stderr[-4000:]}')
  return proc


def _upload(local: str, remote: str) -> None:
  from etils import epath  # pylint: disable=g-import-not-at-top
  for root, _, names in os.walk(local):
    for name in names:
      src = os.path.join(root, name)
      dst = epath.Path(remote) / os.path.relpath(src, local)
      dst.parent.mkdir(parents=True, exist_ok=True)
      with open(src, 'rb') as f:
        dst.write_bytes(f.read())


def test_files_helpers_on_local_and_gcs(gcs, tmp_path):
  from fjax.util import files  # pylint: disable=g-import-not-at-top
  _fresh_gcsfs()
  _, bucket = gcs
  for base in (str(tmp_path / 'local'), f'gs://{BUCKET}/helpers'):
    files.makedirs(base)
    metrics = os.path.join(base, 'metrics.jsonl')
    lines = files.Lines(metrics)
    lines.add('{"step": 1}')
    lines.add('{"step": 2}')
    files.Lines(metrics).add('{"step": 3}')  # a later writer (a resume) keeps what is there
    assert files.read_text(metrics).splitlines() == ['{"step": 1}', '{"step": 2}',
                                                     '{"step": 3}'], base
    files.write_text(os.path.join(base, 'a.json'), '{}')
    files.write_text(os.path.join(base, 'a.json'), '[1]')
    assert files.read_text(os.path.join(base, 'a.json')) == '[1]'
    assert sorted(files.listdir(base)) == ['a.json', 'metrics.jsonl'], base
    assert files.size_and_mtime(os.path.join(base, 'a.json'))[0] == 3
    mirror = files.Mirror(os.path.join(base, 'tb'))
    os.makedirs(mirror.directory, exist_ok=True)  # (tensorboardX makes it)
    with open(os.path.join(mirror.directory, 'events.1'), 'wb') as f:
      f.write(b'xy')
    mirror.close()
    assert files.read_bytes(os.path.join(base, 'tb', 'events.1')) == b'xy'
    files.makedirs(os.path.join(base, 'ckpt', '4'))
    files.write_text(os.path.join(base, 'ckpt', '4', 'x'), 'x')
    files.rename(os.path.join(base, 'ckpt', '4'), os.path.join(base, 'ckpt', '4.corrupt'))
    assert files.listdir(os.path.join(base, 'ckpt')) == ['4.corrupt']
  # the objects are in the emulator's bucket
  assert (bucket / 'helpers' / 'metrics.jsonl').read_text().count('\n') == 3
  assert (bucket / 'helpers' / 'tb' / 'events.1').read_bytes() == b'xy'
  assert files.absolute('gs://b/run/') == 'gs://b/run' and not files.is_local('gs://b/x')
  assert files.absolute('run') == os.path.abspath('run') and files.is_local('/x/y')


def test_train_resume_eval_summary_on_gcs(gcs, data_dir, tmp_path):
  """A gs:// workdir and a gs:// data directory, end to end: train, resume, eval,
  summary, with nothing written to the local disk."""
  env, bucket = gcs
  _fresh_gcsfs()
  _upload(data_dir, f'gs://{BUCKET}/tfds')
  env = {**env, 'TFDS_DATA_DIR': f'gs://{BUCKET}/tfds'}
  cwd = tmp_path / 'cwd'
  cwd.mkdir()
  workdir = f'gs://{BUCKET}/run'
  args = (f'--config={CONFIG}', f'--workdir={workdir}',
          f'--config.dataset.data_dir=gs://{BUCKET}/tfds')
  first = _cli(env, cwd, *args, '--config.total_steps=2', '--config.eval_every=2')
  assert 'cannot be locked, concurrent runs on it are not guarded' in first.stderr
  run = bucket / 'run'
  assert '2' in {p.name for p in (run / 'checkpoints').iterdir()}
  _cli(env, cwd, *args)  # resumes at 2, runs to 4
  rows = [json.loads(l) for l in (run / 'metrics.jsonl').read_text().splitlines()]
  train_steps = [r['step'] for r in rows if r['split'] == 'train']
  assert train_steps == [1, 2, 3, 4], train_steps  # steps 3, 4 only after the resume
  assert [r['step'] for r in rows if r['split'] == 'test'] == [2, 4]
  assert json.loads((run / 'config.json').read_text())['total_steps'] == 4
  assert '4' in {p.name for p in (run / 'checkpoints').iterdir()}
  assert any(p.name.startswith('events') for p in (run / 'tb').iterdir())
  assert (run / 'scores').is_dir() and any((run / 'scores').iterdir())
  proc = _cli(env, cwd, *args, '--mode=eval')
  result = json.loads(proc.stdout.strip().splitlines()[-1])
  rows = [json.loads(l) for l in (run / 'metrics.jsonl').read_text().splitlines()]
  assert result['step'] == 4 and rows[-1]['auc'] == result['auc'] and len(rows) > 8
  _cli(env, cwd, *args, '--mode=summary')
  assert json.loads((run / 'summary.json').read_text())['total_params'] > 0
  # the data set's split columns were saved beside it, in the bucket
  assert list((bucket / 'tfds').rglob('fjax-columns-*.npz'))
  assert not os.listdir(cwd), os.listdir(cwd)  # nothing on the local disk


def test_gcs_workdir_holding_a_file_is_refused(gcs, tmp_path):
  from etils import epath  # pylint: disable=g-import-not-at-top
  env, _ = gcs
  _fresh_gcsfs()
  epath.Path(f'gs://{BUCKET}/afile').write_text('x')
  proc = _cli(env, tmp_path, f'--config={CONFIG}', f'--workdir=gs://{BUCKET}/afile',
              check=False)
  assert proc.returncode == 1 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
  assert proc.stderr.strip().splitlines()[-1].endswith(
      f'--workdir gs://{BUCKET}/afile is a file, not a directory')
