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


def shared(tmp_path_factory, name: str, make) -> str:
  """A folder that `make(path)` fills once per pytest run, for every xdist worker: the
  first worker to ask makes it under a file lock, the others wait and reuse it (each
  worker's session fixtures would otherwise train and build the same runs again).
  Treat it as read-only."""
  import fcntl  # pylint: disable=g-import-not-at-top
  base = tmp_path_factory.getbasetemp()
  root = base.parent if os.environ.get('PYTEST_XDIST_WORKER') else base
  path, done = root / f'shared-{name}', root / f'shared-{name}.done'
  with open(root / f'shared-{name}.lock', 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not done.exists():
      if path.exists():  # a worker that failed half-way
        import shutil  # pylint: disable=g-import-not-at-top
        shutil.rmtree(path)
      path.mkdir()
      make(str(path))
      done.touch()
  return str(path)


@pytest.fixture(scope='session', autouse=True)
def compilation_cache(tmp_path_factory):
  """One persistent XLA compilation cache for the run, shared by the xdist workers: the
  many runs of the same test configs (fresh processes each, and the tests' own jitted
  functions) compile once (same program, same executable)."""
  path = shared(tmp_path_factory, 'jax_cache', lambda path: None)
  os.environ['JAX_COMPILATION_CACHE_DIR'] = path  # read by every CLI subprocess's jax
  os.environ['JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'] = '0'
  # This process imported jax while collecting the tests, before the variables were set.
  import jax  # pylint: disable=g-import-not-at-top
  from jax.experimental.compilation_cache import compilation_cache  # pylint: disable=g-import-not-at-top
  jax.config.update('jax_compilation_cache_dir', path)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0)
  compilation_cache.reset_cache()  # a compilation during collection found none
  return path


@pytest.fixture(scope='session')
def data_dir(tmp_path_factory):
  """The tiny demo set, built once per run."""
  from data_builders import build  # pylint: disable=g-import-not-at-top
  path = shared(tmp_path_factory, 'tfds', lambda path: build.build('demo_forgeries', 'tiny', path))
  os.environ['TFDS_DATA_DIR'] = path
  return path


@pytest.fixture(scope='session')
def ffpp(tmp_path_factory):
  """The FaceForensics++ fixture tree (tests/ffpp_fixture.py) and faceforensics/tiny built
  from it in one process: (manual_dir, data_dir, the build's stdout)."""
  from tests import ffpp_fixture  # pylint: disable=g-import-not-at-top
  def make(path):
    manual, data = os.path.join(path, 'manual'), os.path.join(path, 'tfds')
    ffpp_fixture.make_tree(manual)
    proc = run_cli('data_builders.build', 'faceforensics', '--config=tiny',
                   f'--manual_dir={manual}', f'--data_dir={data}')
    with open(os.path.join(path, 'stdout.txt'), 'w') as f:
      f.write(proc.stdout)
  path = shared(tmp_path_factory, 'ffpp', make)
  with open(os.path.join(path, 'stdout.txt')) as f:
    return os.path.join(path, 'manual'), os.path.join(path, 'tfds'), f.read()


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
  return shared(tmp_path_factory, 'trained', lambda workdir: run_cli(
      'fjax.main', f'--config={TEST_CONFIG}', f'--workdir={workdir}', data_dir=data_dir))


def run_steps(config, data_dir: str, steps: int):
  """`steps` jitted train steps of config's model on one fixed batch of the tiny demo
  set's train split: (model_lib, model, mesh, state, batch, [metrics per step])."""
  import jax  # pylint: disable=g-import-not-at-top
  from fjax import registry, run as run_lib  # pylint: disable=g-import-not-at-top
  from fjax.data import loaders  # pylint: disable=g-import-not-at-top
  from fjax.trainer import sharding, train  # pylint: disable=g-import-not-at-top
  config.dataset.data_dir = data_dir
  r = run_lib.open_run(config)
  model_lib, model, mesh = r.model_lib, r.model, r.mesh
  st, shardings = r.fresh_state()
  step = train.make_train_step(config, model_lib, model, mesh, shardings)
  if config.input.tamper.pairs:  # pairs exist only in training batches
    batch = next(iter(loaders.train_loader(config, 4)))
  else:
    batch = next(loaders.eval_batches(config, 'train', 8)[2])
  batch = sharding.to_global({k: batch[k] for k in registry.batch_keys(model_lib, config)},
                             mesh)
  values = []
  for _ in range(steps):
    st, v = step(st, batch)
    values.append(jax.device_get(v))
  return model_lib, model, mesh, st, batch, values


# The two-process runs' options (tests/test_distributed.py, tests/test_launch.py's SLURM
# runs): a checkpoint at every step, so that a fault can land between any two.
TWO_PROCESS_ARGS = (f'--config={TEST_CONFIG}', '--config.total_steps=6',
                    '--config.checkpoint_every=1', '--config.eval_every=100',
                    '--config.keep_checkpoints=10')


