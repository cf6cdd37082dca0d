"""The fault matrix: every model, with the data options that apply to it, killed with
SIGKILL at a random step (one cell stopped by SIGTERM first), then its newest checkpoint
truncated, then run to the end by the same command, ends bit-identical to a straight run.
Also: a truncated data shard, a data mismatch, extending a finished run, a busy workdir
and two first runs building the same data set at once."""
from __future__ import annotations

import glob
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from conftest import (FAULT_CELLS, FAULT_TOTAL, ROOT, TEST_CONFIG, error_line, fault_command,
                      read_metrics, run_cli)

TOTAL = FAULT_TOTAL
# The faulted runs checkpoint every step, so that each fault lands between checkpoints.
ARGS = (f'--config.total_steps={TOTAL}', '--config.checkpoint_every=1',
        '--config.eval_every=100', '--config.keep_checkpoints=20', '--config.log_every=1')
# SIGTERM's checkpoint is written and restored by the code every model shares (and the
# SLURM test sends it to a two-process run), so one cell, the one with grain worker
# processes, takes it; every cell is killed and resumed, which is where a model's own
# state could be lost.
SIGTERM_CELL = 'xception_real_only_sbi_workers'


def _env(data_dir):
  # conftest's compilation cache is inherited: the runs of one cell compile alike.
  return dict(os.environ, TFDS_DATA_DIR=data_dir, JAX_PLATFORMS='cpu')


def _steps(workdir):
  path = os.path.join(workdir, 'checkpoints')
  return sorted(int(s) for s in os.listdir(path) if s.isdigit()) if os.path.isdir(path) else []


def _wait_for_step(workdir, step, proc, timeout=300):
  deadline = time.time() + timeout
  while time.time() < deadline and proc.poll() is None:
    if any(s >= step for s in _steps(workdir)):
      return
    time.sleep(0.02)
  raise AssertionError(f'no checkpoint {step} in {workdir} (exit {proc.poll()})')


def _signal_after_step(proc, step):
  """Sends SIGTERM to proc as soon as its stderr logs train step `step`; returns the thread
  that drains the pipe until the process exits and the list it appends the lines to."""
  lines, logged = [], threading.Event()
  def drain():
    for line in proc.stderr:
      lines.append(line)
      if f'[train] step {step}:' in line:
        logged.set()
  reader = threading.Thread(target=drain, daemon=True)
  reader.start()
  deadline = time.time() + 300
  while not logged.wait(timeout=0.1) and proc.poll() is None and time.time() < deadline:
    pass
  if not logged.is_set():
    raise AssertionError(f'no step {step} logged (exit {proc.poll()}): {"".join(lines)[-3000:]}')
  proc.send_signal(signal.SIGTERM)
  return reader, lines


def final_state(workdir, step=TOTAL):
  """The saved train state on this process's first device (whatever wrote it)."""
  path = os.path.join(workdir, 'checkpoints', str(step), 'state')
  checkpointer = ocp.StandardCheckpointer()
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  meta = checkpointer.metadata(path)
  meta = getattr(meta, 'item_metadata', meta)
  target = jax.tree_util.tree_map(
      lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), meta)
  return jax.device_get(checkpointer.restore(path, target))


def assert_identical(a, b):
  flat_a, tree_a = jax.tree_util.tree_flatten(a)
  flat_b, tree_b = jax.tree_util.tree_flatten(b)
  assert tree_a == tree_b
  for x, y in zip(flat_a, flat_b):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize('cell', sorted(FAULT_CELLS))
