"""Exact detection and localisation metrics (NumPy; checked against scikit-learn).

Image level: ACC at 0.5, AUC, EER, AP, on frames and on videos (a video's score is the
mean of its frames' scores). Pixel level: one 2x2 confusion matrix accumulated over every
pixel of every test image, real images included; IoU and F1 of the fake class, and their
means over the two classes (mIoU, mean F1), and its MCC. Pixel AUC from a histogram of
the map values of fake-mask and real-mask pixels over PIXEL_BINS bins, summed over the
split (the eval step fills it on device; no map reaches the host); per-image F1 and IoU
from each image's own tp, fp, fn at 0.5, averaged over the fake images. Two more
histograms tell localisation from detection: the fake images' pixels alone
(`pixel_auc_fakes`) and the painted map, each image's score on all its pixels
(`pixel_auc_painted`, the pooled AUC that detection alone reaches).
"""
from __future__ import annotations

import numpy as np

from fjax.util.errors import UserError


def _roc(labels: np.ndarray, scores: np.ndarray):
  """FPR and TPR at every distinct threshold, highest first, starting from (0, 0)."""
  order = np.argsort(-scores, kind='mergesort')
  s, y = scores[order], labels[order]
  last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # end of each tie group
  tp = np.cumsum(y)[last]
  fp = (last + 1) - tp
  return np.r_[0, fp] / max(fp[-1], 1), np.r_[0, tp] / max(tp[-1], 1), tp, fp


def roc(labels, scores) -> tuple[np.ndarray, np.ndarray]:
  """(FPR, TPR) of the ROC polyline `auc` and `eer` are taken on (the report draws it)."""
  fpr, tpr, _, _ = _roc(np.asarray(labels, bool), np.asarray(scores, np.float64))
  return fpr, tpr


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


def check_rules(video_score: str, faceless: str) -> None:
  """The one check of `config.evaluation`: one line when it names a rule that does not
  exist (run.open_run, and every use of the rule: `rule_rows`)."""
  if video_score not in VIDEO_SCORES or faceless not in FACELESS:
    raise UserError(f'evaluation.video_score={video_score!r}, faceless={faceless!r}: '
                    f'use {" | ".join(VIDEO_SCORES)} and {" | ".join(FACELESS)}')


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


def _faceless(faceless_rows):
  """(video ids, labels) of the faceless frames; none when `faceless_rows` is None."""
  if faceless_rows is None:
    return np.zeros(0, np.int64), np.zeros(0, bool)
  return np.asarray(faceless_rows[0], np.int64), np.asarray(faceless_rows[2], bool)


def rule_rows(video_ids, frames, labels, scores, video_score: str, faceless: str,
              faceless_rows=None):
  """(video ids, labels, scores) of the rows frame metrics are taken on under a rule:
  faces ('mean_faces') or frames at their highest face score ('mean_frame_max'), and
  with faceless 'half' each faceless frame as a row scored 0.5. Rows are faces
  (`video_ids`, `frames`, `labels`, `scores`); `faceless_rows` = (video ids, frames,
  labels) of the sampled frames in which no face was found."""
  check_rules(video_score, faceless)
  v, f = np.asarray(video_ids, np.int64), np.asarray(frames, np.int64)
  y, s = np.asarray(labels, bool), np.asarray(scores, np.float64)
  if video_score == 'mean_frame_max' and len(s):
    v, _, y, s = frame_level(v, f, y, s)
  if faceless == 'half':  # each faceless frame is a frame scored 0.5
    nv, ny = _faceless(faceless_rows)
    v, y, s = np.r_[v, nv], np.r_[y, ny], np.r_[s, np.full(len(nv), 0.5)]
  return v, y, s


