"""Kill -9 at a checkpoint boundary and restart: same parameters, bit for bit."""
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp

from conftest import ROOT, TEST_CONFIG, run_cli

ARGS = ('--config.total_steps=6', '--config.checkpoint_every=2', '--config.eval_every=100',
        '--config.keep_checkpoints=10')


def _final_state(workdir, step=6):
  path = os.path.join(workdir, 'checkpoints', str(step), 'state')
  return jax.device_get(ocp.StandardCheckpointer().restore(path))


def test_kill_and_resume_is_bit_identical(data_dir, tmp_path):
  straight, resumed = str(tmp_path / 'straight'), str(tmp_path / 'resumed')
  run_cli('fjax.main', f'--config={TEST_CONFIG}', f'--workdir={straight}', *ARGS,
          data_dir=data_dir)

  env = dict(os.environ, TFDS_DATA_DIR=data_dir, JAX_PLATFORMS='cpu')
  cmd = [sys.executable, '-m', 'fjax.main', f'--config={TEST_CONFIG}',
         f'--workdir={resumed}', *ARGS]
  proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  first = os.path.join(resumed, 'checkpoints', '2')
  deadline = time.time() + 300
  while not os.path.isdir(first) and time.time() < deadline and proc.poll() is None:
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert os.path.isdir(first), 'the run never wrote its first checkpoint'
  steps = sorted(int(s) for s in os.listdir(os.path.join(resumed, 'checkpoints'))
                 if s.isdigit())
  assert steps and steps[-1] < 6, f'killed too late: {steps}'

  run_cli('fjax.main', *cmd[3:], data_dir=data_dir)
  a, b = _final_state(straight), _final_state(resumed)
  flat_a, tree_a = jax.tree_util.tree_flatten(a)
  flat_b, tree_b = jax.tree_util.tree_flatten(b)
  assert tree_a == tree_b
  for x, y in zip(flat_a, flat_b):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_keeps_last_k_and_best(data_dir, tmp_path):
  workdir = str(tmp_path / 'keep')
  run_cli('fjax.main', f'--config={TEST_CONFIG}', f'--workdir={workdir}',
          '--config.total_steps=8', '--config.checkpoint_every=1', '--config.eval_every=2',
          '--config.keep_checkpoints=2', data_dir=data_dir)
  import json  # pylint: disable=g-import-not-at-top
  evals = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
  evals = {r['step']: r['auc'] for r in evals if r['split'] == 'validation'}
  kept = sorted(int(s) for s in os.listdir(os.path.join(workdir, 'checkpoints'))
                if s.isdigit())
  assert {7, 8} <= set(kept) and len(kept) <= 3, (kept, evals)
  assert max(evals.get(s, -1) for s in kept) == max(evals.values()), (kept, evals)