def test_sigterm_then_kill_then_resume_is_bit_identical(cell, data_dir, request, tmp_path):
  rng = random.Random(cell)
  env = _env(data_dir)
  # The straight run (conftest: made once, it also serves other tests) compiles the cell's
  # programs into the session's cache; the faulted runs find them there.
  straight = request.getfixturevalue('straight_run')(cell)
  faulted = str(tmp_path / 'faulted')
  command = lambda: fault_command(request, cell, faulted, ARGS)

  def start(**kwargs):
    p = subprocess.Popen(command(), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, **kwargs)
    request.addfinalizer(lambda: p.poll() is None and (p.kill(), p.wait()))  # if one failed
    return p

  stopped_at = 0
  if cell == SIGTERM_CELL:
    # 1. SIGTERM right after the log line of a random early step (read as it is written: a
    # checkpoint directory appears only once its asynchronous write is final, which under
    # load can be several steps later): the run checkpoints and says so.
    proc = start(stderr=subprocess.PIPE, text=True)
    reader, stderr = _signal_after_step(proc, rng.randint(1, 2))
    proc.wait(timeout=300)
    reader.join(timeout=60)
    stderr = ''.join(stderr)
    line = stderr.strip().splitlines()[-1]
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert 'Traceback' not in stderr and line.startswith('stopped: SIGTERM at step'), line
    stopped_at = int(re.search(r'step (\d+)', line).group(1))
    assert stopped_at < TOTAL - 1 and _steps(faulted)[-1] == stopped_at, stderr[-2000:]

  # 2. The same command, killed with SIGKILL after a random further checkpoint (the second
  # at least: step 3 resumes from the one before the newest).
  proc = start(stderr=subprocess.DEVNULL)
  _wait_for_step(faulted, rng.randint(max(stopped_at + 1, 2), TOTAL - 2), proc)
  time.sleep(rng.uniform(0, 0.2))
  proc.kill()
  proc.wait()
  assert _steps(faulted)[-1] < TOTAL, f'killed too late: {_steps(faulted)}'

  # 3. The newest checkpoint truncated (a full disk, a copy cut short): the same command
  # sets it aside with one warning and runs to the end from the one before.
  newest = _steps(faulted)[-1]
  _truncate_arrays(os.path.join(faulted, 'checkpoints', str(newest)))
  proc = subprocess.run(command(), cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  warning = [l for l in proc.stderr.splitlines() if l.startswith('warning: checkpoint')]
  assert len(warning) == 1 and 'corrupt or incomplete' in warning[0], proc.stderr[-2000:]
  assert f'resuming from checkpoint {_steps_before(faulted, newest)}' in warning[0], warning
  assert os.path.isdir(os.path.join(faulted, 'checkpoints', f'{newest}.corrupt'))  # kept
  assert_identical(final_state(straight), final_state(faulted))
  assert [r['step'] for r in read_metrics(faulted) if r['split'] == 'test'] == [TOTAL]


def _truncate_arrays(checkpoint_dir):
  for path in glob.glob(os.path.join(checkpoint_dir, 'state', '**', '*'), recursive=True):
    if os.path.isfile(path) and os.path.getsize(path) > 1000:  # the array data files
      with open(path, 'r+b') as f:
        f.truncate(os.path.getsize(path) // 2)


def _steps_before(workdir, step):
  return max(s for s in _steps(workdir) if s < step)


def _cli(workdir, data_dir, *extra, check=True):
  return run_cli('fjax.main', f'--config={TEST_CONFIG}', f'--workdir={workdir}',
                 '--config.checkpoint_every=2', '--config.eval_every=100',
                 '--config.keep_checkpoints=10', *extra, data_dir=data_dir, check=check)


def test_truncated_data_shard_is_one_line_naming_the_file(data_dir, tmp_path):
  import shutil  # pylint: disable=g-import-not-at-top
  copy = str(tmp_path / 'tfds')
  shutil.copytree(data_dir, copy)
  shard = sorted(glob.glob(os.path.join(copy, 'demo_forgeries', 'tiny', '*',
                                        '*-train.array_record*')))[0]
  with open(shard, 'r+b') as f:
    f.truncate(os.path.getsize(shard) // 3)
  proc = run_cli('fjax.main', f'--config={TEST_CONFIG}', f'--workdir={tmp_path / "run"}',
                 data_dir=copy, check=False)
  line = error_line(proc)
  assert os.path.basename(shard) in line and 'rebuild' in line, line


def test_data_mismatch_is_named_and_extension_continues(data_dir, tmp_path):
  workdir = str(tmp_path / 'run')
  real_only = ('--config.dataset.train_real_only=True', '--config.input.self_blend_prob=0.5')
  _cli(workdir, data_dir, '--config.total_steps=2', *real_only)
  line = error_line(_cli(workdir, data_dir, '--config.total_steps=4', check=False))
  assert "filters: ['real_only'] there, [] here" in line and 'corrupt' not in line, line
  line = error_line(_cli(workdir, data_dir, '--config.total_steps=4', '--config.seed=7',
                         *real_only, check=False))
  assert 'seed: 0 there, 7 here' in line, line
  # A larger total_steps continues the finished run from its newest checkpoint.
  _cli(workdir, data_dir, '--config.total_steps=4', *real_only)
  steps = [r['step'] for r in read_metrics(workdir) if r['split'] == 'train']
  assert steps == [1, 2, 3, 4] and _steps(workdir)[-1] == 4


def test_busy_workdir_is_refused(data_dir, tmp_path):
  workdir = str(tmp_path / 'run')
  env = _env(data_dir)
  live = subprocess.Popen([sys.executable, '-m', 'fjax.main', f'--config={TEST_CONFIG}',
                           f'--workdir={workdir}', '--config.total_steps=200',
                           '--config.checkpoint_every=1'], cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    _wait_for_step(workdir, 1, live)
    line = error_line(_cli(workdir, data_dir, check=False))
    assert f'workdir {workdir} is in use by a live run (pid {live.pid} ' in line, line
  finally:
    live.kill()
    live.wait()
  _cli(workdir, data_dir, '--config.total_steps=4')  # a dead holder holds nothing


def test_two_first_runs_build_the_data_set_once(tmp_path):
  """Two processes that find the data set missing: one builds, the other waits, both
  train on it."""
  data_dir = str(tmp_path / 'tfds')
  env = _env(data_dir)
  procs = [subprocess.Popen([sys.executable, '-m', 'fjax.main', f'--config={TEST_CONFIG}',
                             f'--workdir={tmp_path / f"run{i}"}', '--config.total_steps=1'],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True) for i in range(2)]
  outs = [p.communicate(timeout=900)[0] for p in procs]
  assert [p.returncode for p in procs] == [0, 0], [o[-2000:] for o in outs]
  assert sum('downloaded and prepared' in o for o in outs) == 1, [o[-500:] for o in outs]
  assert len(glob.glob(os.path.join(data_dir, 'demo_forgeries', 'tiny', '*',
                                    'dataset_info.json'))) == 1
