"""One command-line convention (fjax/util/cli.py): every entry point answers --help with
its own usage text and exit status 0, run as a user would (a fresh process); installed
with `pip install -e .`, the console scripts do the same from any directory; a run's log
holds no library chatter (TFDS, JAX's TPU probe)."""
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig

import pytest

from conftest import ROOT, TEST_CONFIG, run_cli
from fjax.predict.__main__ import gather_inputs

# module -> (a line of its usage text, flags its --help lists)
ENTRY_POINTS = {
    'fjax.main': ('python -m fjax.main --config=... --workdir=... --mode=summary',
                  ('config', 'workdir', 'mode', 'split', 'datasets')),
    'fjax.predict': ('python -m fjax.predict --workdir=DIR --input face.jpg clip.mp4',
                     ('workdir', 'input', 'split', 'output', 'frames', 'batch_size',
                      'overwrite', 'cam', 'cam_batch', 'limit')),
    'fjax.bench': ('python -m fjax.bench --backbones [--archs=resnet50,...]',
                   ('config', 'steps', 'backbones', 'input', 'plan', 'devices')),
    'fjax.focus_maps': ('python -m fjax.focus_maps --workdir=FOCUS_RUN --output=OUT',
                        ('workdir', 'output', 'splits', 'unlabeled', 'map', 'cam_batch')),
    'fjax.compare_maps': ('python -m fjax.compare_maps runs/eval_focus runs/eval_ssim', ()),
    'fjax.weights': ('python -m fjax.weights convert --arch resnet50 --input',
                     ('arch', 'model', 'input', 'output', 'head', 'image_size', 'preset')),
    'fjax.report': ('python -m fjax.report --workdir=DIR [--workdir=DIR2 ...] --output=OUT',
                    ('workdir', 'output', 'faces', 'cam', 'title')),
    'data_builders.build': ('python -m data_builders.build demo_forgeries [--config tiny]',
                            ('config', 'data_dir', 'manual_dir', 'num_processes',
                             'beam_runner')),
}
SCRIPTS = {'fjax': 'fjax.main', 'fjax-predict': 'fjax.predict', 'fjax-bench': 'fjax.bench',
           'fjax-focus-maps': 'fjax.focus_maps', 'fjax-compare-maps': 'fjax.compare_maps',
           'fjax-weights': 'fjax.weights', 'fjax-build': 'data_builders.build',
           'fjax-report': 'fjax.report'}
TARGETS = {'fjax': 'fjax.main:entry', 'fjax-predict': 'fjax.predict.__main__:entry',
           'fjax-bench': 'fjax.bench:entry', 'fjax-focus-maps': 'fjax.focus_maps:entry',
           'fjax-compare-maps': 'fjax.compare_maps:entry',
           'fjax-weights': 'fjax.weights.__main__:entry',
           'fjax-build': 'data_builders.build:entry', 'fjax-report': 'fjax.report.__main__:entry'}


def _check_help(proc: subprocess.CompletedProcess, module: str):
  usage, flag_names = ENTRY_POINTS[module]
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert 'Traceback' not in proc.stderr, proc.stderr[-2000:]
  assert usage in proc.stdout, proc.stdout[:2000]
  for name in flag_names:
    assert re.search(rf'^\s+--(\[no\])?{name}:', proc.stdout, re.M), (name, proc.stdout)


@pytest.mark.parametrize('module', sorted(ENTRY_POINTS))
def test_every_entry_point_answers_help(module):
  _check_help(run_cli(module, '--help', check=False), module)
  if module in ('fjax.weights', 'data_builders.build'):  # also after a sub-command / name
    _check_help(run_cli(module, 'import' if module == 'fjax.weights' else 'celeb_df', '-h',
                        check=False), module)


def _installed():
  """The installed fjax distribution (its direct_url.json says where from), not the
  fjax.egg-info that building it leaves in the checkout (found first from the root)."""
  dists = [d for d in importlib.metadata.distributions(name='fjax')
           if d.read_text('direct_url.json')]
  return dists[0] if dists else None


