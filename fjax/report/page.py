"""The HTML of the report: plain tables and <img> tags of the PNGs beside it, one small
style sheet, no script. Numbers are written with 4 decimals."""
from __future__ import annotations

import html

import numpy as np
from matplotlib import colors

from fjax.report import figures

STYLE = """body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ccc;
padding:3px 8px;font-size:13px;text-align:right}th{background:#f2f2f2}
td:first-child,th:first-child{text-align:left;white-space:nowrap}.sw{display:inline-block;width:12px;
height:12px;margin-right:6px;vertical-align:middle}img{max-width:100%;margin:4px 0}
.gallery{display:flex;flex-wrap:wrap;gap:12px}.face{font-size:12px;max-width:560px}
h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:32px}"""
# Metric columns read from metrics.jsonl's test record (or the eval table's row) of a run.
RECORD_COLUMNS = ('acc', 'ap', 'video_acc', 'video_ap', 'pixel_auc', 'pixel_auc_fakes',
                  'iou', 'miou', 'f1_per_image', 'iou_per_image')
LOCALISATION = ('pixel_auc', 'pixel_auc_fakes', 'pixel_auc_painted', 'iou', 'miou', 'f1',
                'mf1', 'f1_per_image', 'iou_per_image', 'iou_all_fake', 'miou_all_fake')


def esc(x) -> str:
  return html.escape(str(x))


def num(v) -> str:
  if v is None:
    return ''
  if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
    return str(v)
  return 'n/a' if not np.isfinite(v) else f'{float(v):.4f}'


def swatch(k: int) -> str:
  return f'<span class="sw" style="background:{colors.to_hex(figures.colour(k))}"></span>'


def table(head, rows) -> str:
  out = ['<table><tr>' + ''.join(f'<th>{esc(h)}</th>' for h in head) + '</tr>']
  out += ['<tr>' + ''.join(f'<td>{c}</td>' for c in r) + '</tr>' for r in rows]
  return '\n'.join(out) + '</table>'


def img(src: str, alt: str) -> str:
  return f'<img src="{esc(src)}" alt="{esc(alt)}">'


def runs_table(runs) -> str:
  rows = []
  for k, r in enumerate(runs):
    c, t = r.config, r.test
    trained = max([rec['step'] for rec in r.records if rec.get('split') == 'train'],
                  default=None)
    checkpoint = t.get('checkpoint_step', t.get('step'))
    rows.append([swatch(k) + esc(r.name), esc(r.model), esc(r.preset),
                 esc(c.dataset.name), num(c.total_steps), num(trained),
                 f'{esc(c.test_checkpoint)}: step {num(int(checkpoint))}'
                 if checkpoint is not None else esc(c.test_checkpoint),
                 f'<code>{esc(r.workdir)}</code>'])
  return table(('run', 'model', 'preset (config.json against the model\'s presets)',
                'data set', 'total_steps', 'last train step', 'test checkpoint', 'workdir'),
               rows)


def detection_table(entries) -> str:
  """entries: (run index, run name, levels, record); the AUC/EER recomputed from scores/
  beside the run's recorded metrics."""
  head = ('run', 'AUC', 'EER', 'video AUC', 'video EER', 'faces/frames', 'videos',
          *RECORD_COLUMNS)
  rows = [[swatch(k) + esc(name), num(lv['frame'].auc), num(lv['frame'].eer),
           num(lv['video'].auc), num(lv['video'].eer), num(lv['frame'].count),
           num(lv['video'].count), *(num(rec.get(c)) for c in RECORD_COLUMNS)]
          for k, name, lv, rec in entries]
  return table(head, rows)


def eval_tables(runs) -> str:
  from fjax import eval_table  # pylint: disable=g-import-not-at-top
  rows = []
  for k, r in enumerate(runs):
    if r.eval_table:
      for name, m in {**r.eval_table['datasets'], 'mean': r.eval_table['mean']}.items():
        rows.append([swatch(k) + esc(r.name), num(r.eval_table.get('step')), esc(name),
                     *(num(m.get(c)) for c in eval_table.COLUMNS)])
  return table(('run', 'checkpoint step', 'data set', *eval_table.COLUMNS), rows) if rows else ''


def gallery(k: int, run, g: dict) -> str:
  loc = {c: run.test[c] for c in LOCALISATION if c in run.test}
  parts = [f'<h3>{swatch(k)}{esc(run.name)} ({esc(run.model)}; map: {esc(g["map"])})</h3>']
  if loc:
    parts.append('<p>localisation on the test split (metrics.jsonl):</p>' +
                 table(tuple(loc), [[num(v) for v in loc.values()]]))
  for what in ('correct', 'wrong'):
    faces = g[what]
    parts.append(f'<p><b>most confident {what}</b> ({len(faces)} shown)</p>')
    if not faces:
      parts.append('<p>none in the test split</p>')
      continue
    cells = []
    for f in faces:
      row, fig = f['row'], f['figures']
      text = ', '.join(f'{key} {num(v)}' for key, v in fig.items())
      cells.append(f'<div class="face">{img(f["png"], what)}<br>video {esc(row["video_id"])}'
                   f' frame {row["frame"]} face {row["face"]}: label {row["label"]}, score '
                   f'{num(row["score"])}{"; " + esc(text) if text else ""}</div>')
    parts.append('<div class="gallery">' + ''.join(cells) + '</div>')
  return '\n'.join(parts)


def document(title: str, body: list[str]) -> str:
  return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{esc(title)}</title>'
          f'<style>{STYLE}</style></head><body>\n<h1>{esc(title)}</h1>\n' + '\n'.join(body)
          + '\n</body></html>\n')
