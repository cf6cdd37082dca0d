"""launch/: the SLURM script on a stand-in srun (two CPU processes, JAX's own SLURM
detection), the TPU VM script's gcloud commands, and the Colab notebook's cells."""
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time

from conftest import ROOT, TEST_CONFIG, TWO_PROCESS_ARGS, read_metrics
from test_faults import assert_identical, final_state

# Stands in for SLURM's srun on one machine: SLURM_NTASKS copies of the command, each with
# the variables srun gives a task (its pid in LOG_DIR/task_<i>.pid), exit status the
# highest of the tasks'.
FAKE_SRUN = """#!/usr/bin/env bash
[ "$1" = --kill-on-bad-exit=1 ] || { echo "unexpected srun flag $1" >&2; exit 3; }
shift
pids=()
for ((i = 0; i < SLURM_NTASKS; i++)); do
  SLURM_PROCID=$i SLURM_LOCALID=$i SLURM_STEP_NODELIST=localhost SLURM_STEP_NUM_NODES=1 \
    "$@" > "$LOG_DIR/task_$i.log" 2>&1 &
  pids+=($!)
  echo $! > "$LOG_DIR/task_$i.pid"
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || { s=$?; [ $s -gt $status ] && status=$s; }; done
exit $status
"""
# Records what the script asks of scontrol.
FAKE_SCONTROL = """#!/usr/bin/env bash
echo "$@" >> "$LOG_DIR/scontrol.log"
"""


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _slurm(tmp_path, data_dir, workdir):
  """Starts launch/slurm_gpu.sbatch as SLURM would, two tasks on this machine. The
  tasks' `python` is a script that execs this interpreter (a symlink to a venv's python
  outside the venv would start the base interpreter, without the packages)."""
  bin_dir = tmp_path / 'bin'
  if not bin_dir.exists():
    bin_dir.mkdir()
    for name, text in (('srun', FAKE_SRUN), ('scontrol', FAKE_SCONTROL),
                       ('python', f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')):
      (bin_dir / name).write_text(text)
      (bin_dir / name).chmod(0o755)
  env = dict(os.environ, PATH=f'{bin_dir}:{os.environ["PATH"]}', SLURM_JOB_ID='4242',
             SLURM_NTASKS='2', SLURM_SUBMIT_DIR=ROOT, JAX_COORDINATOR_PORT=str(_free_port()),
             LOG_DIR=str(tmp_path), TFDS_DATA_DIR=data_dir, JAX_PLATFORMS='cpu')
  return subprocess.Popen(['bash', 'launch/slurm_gpu.sbatch', *TWO_PROCESS_ARGS,
                           f'--workdir={workdir}'], cwd=ROOT, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(proc, tmp_path):
  out, err = proc.communicate(timeout=600)
  logs = ''.join((tmp_path / f'task_{i}.log').read_text() for i in range(2))
  return proc.returncode, err + logs


def test_slurm_sigterm_to_one_task_checkpoints_requeues_and_resumes(data_dir, two_process_run,
                                                                    tmp_path):
  """The script starts two tasks that join one run; preemption reaches task 0 only: both
  tasks stop at the same step after writing its checkpoint, the script requeues the job,
  and the requeued job ends where the same run without the signal ends (conftest's
  two-process run, started by launch/local_multiprocess.sh)."""
  workdir = str(tmp_path / 'run')
  proc = _slurm(tmp_path, data_dir, workdir)
  deadline = time.time() + 300
  while not os.path.isdir(os.path.join(workdir, 'checkpoints', '1')):
    assert time.time() < deadline and proc.poll() is None, _finish(proc, tmp_path)[1][-3000:]
    time.sleep(0.02)
  os.kill(int((tmp_path / 'task_0.pid').read_text()), signal.SIGTERM)
  code, logs = _finish(proc, tmp_path)
  assert code == 143, logs[-3000:]
  stops = re.findall(r'stopped: SIGTERM at step (\d+)', logs)
  assert len(stops) == 2 and stops[0] == stops[1] and int(stops[0]) < 6, logs[-3000:]
  assert (tmp_path / 'scontrol.log').read_text().split() == ['requeue', '4242']
  code, logs = _finish(_slurm(tmp_path, data_dir, workdir), tmp_path)  # the requeued job
  assert code == 0, logs[-3000:]
  assert [r['step'] for r in read_metrics(workdir) if r['split'] == 'train'] == \
      list(range(1, 7))
  # Both tasks joined one run: each saved its own data-iterator state in the checkpoint.
  data_files = os.listdir(os.path.join(workdir, 'checkpoints', '6', 'data'))
  assert [sum(f'process_{i}' in f for f in data_files) for i in range(3)] == [1, 1, 0]
  assert_identical(final_state(two_process_run, 6), final_state(workdir, 6))


def test_slurm_script_needs_flags():
  proc = subprocess.run(['bash', 'launch/slurm_gpu.sbatch'], cwd=ROOT, capture_output=True,
                        text=True)
  assert proc.returncode == 2 and proc.stderr.startswith('usage: sbatch')


def _tpu(*args, **env):
  return subprocess.run(['bash', 'launch/tpu_vm.sh', *args], cwd=ROOT, text=True,
                        capture_output=True,
                        env={**os.environ, 'DRY_RUN': '1', 'TPU_NAME': 'pod', 'ZONE': 'z1', **env})


def test_tpu_script_commands():
  created = _tpu('create', ACCELERATOR_TYPE='v4-32')
  assert created.returncode == 0, created.stderr
  assert shlex.split(created.stdout) == [
      'gcloud', 'compute', 'tpus', 'tpu-vm', 'create', 'pod', '--accelerator-type=v4-32',
      '--version=tpu-ubuntu2204-base', '--zone=z1']

  setup = _tpu('setup')
  assert setup.returncode == 0, setup.stderr
  scp, ssh = [shlex.split(line) for line in setup.stdout.strip().splitlines()]
  assert scp[:5] == ['gcloud', 'compute', 'tpus', 'tpu-vm', 'scp'] and '--worker=all' in scp
  assert scp[5].endswith('.tar.gz') and scp[6] == 'pod:fjax.tar.gz'  # local -> each worker
  jax_version = [l.split('==')[1].strip() for l in open(os.path.join(ROOT, 'requirements.txt'))
                 if l.startswith('jax==')][0]
  assert '--worker=all' in ssh and f"'jax[tpu]=={jax_version}'" in ssh[7]
  # The runtime image's python3 is 3.10: the venv gets a uv-managed 3.11 before any pip.
  remote = ssh[7].removeprefix('--command=')
  steps = [s.strip() for s in remote.split('&&')]
  venv = next(i for i, s in enumerate(steps) if ' venv ' in f' {s} ')
  assert steps[venv].split()[-3:] == ['--python', '3.11', '.venv'], steps[venv]
  assert 'uv' in steps[venv - 1] and venv < next(i for i, s in enumerate(steps) if 'jax[tpu]' in s)
  assert not any(s.startswith('python3 -m venv') for s in steps)

  flags = ['--config=configs/focus.py:paper', '--workdir=/mnt/shared/runs/a b']
  run = _tpu('run', *flags, TFDS_DATA_DIR='/mnt/shared/data', PROJECT='p')
  assert run.returncode == 0, run.stderr
  ssh = shlex.split(run.stdout)
  assert ssh[:7] == ['gcloud', 'compute', 'tpus', 'tpu-vm', 'ssh', 'pod', '--worker=all']
  assert ssh[-2:] == ['--zone=z1', '--project=p']
  remote = ssh[7].removeprefix('--command=')
  # What each worker's shell runs: the flags arrive intact, space included.
  python = shlex.split(remote.split('&&')[-1])
  assert python[:3] == ['FJAX_DISTRIBUTED=1', 'TFDS_DATA_DIR=/mnt/shared/data', 'nohup']
  assert python[3:6] == ['python', '-m', 'fjax.main'] and python[6:8] == flags


def test_tpu_script_bad_use():
  for args, env in [(('run',), {}), (('bogus',), {}), ((), {}),
                    (('create',), {'TPU_NAME': ''}), (('create',), {'ACCELERATOR_TYPE': ''})]:
    proc = _tpu(*args, **env)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_colab_notebook(data_dir, trained_workdir, tmp_path, capsys):
  """Every cell but the Colab-only install, with the parameters cell set for the tiny
  data set: fine-tune from a trained workdir, read the metrics, detect and draw."""
  notebook = json.load(open(os.path.join(ROOT, 'launch', 'colab.ipynb')))
  assert notebook['nbformat'] == 4
  cells = [c for c in notebook['cells'] if c['cell_type'] == 'code']
  tags = [c.get('metadata', {}).get('tags', []) for c in cells]
  assert ['colab-only'] in tags and ['parameters'] in tags
  workdir = str(tmp_path / 'finetune')
  params = {'CONFIG': TEST_CONFIG, 'INIT_FROM': trained_workdir, 'INIT_INTO': '',
            'WORKDIR': workdir, 'DATA_DIR': data_dir, 'OVERRIDES': [], 'INPUTS': []}
  namespace = {}
  cwd = os.getcwd()
  os.chdir(ROOT)
  try:
    for cell, cell_tags in zip(cells, tags):
      if 'colab-only' in cell_tags:
        continue
      source = ''.join(cell['source'])
      if 'parameters' in cell_tags:
        exec(source, namespace)  # pylint: disable=exec-used
        assert set(params) <= set(namespace), 'the parameters cell lost a parameter'
        namespace.update(params)
      else:
        exec(source, namespace)  # pylint: disable=exec-used
  finally:
    os.chdir(cwd)
  printed = capsys.readouterr().out
  assert 'arrays loaded' in printed  # init_from took the trained workdir
  assert any(r['split'] == 'test' for r in read_metrics(workdir))
  rows = [json.loads(l) for l in open(os.path.join(workdir, 'predictions', 'predictions.jsonl'))]
  faces = [r for r in rows if r['status'] == 'ok']
  assert len(faces) >= 3  # t1.jpg shows six people
  for r in faces:
    assert os.path.exists(os.path.join(workdir, 'predictions', r['overlay']))
    assert r['overlay'] in printed  # show() listed it (no IPython here)