def video_scores(video_ids, frames, labels, scores, video_score: str = 'mean_faces',
                 faceless: str = 'skip', faceless_rows=None, no_face: float | None = 0.5):
  """Per video, in the order of its id, (label, score) by the evaluation rule: the mean
  over its `rule_rows`. Under faceless 'skip' a video whose sampled frames hold no face
  at all scores `no_face` (SBI's inference: 0.5), or is left out when `no_face` is None."""
  rows = rule_rows(video_ids, frames, labels, scores, video_score, faceless, faceless_rows)
  return _videos(*rows, faceless, faceless_rows, no_face)


def _videos(v, y, s, faceless: str, faceless_rows, no_face: float | None):
  """`video_scores` from the rule's rows (v, y, s)."""
  if faceless == 'skip' and no_face is not None:
    nv, ny = _faceless(faceless_rows)
    empty = ~np.isin(nv, v)
    ev, first = np.unique(nv[empty], return_index=True)
    v, y = np.r_[v, ev], np.r_[y, ny[empty][first]]
    s = np.r_[s, np.full(len(ev), no_face)]
  return video_level(v, y, s)


def detection_metrics(video_ids, frames, labels, scores, video_score: str = 'mean_faces',
                      faceless: str = 'skip', faceless_rows=None) -> dict[str, float]:
  """Frame and video ACC/AUC/EER/AP under one evaluation protocol (`rule_rows` for the
  frames, `video_scores` for the videos)."""
  v, y, s = rule_rows(video_ids, frames, labels, scores, video_score, faceless,
                      faceless_rows)
  out = image_metrics(y, s)
  out.update(image_metrics(*_videos(v, y, s, faceless, faceless_rows, 0.5), prefix='video_'))
  return out


def per_method_metrics(video_ids, frames, labels, scores, methods, video_score='mean_faces',
                       faceless='skip', faceless_rows=None, faceless_methods=()):
  """`auc_<method>` and `video_auc_<method>`: `detection_metrics` of the real rows and one
  method's fakes, so each is taken on the same rows as `auc` and `video_auc` (frames at
  their highest face under 'mean_frame_max', faceless frames under 'half');
  `faceless_methods` names the method of each of `faceless_rows`."""
  labels, methods = np.asarray(labels, bool), np.asarray(methods).astype(str)
  columns = [np.asarray(c) for c in (video_ids, frames, labels, scores)]
  out = {}
  for m in sorted(set(methods[labels].tolist())):
    keep = ~labels | (methods == m)
    rows = None
    if faceless_rows is not None:
      kept = ~np.asarray(faceless_rows[2], bool) | (np.asarray(faceless_methods) == m)
      rows = tuple(np.asarray(c)[kept] for c in faceless_rows)
    one = detection_metrics(*(c[keep] for c in columns), video_score, faceless, rows)
    out[f'auc_{m}'], out[f'video_auc_{m}'] = one['auc'], one['video_auc']
  return out


def confusion(pred_maps, true_masks, threshold: float = 0.5) -> np.ndarray:
  """2x2 pixel confusion matrix [true, predicted] of maps thresholded at `threshold`."""
  p = (np.asarray(pred_maps) > threshold).ravel()
  t = (np.asarray(true_masks) > 0.5).ravel()
  return np.bincount(2 * t.astype(np.int64) + p, minlength=4).reshape(2, 2)


def mcc(cm: np.ndarray) -> float:
  """Matthews correlation of a 2x2 confusion matrix [true, predicted]; 0 where a row or
  a column is empty (scikit-learn's convention)."""
  (tn, fp), (fn, tp) = np.asarray(cm, np.float64).reshape(2, 2)
  den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
  return float((tp * tn - fp * fn) / den) if den else 0.0


def pixel_metrics(cm: np.ndarray) -> dict[str, float]:
  cm = np.asarray(cm, np.float64).reshape(2, 2)
  tp = np.diag(cm)
  fp, fn = cm.sum(0) - tp, cm.sum(1) - tp
  with np.errstate(invalid='ignore', divide='ignore'):
    iou = tp / (tp + fp + fn)
    f1 = 2 * tp / (2 * tp + fp + fn)
  return {'iou': float(iou[1]), 'miou': float(np.nanmean(iou)),
          'f1': float(f1[1]), 'mf1': float(np.nanmean(f1)), 'mcc': mcc(cm)}


