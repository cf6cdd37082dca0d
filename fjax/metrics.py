"""Exact detection and localisation metrics (NumPy; checked against scikit-learn).

Image level: ACC at 0.5, AUC, EER, AP, on frames and on videos (a video's score is the
mean of its frames' scores). Pixel level: one 2x2 confusion matrix accumulated over every
pixel of every test image, real images included; IoU and F1 of the fake class, and their
means over the two classes (mIoU, mean F1).
"""
from __future__ import annotations

import numpy as np


def _roc(labels: np.ndarray, scores: np.ndarray):
  """FPR and TPR at every distinct threshold, highest first, starting from (0, 0)."""
  order = np.argsort(-scores, kind='mergesort')
  s, y = scores[order], labels[order]
  last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # end of each tie group
  tp = np.cumsum(y)[last]
  fp = (last + 1) - tp
  return np.r_[0, fp] / max(fp[-1], 1), np.r_[0, tp] / max(tp[-1], 1), tp, fp


def auc(labels, scores) -> float:
  labels, scores = np.asarray(labels, bool), np.asarray(scores, np.float64)
  if labels.all() or not labels.any():
    return float('nan')
  fpr, tpr, _, _ = _roc(labels, scores)
  return float(np.trapezoid(tpr, fpr))


def auc_from_counts(neg, pos) -> float:
  """AUC from the number of negatives and positives at each of a set of ordered score
  levels (ties count half, as `auc`): exact for quantised scores, in constant memory."""
  neg, pos = np.asarray(neg, np.float64), np.asarray(pos, np.float64)
  if not pos.sum() or not neg.sum():
    return float('nan')
  below = np.cumsum(neg) - neg                     # negatives strictly below each level
  return float((pos * (below + 0.5 * neg)).sum() / (pos.sum() * neg.sum()))


def eer(labels, scores) -> float:
  """Equal error rate: where FPR = 1 - TPR on the ROC polyline (linear interpolation)."""
  labels, scores = np.asarray(labels, bool), np.asarray(scores, np.float64)
  if labels.all() or not labels.any():
    return float('nan')
  fpr, tpr, _, _ = _roc(labels, scores)
  fnr = 1 - tpr
  i = int(np.nonzero(fnr - fpr <= 0)[0][0])  # first ROC point past the crossing
  if i == 0:
    return float(fpr[0])
  d0, d1 = fnr[i - 1] - fpr[i - 1], fnr[i] - fpr[i]
  t = d0 / (d0 - d1) if d0 != d1 else 0.0
  return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def average_precision(labels, scores) -> float:
  """AP as the step-wise sum of precision increments (scikit-learn's definition)."""
  labels, scores = np.asarray(labels, bool), np.asarray(scores, np.float64)
  if not labels.any():
    return float('nan')
  _, tpr, tp, fp = _roc(labels, scores)
  precision = tp / (tp + fp)
  return float(np.sum(np.diff(tpr) * precision))


def accuracy(labels, scores, threshold: float = 0.5) -> float:
  labels, scores = np.asarray(labels, bool), np.asarray(scores)
  return float(np.mean((scores > threshold) == labels)) if labels.size else float('nan')


def image_metrics(labels, scores, prefix: str = '') -> dict[str, float]:
  return {f'{prefix}acc': accuracy(labels, scores), f'{prefix}auc': auc(labels, scores),
          f'{prefix}eer': eer(labels, scores),
          f'{prefix}ap': average_precision(labels, scores)}


def video_level(video_ids, labels, scores):
  """Per-video (label, mean score); a video's label is the max of its frames' labels."""
  ids, inverse = np.unique(np.asarray(video_ids), return_inverse=True)
  counts = np.bincount(inverse, minlength=len(ids))
  mean = np.bincount(inverse, weights=np.asarray(scores, np.float64), minlength=len(ids))
  vlabels = np.zeros(len(ids), bool)
  np.logical_or.at(vlabels, inverse, np.asarray(labels, bool))
  return vlabels, mean / counts


# How faces become frame and video scores (config `evaluation.video_score`):
# 'mean_faces': every face is a row, a video's score is the mean over its faces;
# 'mean_frame_max': a frame's score is its highest face score and a video's the mean over
# its frames (SBI's inference rule: one fake face makes the frame fake).
VIDEO_SCORES = ('mean_faces', 'mean_frame_max')
# Sampled frames where no face was found (`evaluation.faceless`): 'skip' leaves them out,
# and a video without any face gets 0.5 (SBI's inference); 'half' scores each one 0.5.
FACELESS = ('skip', 'half')


def frame_level(video_ids, frames, labels, scores):
  """Rows of faces -> rows of frames: (video id, frame, label = any face fake, score =
  the highest face score), one per distinct (video id, frame)."""
  keys = np.stack([np.asarray(video_ids, np.int64), np.asarray(frames, np.int64)], 1)
  uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
  inverse = inverse.reshape(-1)
  best = np.full(len(uniq), -np.inf)
  np.maximum.at(best, inverse, np.asarray(scores, np.float64))
  flabels = np.zeros(len(uniq), bool)
  np.logical_or.at(flabels, inverse, np.asarray(labels, bool))
  return uniq[:, 0], uniq[:, 1], flabels, best


