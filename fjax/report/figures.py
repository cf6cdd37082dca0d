"""The report's plots (matplotlib, Agg: PNG files, no display). Every run keeps one colour
on every figure; runs on the same data set share axes."""
from __future__ import annotations

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from fjax.report import curves  # pylint: disable=g-import-not-at-top,wrong-import-position

DPI = 100
# Metrics of the validation records drawn against the step, when a run has them.
VALIDATION = ('auc', 'video_auc', 'pixel_auc', 'iou')


def colour(index: int):
  return plt.get_cmap('tab10')(index % 10)


def _save(fig, path: str) -> None:
  fig.tight_layout()
  fig.savefig(path, dpi=DPI)
  plt.close(fig)


def roc(entries, path: str) -> None:
  """entries: (run name, colour index, {'frame': Level, 'video': Level}); frame and video
  ROC side by side, each curve labelled with its AUC and its EER point marked."""
  fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
  for ax, name in zip(axes, ('frame', 'video')):
    ax.plot([0, 1], [0, 1], color='0.7', lw=0.8, ls=':')
    ax.plot([0, 1], [1, 0], color='0.85', lw=0.8, ls='--')  # FPR = 1 - TPR: the EER line
    for run, k, levels in entries:
      lv = levels[name]
      ax.plot(lv.fpr, lv.tpr, color=colour(k), lw=1.6,
              label=f'{run}: AUC {lv.auc:.4f}, EER {lv.eer:.4f}')
      ax.plot(*curves.eer_point(lv), 'o', color=colour(k), ms=5)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel='false positive rate',
           ylabel='true positive rate', title=f'{name} level')
    ax.legend(loc='lower right', fontsize=7)
  _save(fig, path)


def method_bars(entries, path: str) -> None:
  """entries: (run name, colour index, {auc_<method>: AUC}); grouped bars per method."""
  methods = sorted({m for _, _, d in entries for m in d})
  width = 0.8 / max(len(entries), 1)
  fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(methods) + 2), 3.6))
  for i, (run, k, d) in enumerate(entries):
    x = np.arange(len(methods)) + (i - (len(entries) - 1) / 2) * width
    values = [d.get(m, np.nan) for m in methods]
    bars = ax.bar(x, values, width, color=colour(k), label=run)
    ax.bar_label(bars, labels=[f'{v:.3f}' for v in values], fontsize=6, rotation=90,
                 padding=2)
  ax.axhline(0.5, color='0.6', lw=0.8, ls=':')
  ax.set_xticks(np.arange(len(methods)), [m.removeprefix('auc_') for m in methods])
  ax.set(ylim=(0, 1.4), yticks=np.linspace(0, 1, 6), ylabel='AUC (reals vs the method)',
         title='AUC per method (on the rows of AUC)')
  ax.legend(fontsize=7, loc='upper left', ncol=min(len(entries), 5))
  _save(fig, path)


def robustness(entries, path: str) -> None:
  """entries: (run name, colour index, robustness.json); one panel per perturbation,
  AUC against level 1..5, a line per run."""
  kinds = sorted({kind for _, _, t in entries for kind in t})
  cols = min(4, len(kinds))
  rows = -(-len(kinds) // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
  for ax, kind in zip(axes.flat, kinds):
    for run, k, table in entries:
      if kind in table:
        ax.plot(range(1, 6), table[kind]['auc_per_level'], 'o-', color=colour(k), ms=3,
                label=f'{run} (mean {table[kind]["mean_auc"]:.3f})')
    ax.set(title=kind.replace('_', ' '), xlabel='level', ylabel='AUC', xticks=range(1, 6))
    ax.legend(fontsize=6)
  for ax in list(axes.flat)[len(kinds):]:
    ax.axis('off')
  _save(fig, path)


def _series(records, split: str, key: str):
  pts = [(r['step'], r[key]) for r in records if r.get('split') == split and key in r
         and r[key] is not None and np.isfinite(r[key])]
  return ([p[0] for p in pts], [p[1] for p in pts]) if pts else None


def training(entries, path: str) -> None:
  """entries: (run name, colour index, metrics.jsonl records); the training loss and the
  validation metrics against the step, one line per run."""
  panels = [('train', 'loss')] + [('validation', k) for k in VALIDATION]
  panels = [p for p in panels if any(_series(r, *p) for _, _, r in entries)]
  fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3), squeeze=False)
  for ax, (split, key) in zip(axes[0], panels):
    for run, k, records in entries:
      s = _series(records, split, key)
      if s:
        ax.plot(*s, 'o-' if len(s[0]) < 8 else '-', color=colour(k), lw=1.2, ms=3, label=run)
    ax.set(title=f'{split} {key}', xlabel='step')
  axes[0][0].legend(fontsize=6)
  _save(fig, path)


def loss_terms(run: str, records, k: int, path: str) -> bool:
  """Every loss term of one run's training records against the step; False if none."""
  terms = sorted({key for r in records if r.get('split') == 'train' for key in r
                  if key.startswith('loss')})
  if not terms:
    return False
  fig, ax = plt.subplots(figsize=(4.6, 3))
  styles = ('-', '--', ':', '-.')
  for i, key in enumerate(terms):
    s = _series(records, 'train', key)
    if s:
      ax.plot(*s, styles[i % 4], marker='o' if len(s[0]) < 8 else None, ms=3, color=colour(k) if key == 'loss' else colour(k + i + 1),
              lw=1.2, label=key)
  positive = all(r[key] > 0 for r in records if r.get('split') == 'train' for key in terms
                 if key in r)
  ax.set(title=f'{run}: loss terms', xlabel='step', yscale='log' if positive else 'linear')
  ax.legend(fontsize=6)
  _save(fig, path)
  return True
