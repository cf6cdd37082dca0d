"""Detection figures recomputed from a run's scores file with fjax.trainer.metrics (the one
implementation of AUC, EER and the face -> frame -> video rule): ROC points at frame and
video level, AUC and EER, per-method AUCs."""
from __future__ import annotations

import dataclasses

import numpy as np

from fjax.data import sources
from fjax.trainer import metrics


@dataclasses.dataclass
class Level:
  """One level (frames or videos): its ROC polyline, AUC, EER and rows."""
  fpr: np.ndarray
  tpr: np.ndarray
  auc: float
  eer: float
  count: int


def columns(rows: list[dict]) -> dict[str, np.ndarray]:
  """Scores rows -> columns; video ids as integers (metrics' rule functions take them so)
  keyed by (method, video id), as the split's table keys a video."""
  keys = [sources.video_key(r['method'], r['video_id']) for r in rows]
  _, video = np.unique(np.asarray(keys, str), return_inverse=True)
  return {'video': video.reshape(-1).astype(np.int64),
          'frame': np.asarray([r['frame'] for r in rows], np.int64),
          'label': np.asarray([r['label'] for r in rows], np.int64) > 0,
          'score': np.asarray([r['score'] for r in rows], np.float64),
          'method': np.asarray([r['method'] for r in rows], str)}


def level(labels, scores) -> Level:
  fpr, tpr = metrics.roc(labels, scores)
  return Level(fpr, tpr, metrics.auc(labels, scores), metrics.eer(labels, scores),
               len(labels))


def detection(rows: list[dict], video_score: str) -> dict[str, Level]:
  """{'frame': Level, 'video': Level} of a scores file under the run's
  `evaluation.video_score` (faceless frames are not in scores files: rule 'skip')."""
  c = columns(rows)
  v, y, s = metrics.rule_rows(c['video'], c['frame'], c['label'], c['score'], video_score,
                              'skip')
  vy, vs = metrics.video_scores(c['video'], c['frame'], c['label'], c['score'], video_score,
                                'skip')
  return {'frame': level(y, s), 'video': level(vy, vs)}


def per_method(rows: list[dict], video_score: str) -> dict[str, float]:
  """`auc_<method>` (reals against each method's fakes) on the rows of `auc` under the
  run's rule, as evaluation writes them to metrics.jsonl (metrics.per_method_metrics)."""
  c = columns(rows)
  out = metrics.per_method_metrics(c['video'], c['frame'], c['label'], c['score'],
                                   c['method'], video_score, 'skip')
  return {k: v for k, v in out.items() if k.startswith('auc_')}


def eer_point(lv: Level) -> tuple[float, float]:
  """The ROC point where FPR = EER (on the curve's FPR = 1 - TPR line)."""
  return lv.eer, 1 - lv.eer