def test_console_scripts(tmp_path):
  """CI installs with `pip install -e .`: then every console script must exist, answer
  --help and run a command from another directory (the configs found in the package)."""
  dist = _installed()
  if dist is None:
    pytest.skip('fjax is not installed in this environment (pip install -e .)')
  url = json.loads(dist.read_text('direct_url.json')).get('url', '')
  assert url.rstrip('/') == 'file://' + ROOT, f'fjax is installed from {url}, not {ROOT}'
  scripts = {ep.name: ep.value for ep in dist.entry_points if ep.group == 'console_scripts'}
  assert scripts == TARGETS
  bindir = sysconfig.get_path('scripts')
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  for script, module in SCRIPTS.items():
    path = shutil.which(script, path=bindir) or shutil.which(script)
    assert path, f'{script} is not installed in {bindir}'
    proc = subprocess.run([path, '--help'], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    _check_help(proc, module)
  workdir = tmp_path / 'summary'
  proc = subprocess.run([shutil.which('fjax', path=bindir) or 'fjax', f'--config={TEST_CONFIG}',
                         f'--workdir={workdir}', '--mode=summary'], cwd=tmp_path, env=env,
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert (workdir / 'summary.json').exists()


def test_predict_reads_several_paths_after_one_input_flag():
  assert gather_inputs(['p', '--workdir', 'W', '--input', 'a.jpg', 'b c.mp4', '--output',
                        'O', '--frames', '2']) == [
      'p', '--workdir', 'W', '--input=a.jpg', '--input=b c.mp4', '--output', 'O',
      '--frames', '2']
  assert gather_inputs(['p', '--input=a', 'b', '--input', 'c', '-input=d']) == [
      'p', '--input=a', '--input=b', '--input=c', '--input=d']
  assert gather_inputs(['p', '--input', '--output=O']) == ['p', '--input', '--output=O']
  assert gather_inputs(['p', '--', '--input', 'a']) == ['p', '--', '--input', 'a']


OWN_FILES = {f for d in ('fjax', 'data_builders') for _, _, fs in os.walk(os.path.join(ROOT, d))
             for f in fs if f.endswith('.py')}


def library_log_lines(stderr: str) -> list[str]:
  """absl-format log lines (`I1129 22:41:31.64 123 file.py:394] ...`) of files that are
  not fjax's or data_builders' own, and any line of JAX's TPU probe."""
  lines = stderr.replace('\r', '\n').splitlines()
  found = [l for l in lines if 'libtpu' in l or 'Unable to initialize backend' in l]
  for line in lines:
    m = re.search(r'[IWEF]\d{4} [\d:.]+\s+\d+ ([\w.-]+\.py):\d+\]', line)
    if m and m.group(1) not in OWN_FILES:
      found.append(line)
  return found


def test_a_run_logs_no_library_chatter(data_dir, tmp_path):
  """A short training run with the platform left for JAX to probe (no TPU here: the probe
  fails quietly) prints no TFDS, grain or orbax log line and no TPU probe line."""
  proc = run_cli('fjax.main', f'--config={TEST_CONFIG}', f'--workdir={tmp_path / "run"}',
                 '--config.total_steps=2', data_dir=data_dir, env={'JAX_PLATFORMS': ''})
  assert not library_log_lines(proc.stderr), library_log_lines(proc.stderr)
  assert 'paper table metrics' in proc.stderr  # the run's own output is still there
  assert re.search(r'writers\.py:\d+\] \[test\] step 2: acc=', proc.stderr), proc.stderr[-2000:]


def test_the_event_writer_loads_without_torch(tmp_path):
  """tensorboardX is imported with torch hidden (~2 s of every run's start-up where torch is
  installed, as here): the writer writes its event file, torch stays unimported, and an
  `import torch` afterwards still works."""
  code = ('import importlib.util, sys\n'
          'from fjax.trainer import writers\n'
          'w = writers.summary_writer_class()(sys.argv[1])\n'
          'w.add_scalar("test/auc", 0.5, 1)\n'
          'w.close()\n'
          'assert "torch" not in sys.modules, "torch was imported"\n'
          'if importlib.util.find_spec("torch"):\n'
          '  import torch\n')
  proc = subprocess.run([sys.executable, '-c', code, str(tmp_path)], cwd=ROOT,
                        capture_output=True, text=True, env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert [f for f in os.listdir(tmp_path) if f.startswith('events.out.tfevents')]
