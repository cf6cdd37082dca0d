"""The report of one or more runs: OUT/index.html and its PNGs. Runs that scored the same
data set and split (the same scores/<data set>_<split>.jsonl) share one table and one set
of axes; each data set is a section of its own."""
from __future__ import annotations

import os

from fjax.report import curves, figures, gallery, page, runs as runs_lib
from fjax.util import files
from fjax.util.errors import UserError


def groups(runs) -> dict[str, dict]:
  """scores file stem -> {'label', 'entries': [(k, run, rows, record)]}, in the order the
  runs name them (each run's own test split first)."""
  out = {}
  for k, r in enumerate(runs):
    labels = {r.own_scores: (f'{r.config.dataset.name} ({r.config.dataset.split_test})',
                             r.test)}
    for key, rec in ((r.eval_table or {}).get('datasets') or {}).items():
      name, _, split = key.rpartition('/')
      labels[f'{name.replace("/", "_")}_{split}'] = (f'{name} ({split})', rec)
    for stem in sorted(r.scores, key=lambda s: (s != r.own_scores, s)):
      label, record = labels.get(stem, (stem, {}))
      group = out.setdefault(stem, {'label': label, 'entries': []})
      group['entries'].append((k, r, r.scores[stem], record))
  return out


def section(stem: str, group: dict, output: str) -> list[str]:
  """A data set's table, ROC curves and per-method bars."""
  entries = [(k, r, curves.detection(rows, r.config.evaluation.video_score), rows, rec)
             for k, r, rows, rec in group['entries'] if rows]
  if not entries:
    return []
  body = [f'<h2>{page.esc(group["label"])}</h2>',
          '<p>AUC, EER and the curves are recomputed from each run\'s '
          f'<code>scores/{page.esc(stem)}.jsonl</code> under its evaluation rule; the other '
          'columns are its metrics.jsonl record.</p>',
          page.detection_table([(k, r.name, lv, rec) for k, r, lv, _, rec in entries])]
  figures.roc([(r.name, k, lv) for k, r, lv, _, _ in entries], os.path.join(output, f'roc_{stem}.png'))
  body.append(page.img(f'roc_{stem}.png', f'ROC {stem}'))
  methods = [(r.name, k, curves.per_method(rows, r.config.evaluation.video_score))
             for k, r, _, rows, _ in entries]
  if any(len(m) > 1 for _, _, m in methods):
    figures.method_bars(methods, os.path.join(output, f'methods_{stem}.png'))
    body.append(page.img(f'methods_{stem}.png', f'AUC per method {stem}'))
  return body


def build(workdirs: list[str], output: str, faces: int = 3, cam: str | None = None,
          title: str = 'fjax report') -> str:
  """Writes OUT/index.html and its PNGs; returns the page's path."""
  if not workdirs:
    raise UserError('give at least one --workdir')
  runs = runs_lib.read_runs(workdirs)
  if files.exists(output) and not files.isdir(output):
    raise UserError(f'--output {output} is a file, not a folder')
  files.makedirs(output)
  body = ['<h2>Runs</h2>', page.runs_table(runs)]
  for stem, group in groups(runs).items():
    body += section(stem, group, output)
  cross = page.eval_tables(runs)
  if cross:
    body += ['<h2>Cross-dataset table (eval_table.json)</h2>', cross]
  robust = [(r.name, k, r.robustness) for k, r in enumerate(runs) if r.robustness]
  if robust:
    figures.robustness(robust, os.path.join(output, 'robustness.png'))
    body += ['<h2>Robustness (robustness.json)</h2>', page.img('robustness.png', 'robustness')]
  body += ['<h2>Training (metrics.jsonl)</h2>']
  figures.training([(r.name, k, r.records) for k, r in enumerate(runs)],
                   os.path.join(output, 'training.png'))
  body.append(page.img('training.png', 'training curves'))
  body.append('<div class="gallery">' + ''.join(
      page.img(f'loss_{k}.png', f'loss terms {r.name}') for k, r in enumerate(runs)
      if figures.loss_terms(r.name, r.records, k, os.path.join(output, f'loss_{k}.png')))
              + '</div>')
  if faces:
    body.append('<h2>Gallery: the test split\'s most confident correct and wrong faces</h2>')
    for k, r in enumerate(runs):
      rows = r.scores.get(r.own_scores, [])
      body.append(page.gallery(k, r, gallery.draw(r, rows, output, f'face_{k}', faces, cam)))
  path = os.path.join(output, 'index.html')
  files.write_text(path, page.document(title, body))
  return path
