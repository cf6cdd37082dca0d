"""Evaluation protocols (issue 17): face -> frame -> video rules, faceless frames."""
from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics as skm

from fjax import metrics


def _sbi_video_scores(rows, faceless):
  """SBI's inference written out with dicts: per video, per frame the highest face score,
  the video's score the mean over its frames; a video without any face scores 0.5."""
  per_video = {}
  for vid, frame, label, score in rows:
    per_video.setdefault(vid, [label, {}])
    per_video[vid][0] |= label
    per_video[vid][1][frame] = max(per_video[vid][1].get(frame, -1.0), score)
  for vid, _, label in faceless:
    per_video.setdefault(vid, [label, {}])
  return {vid: (label, np.mean(list(frames.values())) if frames else 0.5)
          for vid, (label, frames) in per_video.items()}


def _random_rows(seed):
  rng = np.random.default_rng(seed)
  rows = []
  for vid in range(12):
    label = vid % 2
    for frame in rng.choice(40, size=rng.integers(1, 6), replace=False):
      for _ in range(rng.integers(1, 4)):  # 1-3 faces in the frame
        rows.append((vid, int(frame), label, float(rng.random())))
  faceless = [(vid, int(f), vid % 2) for vid in range(12) for f in (40, 41)
              if rng.random() < 0.4] + [(12, 0, 1), (12, 5, 1), (13, 3, 0)]  # no face at all
  return rows, faceless


@pytest.mark.parametrize('seed', [0, 1])
def test_frame_max_rule_matches_sbis_procedure(seed):
  rows, faceless = _random_rows(seed)
  v, f, y, s = (np.array(c) for c in zip(*rows))
  nv, nf, ny = (np.array(c) for c in zip(*faceless))
  out = metrics.detection_metrics(v, f, y, s, 'mean_frame_max', 'skip', (nv, nf, ny))
  expected = _sbi_video_scores(rows, faceless)
  vl, vs = zip(*(expected[k] for k in sorted(expected)))
  assert out['video_auc'] == pytest.approx(skm.roc_auc_score(vl, vs), abs=1e-12)
  assert out['video_ap'] == pytest.approx(skm.average_precision_score(vl, vs), abs=1e-12)
  frames = {}
  for vid, frame, label, score in rows:
    old = frames.get((vid, frame), (0, -1.0))
    frames[(vid, frame)] = (old[0] | label, max(old[1], score))
  fl, fs = zip(*frames.values())
  assert out['auc'] == pytest.approx(skm.roc_auc_score(fl, fs), abs=1e-12)
  assert out['acc'] == pytest.approx(skm.accuracy_score(fl, np.array(fs) > 0.5))


def test_mean_faces_and_half_score_for_faceless_frames():
  rows, faceless = _random_rows(2)
  v, f, y, s = (np.array(c) for c in zip(*rows))
  nv, nf, ny = (np.array(c) for c in zip(*faceless))
  out = metrics.detection_metrics(v, f, y, s, 'mean_faces', 'half', (nv, nf, ny))
  all_rows = rows + [(vid, frame, label, 0.5) for vid, frame, label in faceless]
  assert out['auc'] == pytest.approx(
      skm.roc_auc_score([r[2] for r in all_rows], [r[3] for r in all_rows]), abs=1e-12)
  per_video = {}
  for vid, _, label, score in all_rows:
    per_video.setdefault(vid, (label, []))[1].append(score)
  keys = sorted(per_video)
  assert out['video_auc'] == pytest.approx(skm.roc_auc_score(
      [per_video[k][0] for k in keys], [np.mean(per_video[k][1]) for k in keys]), abs=1e-12)
  # Without faceless frames and with one face per frame the two rules agree.
  one = {(r[0], r[1]): r for r in rows}.values()
  v, f, y, s = (np.array(c) for c in zip(*one))
  a = metrics.detection_metrics(v, f, y, s, 'mean_faces')
  b = metrics.detection_metrics(v, f, y, s, 'mean_frame_max')
  assert a == pytest.approx(b)
  with pytest.raises(ValueError):
    metrics.detection_metrics(v, f, y, s, 'median')