@pytest.fixture(scope='session')
def two_process_run(data_dir, tmp_path_factory):
  """A run of TWO_PROCESS_ARGS in two processes over loopback, started by
  launch/local_multiprocess.sh (shared, treat as read-only): the straight reference of the
  SLURM preemption test too."""
  def make(root):
    workdir = os.path.join(root, 'run')
    env = dict(os.environ, TFDS_DATA_DIR=data_dir, JAX_PLATFORMS='cpu', PYTHON=sys.executable,
               LOG_DIR=root)
    proc = subprocess.run(['bash', 'launch/local_multiprocess.sh', '2', '-m', 'fjax.main',
                           *TWO_PROCESS_ARGS, f'--workdir={workdir}'],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    logs = ''.join(open(os.path.join(root, f)).read() for f in os.listdir(root)
                   if f.endswith('.log'))
    assert proc.returncode == 0, proc.stderr[-3000:] + logs[-3000:]
  return os.path.join(shared(tmp_path_factory, 'two_process', make), 'run')


@pytest.fixture(scope='session')
def semantic_stage1(data_dir, tmp_path_factory):
  """A Detect-and-Locate stage-1 workdir (4 steps, Adam's L2 weight decay 0.5) for the
  tests of stage 1 and of stage 2 starting from it (shared, treat as read-only)."""
  return shared(tmp_path_factory, 'semantic_stage1', lambda workdir: run_cli(
      'fjax.main', '--config=configs/semantic_noise.py:test,stage1', f'--workdir={workdir}',
      '--config.total_steps=4', '--config.optimizer.weight_decay=0.5', data_dir=data_dir))


@pytest.fixture(scope='session')
def focus_maps(data_dir, straight_run, tmp_path_factory):
  """(FoCus workdir trained for the test preset: the fault matrix's straight run, the a_fus
  maps it exported, what the export printed)."""
  run = straight_run('focus_gumbel')
  def make(root):
    proc = run_cli('fjax.focus_maps', f'--workdir={run}', f'--output={root}/maps',
                   data_dir=data_dir)
    with open(os.path.join(root, 'stdout.txt'), 'w') as f:
      f.write(proc.stdout)
  root = shared(tmp_path_factory, 'focus', make)
  with open(os.path.join(root, 'stdout.txt')) as f:
    return run, os.path.join(root, 'maps'), f.read()


# The fault matrix (tests/test_faults.py): model config -> the data options it is run
# with (each a code path of its own). STAGE1 and MAPS name the session's runs they need.
FAULT_TOTAL = 8
FAULT_CELLS = {
    'xception_real_only_sbi_workers': ('configs/xception.py:test', (
        '--config.dataset.train_real_only=True', '--config.input.self_blend_prob=0.5',
        '--config.input.photometric=True', '--config.input.workers=2')),
    'msccnet_holdout_pairs_released_aug': ('configs/msccnet.py:test', (
        '--config.dataset.holdout=face_swap', '--config.input.balance=pair',
        '--config.input.augment=msccnet')),
    'aunet_tamper_pairs_real_only': ('configs/aunet.py:test', ()),
    'focus_gumbel': ('configs/focus.py:test', ()),
    'local_similarity': ('configs/local_similarity.py:test', ()),
    'focus_eval_on_focus_maps': ('configs/focus_eval.py:test', ('MAPS',)),
    'semantic_noise_stage2_five_way': ('configs/semantic_noise.py:test,five_way,stage2=STAGE1',
                                       ()),
}
# The straight run checkpoints only at its end: checkpointing must not change what is
# trained.
STRAIGHT_ARGS = (f'--config.total_steps={FAULT_TOTAL}',
                 f'--config.checkpoint_every={FAULT_TOTAL}', '--config.eval_every=100',
                 '--config.log_every=1')


def fault_command(request, cell: str, workdir: str, args) -> list[str]:
  """The `fjax.main` command line of a fault-matrix cell."""
  config, options = FAULT_CELLS[cell]
  if 'STAGE1' in config:  # the fixtures only the cells that use them build
    config = config.replace('STAGE1', request.getfixturevalue('semantic_stage1'))
  if 'MAPS' in options:
    maps = request.getfixturevalue('focus_maps')[1]
    options = [f'--config.dataset.mask_source=focus --config.dataset.focus_maps={maps}'
               if o == 'MAPS' else o for o in options]
  options = ' '.join(options).split()
  return [sys.executable, '-m', 'fjax.main', f'--config={config}', f'--workdir={workdir}',
          *args, *options]


@pytest.fixture(scope='session')
def straight_run(request, data_dir, tmp_path_factory):
  """cell -> the workdir of that fault-matrix cell's straight run (STRAIGHT_ARGS), made
  once per pytest run: the matrix's reference, and the trained run of tests that need
  one of that model (shared, treat as read-only)."""
  def get(cell: str) -> str:
    def make(root):
      env = dict(os.environ, TFDS_DATA_DIR=data_dir, JAX_PLATFORMS='cpu')
      proc = subprocess.run(fault_command(request, cell, os.path.join(root, 'run'),
                                          STRAIGHT_ARGS),
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
      assert proc.returncode == 0, proc.stderr[-3000:]
    return os.path.join(shared(tmp_path_factory, f'straight-{cell}', make), 'run')
  return get


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
  """With FJAX_TEST_CPU=FILE, appends each test's CPU seconds (this process and the
  subprocesses it waited for, setup included) to FILE: a load-independent cost per test,
  for the suite's time report in WORKSPACE.md."""
  path = os.environ.get('FJAX_TEST_CPU')
  if not path:
    yield
    return
  import resource  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  cpu = lambda: sum(resource.getrusage(w).ru_utime + resource.getrusage(w).ru_stime
                    for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
  start, wall = cpu(), time.time()
  yield
  with open(path, 'a') as f:
    f.write(f'{cpu() - start:8.1f} {time.time() - wall:8.1f} {item.nodeid}\n')