def detection_metrics(video_ids, frames, labels, scores, video_score: str = 'mean_faces',
                      faceless: str = 'skip', faceless_rows=None) -> dict[str, float]:
  """Frame and video ACC/AUC/EER/AP under one evaluation protocol. Rows are faces
  (`video_ids`, `frames`, `labels`, `scores`); `faceless_rows` = (video ids, frames,
  labels) of the sampled frames in which no face was found."""
  if video_score not in VIDEO_SCORES or faceless not in FACELESS:
    raise ValueError(f'video_score {video_score!r} / faceless {faceless!r}: use one of '
                     f'{VIDEO_SCORES} / {FACELESS}')
  v, f = np.asarray(video_ids, np.int64), np.asarray(frames, np.int64)
  y, s = np.asarray(labels, bool), np.asarray(scores, np.float64)
  if video_score == 'mean_frame_max':
    v, f, y, s = frame_level(v, f, y, s)
  nv, nf, ny = (np.zeros(0, np.int64),) * 2 + (np.zeros(0, bool),)
  if faceless_rows is not None:
    nv, nf, ny = (np.asarray(a) for a in faceless_rows)
  if faceless == 'half':  # each faceless frame is a frame scored 0.5
    v, f, y = np.r_[v, nv], np.r_[f, nf], np.r_[y, ny.astype(bool)]
    s = np.r_[s, np.full(len(nv), 0.5)]
  out = image_metrics(y, s)
  if faceless == 'skip':  # a video with no face at all: 0.5 at video level only
    empty = ~np.isin(nv, v)
    ev, first = np.unique(nv[empty], return_index=True)
    v, y = np.r_[v, ev], np.r_[y, ny[empty][first].astype(bool)]
    s = np.r_[s, np.full(len(ev), 0.5)]
  out.update(image_metrics(*video_level(v, y, s), prefix='video_'))
  return out


def confusion(pred_maps, true_masks, threshold: float = 0.5) -> np.ndarray:
  """2x2 pixel confusion matrix [true, predicted] of maps thresholded at `threshold`."""
  p = (np.asarray(pred_maps) > threshold).ravel()
  t = (np.asarray(true_masks) > 0.5).ravel()
  return np.bincount(2 * t.astype(np.int64) + p, minlength=4).reshape(2, 2)


def pixel_metrics(cm: np.ndarray) -> dict[str, float]:
  cm = cm.astype(np.float64)
  tp = np.diag(cm)
  fp, fn = cm.sum(0) - tp, cm.sum(1) - tp
  with np.errstate(invalid='ignore', divide='ignore'):
    iou = tp / (tp + fp + fn)
    f1 = 2 * tp / (2 * tp + fp + fn)
  return {'iou': float(iou[1]), 'miou': float(np.nanmean(iou)),
          'f1': float(f1[1]), 'mf1': float(np.nanmean(f1))}


def per_class_recall(labels, preds, names) -> dict[str, float]:
  """Recall of each class (NaN where a class has no example) and their mean."""
  labels, preds = np.asarray(labels), np.asarray(preds)
  out = {}
  for k, name in enumerate(names):
    has = labels == k
    out[f'recall_{name}'] = float((preds[has] == k).mean()) if has.any() else float('nan')
  out['mean_recall'] = float(np.nanmean(list(out.values()))) if out else float('nan')
  return out


def per_method_auc(labels, scores, methods) -> dict[str, float]:
  """`auc_<method>`: AUC of the real faces against the fakes of each method alone."""
  labels, scores, methods = np.asarray(labels, bool), np.asarray(scores), np.asarray(methods)
  return {f'auc_{m}': auc(labels[~labels | (methods == m)], scores[~labels | (methods == m)])
          for m in sorted(set(methods[labels].tolist()))}


def trivial_baselines(cm: np.ndarray) -> dict[str, float]:
  """Pixel metrics an all-real and an all-fake map would get on the same pixels: the
  floor any localisation result is compared with."""
  cm = np.asarray(cm, np.float64).reshape(2, 2)
  real, fake = cm[0].sum(), cm[1].sum()
  out = {}
  for name, pred in (('all_real', 0), ('all_fake', 1)):
    trivial = np.zeros((2, 2))
    trivial[:, pred] = (real, fake)
    out.update({f'{k}_{name}': v for k, v in pixel_metrics(trivial).items()
                if k in ('iou', 'miou')})
  return out


def all_metrics(labels, scores, video_ids=None, cm=None) -> dict[str, float]:
  """Frame metrics, video metrics (if ids are given) and pixel metrics (if cm is)."""
  out = image_metrics(labels, scores)
  if video_ids is not None:
    out.update(image_metrics(*video_level(video_ids, labels, scores), prefix='video_'))
  if cm is not None:
    out.update(pixel_metrics(cm))
    out.update(trivial_baselines(cm))
  return out
