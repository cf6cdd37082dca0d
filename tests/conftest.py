"""Shared fixtures: the tiny demo data set, built once per session from package media, and
a helper that runs the CLIs as a user would (a fresh process each time)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_CONFIG = 'configs/xception.py:test'


@pytest.fixture(scope='session')
def data_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('tfds'))
  from data_builders import build  # pylint: disable=g-import-not-at-top
  build.build('demo_forgeries', 'tiny', path)
  os.environ['TFDS_DATA_DIR'] = path
  return path


def run_cli(module: str, *args: str, env: dict | None = None, data_dir: str | None = None,
            timeout: int = 600, check: bool = True) -> subprocess.CompletedProcess:
  full_env = dict(os.environ, **(env or {}))
  if data_dir:
    full_env['TFDS_DATA_DIR'] = data_dir
  full_env.setdefault('JAX_PLATFORMS', 'cpu')
  proc = subprocess.run([sys.executable, '-m', module, *args], cwd=ROOT, env=full_env,
                        capture_output=True, text=True, timeout=timeout)
  if check and proc.returncode != 0:
    raise AssertionError(f'{module} {args} failed ({proc.returncode}):\n{proc.stderr[-3000:]}')
  return proc


def read_metrics(workdir: str) -> list[dict]:
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def error_line(proc: subprocess.CompletedProcess) -> str:
  """The last stderr line; asserts the process failed without a traceback."""
  assert proc.returncode != 0, proc.stdout[-2000:]
  assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
  return proc.stderr.strip().splitlines()[-1]


@pytest.fixture(scope='session')
def trained_workdir(data_dir, tmp_path_factory):
  """A workdir trained for the test preset's 4 steps (shared, treat as read-only)."""
  workdir = str(tmp_path_factory.mktemp('trained'))
  run_cli('fjax.main', f'--config={TEST_CONFIG}', f'--workdir={workdir}', data_dir=data_dir)
  return workdir