# Pixel AUC bins: PIXEL_BINS equal bins of the map's logit log(v / (1 - v)) over
# PIXEL_LOGITS = [-48, 16] (1/256 wide: 1e-3 in probability at 0.5, 0.4% of the odds
# anywhere, so saturated maps, whose pixels crowd near 0 and 1, are still told apart;
# float32 maps end at logit 16.6 above and ~-87 below). The bin that starts just above
# 0.5 is PIXEL_BIN_HALF: the bins from there up hold exactly the pixels predicted fake at
# 0.5, so the 2x2 confusion matrix is a sum over the histogram.
PIXEL_BINS = 16384
PIXEL_LOGITS = (-48.0, 16.0)
_SCALE = PIXEL_BINS / (PIXEL_LOGITS[1] - PIXEL_LOGITS[0])  # bins per unit of logit
PIXEL_BIN_HALF = int(-PIXEL_LOGITS[0] * _SCALE)


def pixel_bins(maps, xp=np):
  """Bin index (int32) of each map value in [0, 1]; `xp` is numpy or jax.numpy (the eval
  step bins on device with the same formula). Bin b holds the logits in
  ((b - PIXEL_BIN_HALF) / s, (b + 1 - PIXEL_BIN_HALF) / s], s = 256 bins per unit, the
  end bins everything beyond; values above 0.5 always land at or above PIXEL_BIN_HALF and
  the others below, whatever the rounding of the logarithms."""
  v = xp.asarray(maps, xp.float32)
  lo, hi = PIXEL_LOGITS
  with np.errstate(divide='ignore', invalid='ignore'):
    t = xp.clip(xp.log(v) - xp.log1p(-v), lo - 1, hi + 1)
    b = xp.nan_to_num(xp.ceil(t * _SCALE), nan=0.0).astype(xp.int32) - 1 + PIXEL_BIN_HALF
  return xp.where(v > 0.5, xp.clip(b, PIXEL_BIN_HALF, PIXEL_BINS - 1),
                  xp.clip(b, 0, PIXEL_BIN_HALF - 1))


def pixel_bin_centres(bins) -> np.ndarray:
  """The map value (float32) at the centre of each bin, in logit."""
  t = (np.asarray(bins, np.float64) - PIXEL_BIN_HALF + 0.5) / _SCALE
  return (1 / (1 + np.exp(-t))).astype(np.float32)


def pixel_histogram(pred_maps, true_masks) -> np.ndarray:
  """[2, PIXEL_BINS] pixel counts per bin: row 0 outside the true masks, row 1 inside
  (masks > 0.5). The host twin of the eval step's on-device histogram."""
  b = pixel_bins(pred_maps).ravel().astype(np.int64)
  t = (np.asarray(true_masks) > 0.5).ravel()
  return np.bincount(b + PIXEL_BINS * t, minlength=2 * PIXEL_BINS).reshape(2, PIXEL_BINS)


def confusion_from_histogram(hist) -> np.ndarray:
  """The 2x2 confusion matrix at 0.5 of a [2, PIXEL_BINS] histogram (exact)."""
  hist = np.asarray(hist, np.int64).reshape(2, PIXEL_BINS)
  return np.stack([hist[:, :PIXEL_BIN_HALF].sum(1), hist[:, PIXEL_BIN_HALF:].sum(1)], 1)


def pixel_auc(hist) -> dict[str, float]:
  """`pixel_auc` of a [2, PIXEL_BINS] histogram (ties within a bin count half) and
  `pixel_auc_bin_error`, the most it can differ from the exact AUC of the unbinned maps:
  only (fake, real) pixel pairs that share a bin can be ordered differently, each by 1/2."""
  neg, pos = np.asarray(hist, np.float64).reshape(2, PIXEL_BINS)
  pairs = pos.sum() * neg.sum()
  return {'pixel_auc': auc_from_counts(neg, pos),
          'pixel_auc_bin_error': float(0.5 * (pos * neg).sum() / pairs) if pairs else float('nan')}


