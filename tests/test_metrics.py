"""fjax.trainer.metrics against scikit-learn and explicit loops."""
import numpy as np
import pytest
from sklearn import metrics as skm

from fjax.trainer import metrics


def _cases(seed=0, n_cases=100):
  rng = np.random.default_rng(seed)
  for i in range(n_cases):
    n = int(rng.integers(2, 80))
    labels = rng.integers(0, 2, n)
    if labels.all() or not labels.any():
      labels[0] = 1 - labels[0]
    # Half the cases have many tied scores, as quantised network outputs do.
    scores = rng.integers(0, 6, n) / 5.0 if i % 2 else rng.random(n)
    yield labels, scores


def _sklearn_eer(labels, scores):
  fpr, tpr, _ = skm.roc_curve(labels, scores, drop_intermediate=False)
  fnr = 1 - tpr
  for i in range(1, len(fpr)):  # explicit walk along the ROC polyline
    if fnr[i] - fpr[i] <= 0:
      d0, d1 = fnr[i - 1] - fpr[i - 1], fnr[i] - fpr[i]
      t = d0 / (d0 - d1) if d0 != d1 else 0.0
      return fpr[i - 1] + t * (fpr[i] - fpr[i - 1])
  return fpr[-1]


def test_image_metrics_match_sklearn():
  for labels, scores in _cases():
    assert metrics.auc(labels, scores) == pytest.approx(skm.roc_auc_score(labels, scores),
                                                        abs=1e-12)
    assert metrics.average_precision(labels, scores) == pytest.approx(
        skm.average_precision_score(labels, scores), abs=1e-12)
    assert metrics.accuracy(labels, scores) == pytest.approx(
        skm.accuracy_score(labels, scores > 0.5))
    assert metrics.eer(labels, scores) == pytest.approx(_sklearn_eer(labels, scores),
                                                        abs=1e-12)


def test_eer_known_values():
  assert metrics.eer([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 0.0
  assert metrics.eer([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 1.0
  assert metrics.eer([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == pytest.approx(0.5)


def test_single_class_gives_nan():
  assert np.isnan(metrics.auc([1, 1], [0.2, 0.4]))
  assert np.isnan(metrics.eer([0, 0], [0.2, 0.4]))


def test_video_level_is_mean_of_frames():
  rng = np.random.default_rng(1)
  ids = rng.integers(0, 7, 60)
  labels = (ids % 2).astype(int)
  scores = rng.random(60)
  vlabels, vscores = metrics.video_level(ids, labels, scores)
  expected = {}
  for vid, label, score in zip(ids, labels, scores):
    expected.setdefault(vid, (label, []))[1].append(score)
  for k, vid in enumerate(sorted(expected)):
    assert vlabels[k] == expected[vid][0]
    assert vscores[k] == pytest.approx(np.mean(expected[vid][1]))
  out = metrics.all_metrics(labels, scores, ids)
  assert out['video_auc'] == pytest.approx(skm.roc_auc_score(vlabels, vscores))


def test_pixel_metrics_match_sklearn():
  rng = np.random.default_rng(2)
  pred = rng.random((5, 16, 16))
  true = (rng.random((5, 16, 16)) > 0.7).astype(np.float32)
  true[0] = 0  # a real image: its pixels count too
  cm = metrics.confusion(pred[:3], true[:3]) + metrics.confusion(pred[3:], true[3:])
  got = metrics.pixel_metrics(cm)
  p, t = (pred > 0.5).ravel(), (true > 0.5).ravel()
  np.testing.assert_array_equal(cm, skm.confusion_matrix(t, p))
  assert got['iou'] == pytest.approx(skm.jaccard_score(t, p))
  assert got['miou'] == pytest.approx(skm.jaccard_score(t, p, average='macro'))
  assert got['f1'] == pytest.approx(skm.f1_score(t, p))
  assert got['mf1'] == pytest.approx(skm.f1_score(t, p, average='macro'))
  assert got['mcc'] == pytest.approx(skm.matthews_corrcoef(t, p))


def test_trivial_baselines_match_sklearn_on_constant_maps():
  rng = np.random.default_rng(5)
  true = rng.random(500) < 0.3
  pred = rng.random(500) < 0.5
  cm = skm.confusion_matrix(true, pred, labels=[0, 1])
  got = metrics.trivial_baselines(cm)
  for name, constant in (('all_real', np.zeros(500, bool)), ('all_fake', np.ones(500, bool))):
    per_class = skm.jaccard_score(true, constant, average=None, labels=[0, 1],
                                  zero_division=0)
    assert got[f'iou_{name}'] == pytest.approx(per_class[1])
    assert got[f'miou_{name}'] == pytest.approx(per_class.mean())


def test_per_class_recall_matches_sklearn():
  rng = np.random.default_rng(7)
  labels, preds = rng.integers(0, 4, 200), rng.integers(0, 5, 200)
  got = metrics.per_class_recall(labels, preds, ('a', 'b', 'c', 'd', 'e'))
  ref = skm.recall_score(labels, preds, labels=[0, 1, 2, 3], average=None)
  for k, name in enumerate('abcd'):
    assert got[f'recall_{name}'] == pytest.approx(ref[k])
  assert np.isnan(got['recall_e']) and got['mean_recall'] == pytest.approx(ref.mean())


def test_per_method_auc_matches_sklearn_on_each_subset():
  rng = np.random.default_rng(7)
  methods = rng.choice(['real', 'face_swap', 'self_blend'], 200)
  labels = (methods != 'real').astype(np.int32)
  scores = rng.random(200) + 0.3 * (methods == 'face_swap')
  got = metrics.per_method_auc(labels, scores, methods)
  assert sorted(got) == ['auc_face_swap', 'auc_self_blend']
  for m in ('face_swap', 'self_blend'):
    keep = (methods == 'real') | (methods == m)
    assert got[f'auc_{m}'] == pytest.approx(skm.roc_auc_score(labels[keep], scores[keep]))


def test_auc_from_counts_matches_sklearn_on_quantised_scores():
  rng = np.random.default_rng(3)
  labels = rng.random(500) < 0.3
  levels = rng.integers(0, 12, 500) + 3 * labels  # ties at every level
  neg = np.bincount(levels[~labels], minlength=15)
  pos = np.bincount(levels[labels], minlength=15)
  assert np.isclose(metrics.auc_from_counts(neg, pos), skm.roc_auc_score(labels, levels))
  assert np.isnan(metrics.auc_from_counts(neg, np.zeros(15)))
