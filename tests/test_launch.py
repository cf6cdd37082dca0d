"""launch/: the SLURM script on a stand-in srun (two CPU processes, JAX's own SLURM
detection), the TPU VM script's gcloud commands, and the Colab notebook's cells."""
import json
import os
import shlex
import socket
import subprocess
import sys

from conftest import ROOT, TEST_CONFIG, read_metrics

# Stands in for SLURM's srun on one machine: SLURM_NTASKS copies of the command, each with
# the variables srun gives a task.
FAKE_SRUN = """#!/usr/bin/env bash
[ "$1" = --kill-on-bad-exit=1 ] || { echo "unexpected srun flag $1" >&2; exit 3; }
shift
pids=()
for ((i = 0; i < SLURM_NTASKS; i++)); do
  SLURM_PROCID=$i SLURM_LOCALID=$i SLURM_STEP_NODELIST=localhost SLURM_STEP_NUM_NODES=1 \
    "$@" > "$LOG_DIR/task_$i.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
exit $status
"""


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def test_slurm_script_runs_two_tasks(data_dir, tmp_path):
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  (bin_dir / 'srun').write_text(FAKE_SRUN)
  (bin_dir / 'srun').chmod(0o755)
  (bin_dir / 'python').symlink_to(sys.executable)
  workdir = str(tmp_path / 'run')
  env = dict(os.environ, PATH=f'{bin_dir}:{os.environ["PATH"]}', SLURM_JOB_ID='4242',
             SLURM_NTASKS='2', SLURM_SUBMIT_DIR=ROOT, JAX_COORDINATOR_PORT=str(_free_port()),
             LOG_DIR=str(tmp_path), TFDS_DATA_DIR=data_dir, JAX_PLATFORMS='cpu')
  proc = subprocess.run(['bash', 'launch/slurm_gpu.sbatch', f'--config={TEST_CONFIG}',
                         f'--workdir={workdir}', '--config.total_steps=2'],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  logs = ''.join((tmp_path / f'task_{i}.log').read_text() for i in range(2))
  assert proc.returncode == 0, proc.stderr[-2000:] + logs[-3000:]
  assert [r['step'] for r in read_metrics(workdir) if r['split'] == 'train'] == [1, 2]
  # Both tasks joined one run: each saved its own data-iterator state in the checkpoint.
  data_files = os.listdir(os.path.join(workdir, 'checkpoints', '2', 'data'))
  assert [sum(f'process_{i}' in f for f in data_files) for i in range(3)] == [1, 1, 0]


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