def painted_histogram(scores, true_masks) -> np.ndarray:
  """[2, PIXEL_BINS] pixel counts of the painted map, each image's detection score over
  all its pixels (no localisation): the host twin of the eval step's painted histogram."""
  m = np.broadcast_to(np.asarray(scores, np.float32).reshape(-1, 1, 1),
                      np.shape(true_masks))
  return pixel_histogram(m, true_masks)


def localisation_aucs(hist_fakes, hist_painted) -> dict[str, float]:
  """`pixel_auc_fakes`: the pixel AUC over the fake images' pixels only (does the map
  find the forged region inside a fake face); `pixel_auc_painted`: the pooled pixel AUC
  of the painted map (each image's score on all its pixels), the floor a pooled
  `pixel_auc` reached by detection alone. Both from [2, PIXEL_BINS] histograms."""
  return {'pixel_auc_fakes': pixel_auc(hist_fakes)['pixel_auc'],
          'pixel_auc_painted': pixel_auc(hist_painted)['pixel_auc']}


def per_image_pixel_metrics(counts, labels) -> dict[str, float]:
  """`f1_per_image`, `iou_per_image`: the mean over the fake images (labels > 0) of each
  image's own F1 and IoU of the fake class at 0.5, from its [tp, fp, fn] pixel counts. A
  fake image whose true mask and prediction are both empty scores 1 on both (nothing to
  find, nothing claimed; MVSS-Net's evaluation code and scikit-learn's zero_division=1);
  an empty true mask with a non-empty prediction scores 0. NaN without fakes."""
  counts = np.asarray(counts, np.float64).reshape(-1, 3)[np.asarray(labels) > 0]
  if not len(counts):
    return {'f1_per_image': float('nan'), 'iou_per_image': float('nan')}
  tp, fp, fn = counts.T
  empty = (tp + fp + fn) == 0
  den_f1, den_iou = np.where(empty, 1, 2 * tp + fp + fn), np.where(empty, 1, tp + fp + fn)
  f1 = np.where(empty, 1.0, 2 * tp / den_f1)
  iou = np.where(empty, 1.0, tp / den_iou)
  return {'f1_per_image': float(f1.mean()), 'iou_per_image': float(iou.mean())}


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
  """AUC of the real rows against the fakes of each method alone, on the rows given
  (evaluation's `auc_<method>` are `per_method_metrics`, under the rule)."""
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


def all_metrics(labels, scores, video_ids=None, cm=None, pixel_hist=None,
                pixel_counts=None, pixel_hist_fakes=None,
                pixel_hist_painted=None) -> dict[str, float]:
  """Frame metrics, video metrics (if ids are given) and pixel metrics (if cm or the
  [2, PIXEL_BINS] pixel_hist is: the pooled ones, and pixel AUC from the histogram;
  per-image F1 and IoU of the fakes if pixel_counts, [N, 3] tp, fp, fn per image, is;
  `localisation_aucs` if the fakes' and the painted map's histograms are)."""
  out = image_metrics(labels, scores)
  if video_ids is not None:
    out.update(image_metrics(*video_level(video_ids, labels, scores), prefix='video_'))
  if pixel_hist is not None:
    cm = confusion_from_histogram(pixel_hist) if cm is None else cm
    out.update(pixel_auc(pixel_hist))
  if pixel_hist_fakes is not None and pixel_hist_painted is not None:
    out.update(localisation_aucs(pixel_hist_fakes, pixel_hist_painted))
  if pixel_counts is not None:
    out.update(per_image_pixel_metrics(pixel_counts, labels))
  if cm is not None:
    out.update(pixel_metrics(cm))
    out.update(trivial_baselines(cm))
  return out
