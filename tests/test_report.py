"""fjax.report: a page of two runs of different models (the session's shared runs), opened
in headless Chromium; one AUC recomputed from scores/ with scikit-learn is on it."""
import json
import os
import re
import shutil
import subprocess

import cv2
import numpy as np
import pytest
from sklearn import metrics as sk

from tests.conftest import error_line, run_cli

CHROMIUM = shutil.which('chromium')
# Appended to a copy of the page (the page itself has no script): once every image has
# settled, the count of images that did not load.
CHECK = ('<script>window.addEventListener("load",()=>{const i=[...document.images];'
         'const d=document.createElement("div");d.id="check";d.textContent="images "+i.length'
         '+" broken "+i.filter(x=>!x.complete||x.naturalWidth===0).length;'
         'document.body.appendChild(d);});</script>')


def reference_frame_auc(path: str) -> float:
  """The frame AUC of a scores file under 'mean_frame_max' (a frame is fake if any face
  is, scored by its highest face score), by an explicit loop and scikit-learn."""
  frames = {}
  with open(path) as f:
    for line in f:
      r = json.loads(line)
      key = (r['method'], r['video_id'], r['frame'])
      label, score = frames.get(key, (0, -1.0))
      frames[key] = (max(label, r['label']), max(score, r['score']))
  labels, scores = zip(*frames.values())
  return sk.roc_auc_score(labels, scores)


def chromium(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run([CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu',
                         '--hide-scrollbars', *args], capture_output=True, text=True,
                        timeout=120, check=True)


@pytest.mark.skipif(CHROMIUM is None, reason='needs chromium (.ci/run installs it)')
def test_report_of_two_runs_in_a_browser(trained_workdir, straight_run, data_dir, tmp_path):
  runs = [trained_workdir, straight_run('local_similarity')]
  out = str(tmp_path / 'report')
  proc = run_cli('fjax.report', *(f'--workdir={w}' for w in runs), f'--output={out}',
                 '--faces=1', data_dir=data_dir)
  assert proc.stdout.strip().endswith(os.path.join(out, 'index.html')), proc.stdout
  with open(os.path.join(out, 'index.html')) as f:
    page = f.read()

  sources = re.findall(r'<img src="([^"]+)"', page)
  # ROC + per-method bars of the shared data set, training curves, two loss figures,
  # and two faces (1 correct, 1 wrong, unless a run got every face right) per run
  assert len(sources) >= 7, sources
  for name in sources:
    picture = cv2.imread(os.path.join(out, name))
    assert picture is not None and picture.std() > 5, name
  assert page.count('<h2>demo_forgeries/tiny (test)</h2>') == 1  # both runs in one section
  assert 'xception_baseline' in page and 'local_similarity' in page

  # the frame AUC the page shows, recomputed from the scores file independently
  with open(os.path.join(trained_workdir, 'config.json')) as f:
    assert json.load(f)['evaluation']['video_score'] == 'mean_frame_max'
  expected = reference_frame_auc(os.path.join(trained_workdir, 'scores',
                                              'demo_forgeries_tiny_test.jsonl'))

  checked = os.path.join(out, 'checked.html')
  with open(checked, 'w') as f:
    f.write(page.replace('</body>', CHECK + '</body>'))
  dom = chromium('--virtual-time-budget=10000', '--dump-dom', f'file://{checked}').stdout
  found = re.search(r'<div id="check">images (\d+) broken (\d+)</div>', dom)
  assert found and found.groups() == (str(len(sources)), '0'), dom[-500:]
  name = re.escape(os.path.basename(trained_workdir))
  row = re.search(rf'<tr><td><span class="sw"[^>]*></span>{name}</td><td>([0-9.]+)</td>', dom)
  assert row and row.group(1) == f'{expected:.4f}', (row and row.group(0), expected)

  shot = str(tmp_path / 'shot.png')
  chromium('--window-size=1200,1600', f'--screenshot={shot}', f'file://{checked}')
  picture = cv2.imread(shot)
  assert picture is not None and picture.shape[:2] == (1600, 1200)
  assert picture.std() > 20 and len(np.unique(picture.reshape(-1, 3), axis=0)) > 200

  # a folder that is not a run: one line, no traceback
  line = error_line(run_cli('fjax.report', f'--workdir={tmp_path}', f'--output={out}',
                            check=False))
  assert 'not an fjax workdir' in line, line
