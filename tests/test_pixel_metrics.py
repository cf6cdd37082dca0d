"""Pixel AUC (pooled, over the fakes' pixels, of the painted map), per-image F1/IoU and MCC
against scikit-learn, on the host and through the jitted eval step (padding rows
excluded)."""
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as skm

from fjax.data import examples
from fjax.trainer import evaluate, metrics, sharding

K, HALF = metrics.PIXEL_BINS, metrics.PIXEL_BIN_HALF
# The binned pixel AUC is within `pixel_auc_bin_error` of the exact one; on the maps below
# the measured difference is at most 3e-6 on spread and saturated maps and 3e-5 on maps
# crowded around 0.5 (logit sd 0.2: 100 bins span them).
AUC_TOL = 1e-4


def _sigmoid(x):
  return (1 / (1 + np.exp(-x))).astype(np.float32)


def _maps(kind, shape, rng):
  """Map values of three shapes: spread over [0, 1], saturated near 0 and 1 (confident
  segmentation heads), crowded around 0.5 (CAM-like maps)."""
  if kind == 'uniform':
    return rng.random(shape, np.float32)
  if kind == 'saturated':
    return _sigmoid(rng.normal(-4, 8, shape))
  return _sigmoid(rng.normal(0, 0.2, shape))


def _masks(shape, rng, maps):
  """Masks that agree with the maps more often than chance (AUC well above 0.5)."""
  return (rng.random(shape) < 0.2 + 0.6 * (maps > np.median(maps))).astype(np.float32)


def test_bins_keep_order_and_the_threshold():
  v = np.array([0, 1e-30, 1e-7, 0.25, np.nextafter(np.float32(0.5), np.float32(0)), 0.5,
                np.nextafter(np.float32(0.5), np.float32(1)), 0.75, 1 - 1e-7, 1], np.float32)
  b = metrics.pixel_bins(v)
  assert (np.diff(b) >= 0).all() and b[0] == 0 and b[-1] == K - 1
  assert (b[v > 0.5] >= HALF).all() and (b[v <= 0.5] < HALF).all()
  np.testing.assert_array_equal(np.asarray(metrics.pixel_bins(jnp.asarray(v), jnp)), b)
  rng = np.random.default_rng(0)
  for kind in ('uniform', 'saturated', 'near_half'):
    m = np.r_[_maps(kind, 20000, rng), v]
    t = rng.random(m.size) < 0.3
    np.testing.assert_array_equal(
        metrics.confusion_from_histogram(metrics.pixel_histogram(m, t)),
        metrics.confusion(m, t))
    # host and device binning agree (up to values within rounding of a bin edge)
    assert (np.asarray(metrics.pixel_bins(jnp.asarray(m), jnp)) != metrics.pixel_bins(m)
            ).mean() < 1e-3


def test_pixel_auc_is_exact_on_bin_centres():
  rng = np.random.default_rng(1)
  # bins whose centres float32 tells apart (beyond logit ~9 several bins share one float)
  bins = rng.integers(HALF - 20 * 256, HALF + 9 * 256, 30000)
  centres = metrics.pixel_bin_centres(bins)
  np.testing.assert_array_equal(metrics.pixel_bins(centres), bins)
  t = rng.random(bins.size) < 0.2 + 0.6 * (bins > HALF)
  got = metrics.pixel_auc(metrics.pixel_histogram(centres, t))
  assert got['pixel_auc'] == pytest.approx(skm.roc_auc_score(t, centres), abs=1e-12)


@pytest.mark.parametrize('kind', ['uniform', 'saturated', 'near_half'])
def test_pixel_auc_is_close_on_continuous_maps(kind):
  rng = np.random.default_rng(2)
  m = _maps(kind, (6, 128, 128), rng)
  t = _masks(m.shape, rng, m)
  got = metrics.pixel_auc(metrics.pixel_histogram(m, t))
  exact = skm.roc_auc_score(t.ravel() > 0.5, m.ravel())
  assert abs(got['pixel_auc'] - exact) <= got['pixel_auc_bin_error']
  assert abs(got['pixel_auc'] - exact) < AUC_TOL


def _fakes_and_reals(rng, n=10, size=16):
  """n images, the first half fake with a random disc as mask, the rest real."""
  labels = np.r_[np.ones(n // 2), np.zeros(n - n // 2)].astype(np.int32)
  yy, xx = np.mgrid[:size, :size]
  masks = np.zeros((n, size, size), bool)
  for i in range(n // 2):
    cy, cx, r = rng.integers(size // 4, size - size // 4, 2).tolist() + [size // 4]
    masks[i] = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
  return labels, masks


@pytest.mark.parametrize('kind', ['uniform', 'saturated', 'near_half'])
def test_fakes_and_painted_aucs_match_sklearn(kind):
  """`pixel_auc_fakes` and `pixel_auc_painted` from their histograms against
  sklearn.roc_auc_score on the fake images' pixels and on the explicit painted map, within
  the histogram's bin resolution."""
  rng = np.random.default_rng(7)
  labels, masks = _fakes_and_reals(rng, size=48)
  m = _maps(kind, masks.shape, rng)
  m = np.where(masks, np.maximum(m, _maps(kind, masks.shape, rng)), m)  # cue above chance
  scores = rng.random(len(labels)) * 0.5 + 0.5 * labels  # a detector of AUC 1
  fakes = labels > 0
  got = metrics.localisation_aucs(metrics.pixel_histogram(m[fakes], masks[fakes]),
                                  metrics.painted_histogram(scores, masks))
  bound = metrics.pixel_auc(metrics.pixel_histogram(m[fakes], masks[fakes]))
  exact = skm.roc_auc_score(masks[fakes].ravel(), m[fakes].ravel())
  assert abs(got['pixel_auc_fakes'] - exact) <= bound['pixel_auc_bin_error']
  assert abs(got['pixel_auc_fakes'] - exact) < AUC_TOL
  painted = np.broadcast_to(scores[:, None, None], masks.shape)
  exact = skm.roc_auc_score(masks.ravel(), painted.ravel())
  assert abs(got['pixel_auc_painted'] - exact) < AUC_TOL


def test_constant_map_on_the_fakes_and_the_perfect_detector_painted():
  """A map constant over every fake image scores `pixel_auc_fakes` exactly 0.5, however
  its real images' maps make the pooled `pixel_auc` look; the painted map of a perfect
  detector (1 on fakes, 0 on reals) gets a high pooled pixel AUC without localising:
  (real pixels + half the fakes' unmasked pixels) / all unmasked pixels, as sklearn."""
  rng = np.random.default_rng(8)
  labels, masks = _fakes_and_reals(rng, n=12)
  fakes = labels > 0
  m = np.where(fakes[:, None, None], np.float32(0.7), np.float32(0.1)) * np.ones(masks.shape,
                                                                                np.float32)
  got = metrics.all_metrics(labels, labels.astype(np.float32),
                            pixel_hist=metrics.pixel_histogram(m, masks),
                            pixel_hist_fakes=metrics.pixel_histogram(m[fakes], masks[fakes]),
                            pixel_hist_painted=metrics.painted_histogram(labels, masks))
  assert got['pixel_auc_fakes'] == 0.5
  assert got['pixel_auc'] == pytest.approx(skm.roc_auc_score(masks.ravel(), m.ravel()))
  # the constant-per-image map above is itself the perfect detector's painted map
  assert got['pixel_auc_painted'] == pytest.approx(got['pixel_auc'], abs=1e-12)
  neg_real, neg_fake = (~masks[~fakes]).sum(), (~masks[fakes]).sum()
  expected = (neg_real + 0.5 * neg_fake) / (neg_real + neg_fake)
  assert got['pixel_auc_painted'] == pytest.approx(expected, abs=1e-12)
  assert got['pixel_auc_painted'] > 0.7


@pytest.mark.filterwarnings('ignore:A single label')
def test_mcc_matches_sklearn():
  rng = np.random.default_rng(3)
  for _ in range(20):
    t, p = rng.random(300) < rng.random(), rng.random(300) < rng.random()
    cm = skm.confusion_matrix(t, p, labels=[0, 1])
    assert metrics.mcc(cm) == pytest.approx(skm.matthews_corrcoef(t, p), abs=1e-12)
    assert metrics.pixel_metrics(cm)['mcc'] == metrics.mcc(cm)
  t = np.zeros(10, bool)
  for p in (t, ~t):  # a constant truth or prediction: 0, as scikit-learn
    assert metrics.mcc(skm.confusion_matrix(t, p, labels=[0, 1])) == skm.matthews_corrcoef(t, p)


def _per_image_sklearn(pred, true, labels):
  f1 = [skm.f1_score(t.ravel(), p.ravel(), zero_division=1.0)
        for p, t, y in zip(pred, true, labels) if y]
  iou = [skm.jaccard_score(t.ravel(), p.ravel(), zero_division=1.0)
         for p, t, y in zip(pred, true, labels) if y]
  return np.mean(f1), np.mean(iou)


def _counts(pred, true):
  return np.stack([(pred & true).sum((1, 2)), (pred & ~true).sum((1, 2)),
                   (~pred & true).sum((1, 2))], 1)


def test_per_image_f1_iou_match_sklearn():
  rng = np.random.default_rng(4)
  m = rng.random((9, 12, 12))
  true = rng.random((9, 12, 12)) < rng.random((9, 1, 1))
  labels = np.array([1, 1, 1, 1, 1, 0, 0, 1, 1])
  true[labels == 0] = False
  true[3], m[3] = False, 0.1      # fake, empty mask, nothing predicted: 1
  true[4], m[4, 0, 0] = False, 0.9  # fake, empty mask, one pixel claimed: 0
  pred = m > 0.5
  got = metrics.per_image_pixel_metrics(_counts(pred, true), labels)
  f1, iou = _per_image_sklearn(pred, true, labels)
  assert got['f1_per_image'] == pytest.approx(f1, abs=1e-12)
  assert got['iou_per_image'] == pytest.approx(iou, abs=1e-12)
  one = metrics.per_image_pixel_metrics(_counts(pred, true)[3:5], [1, 1])
  assert one == {'f1_per_image': 0.5, 'iou_per_image': 0.5}
  assert np.isnan(metrics.per_image_pixel_metrics(np.zeros((2, 3)), [0, 0])['f1_per_image'])


def _eval_step():
  model = types.SimpleNamespace(apply=lambda v, x, train: {'map': x[..., 0], 's': x[:, 0, 0, 1]})
  model_lib = types.SimpleNamespace(localization=lambda o: o['map'], score=lambda o: o['s'])
  mesh = jax.make_mesh((1,), (sharding.DATA_AXIS,), axis_types=(jax.sharding.AxisType.Auto,))
  return evaluate.make_eval_step(model_lib, model, mesh)


def _batch(maps, masks, labels, valid):
  n = len(maps)
  img = np.stack([maps, np.broadcast_to(np.linspace(0, 1, n)[:, None, None], maps.shape)], -1)
  zeros = np.zeros(n, np.int32)
  return {'image': jnp.asarray(img, jnp.float32), 'mask': jnp.asarray(masks, jnp.float32),
          'label': jnp.asarray(labels, jnp.int32), 'valid': jnp.asarray(valid, jnp.int32),
          'row': zeros}


@pytest.mark.parametrize('quantised', [False, True])
def test_eval_step_pixel_metrics_match_sklearn(quantised):
  """Two padded batches through the jitted step, summed as `evaluate` sums them: every
  pixel metric of the valid rows matches scikit-learn on the flattened maps; the padding
  rows (valid 0, maps and masks that would change every figure) do not count."""
  rng = np.random.default_rng(5 + quantised)
  step = _eval_step()
  state = {'params': {}, 'model_state': {}}
  hists, rows = {k: np.zeros(2 * K, np.int64) for k in evaluate.HISTOGRAMS}, []
  for _ in range(2):
    n, valid = 8, np.r_[np.ones(6), np.zeros(2)].astype(np.int32)
    m = _maps('saturated', (n, 24, 24), rng)
    if quantised:
      m = metrics.pixel_bin_centres(metrics.pixel_bins(m).clip(HALF - 20 * 256, HALF + 9 * 256))
    labels = np.r_[rng.integers(0, 2, 6), 1, 1]
    masks = _masks(m.shape, rng, m) * labels[:, None, None]
    masks[0, :2] = examples.IGNORE  # MSCCNet's padding (-1): real, as masks > 0.5
    m[6:], masks[6:] = 1.0, 0.0          # padding rows: all claimed fake, none is
    out = step(state, _batch(m, masks, labels, valid))
    for k in hists:
      hists[k] += np.asarray(out[k], np.int64)
    keep = valid > 0
    rows.append((m[keep], masks[keep] > 0.5, labels[keep],
                 np.asarray(out['pixel_counts'])[keep], np.asarray(out['score'])[keep]))
    np.testing.assert_array_equal(np.asarray(out['pixel_counts'])[keep],
                                  _counts(m[keep] > 0.5, masks[keep] > 0.5))
  m, true, labels, counts, scores = (np.concatenate(x) for x in zip(*rows))
  got = metrics.all_metrics(labels, scores, pixel_counts=counts,
                            **{k: h.reshape(2, -1) for k, h in hists.items()})
  np.testing.assert_array_equal(hists['pixel_hist'].reshape(2, -1),
                                metrics.pixel_histogram(m, true))
  fakes = labels > 0
  np.testing.assert_array_equal(hists['pixel_hist_fakes'].reshape(2, -1),
                                metrics.pixel_histogram(m[fakes], true[fakes]))
  np.testing.assert_array_equal(hists['pixel_hist_painted'].reshape(2, -1),
                                metrics.painted_histogram(scores, true))
  painted = np.broadcast_to(scores[:, None, None], m.shape)
  # the painted scores are np.linspace values: several share a bin only if they are equal
  assert got['pixel_auc_painted'] == pytest.approx(
      skm.roc_auc_score(true.ravel(), painted.ravel()), abs=AUC_TOL)
  exact_fakes = skm.roc_auc_score(true[fakes].ravel(), m[fakes].ravel())
  assert got['pixel_auc_fakes'] == pytest.approx(exact_fakes, abs=1e-12 if quantised else AUC_TOL)
  t, p = true.ravel(), (m > 0.5).ravel()
  exact = skm.roc_auc_score(t, m.ravel())
  if quantised:
    assert got['pixel_auc'] == pytest.approx(exact, abs=1e-12)
  else:
    assert abs(got['pixel_auc'] - exact) <= min(got['pixel_auc_bin_error'], AUC_TOL)
  assert got['f1'] == pytest.approx(skm.f1_score(t, p), abs=1e-12)
  assert got['iou'] == pytest.approx(skm.jaccard_score(t, p), abs=1e-12)
  assert got['mf1'] == pytest.approx(skm.f1_score(t, p, average='macro'), abs=1e-12)
  assert got['miou'] == pytest.approx(skm.jaccard_score(t, p, average='macro'), abs=1e-12)
  assert got['mcc'] == pytest.approx(skm.matthews_corrcoef(t, p), abs=1e-12)
  f1, iou = _per_image_sklearn(m > 0.5, true, labels)
  assert got['f1_per_image'] == pytest.approx(f1, abs=1e-12)
  assert got['iou_per_image'] == pytest.approx(iou, abs=1e-12)


_SHARDED = '''
import types, jax, numpy as np
from fjax.trainer import evaluate, metrics, sharding
import test_pixel_metrics as T
model = types.SimpleNamespace(apply=lambda v, x, train: {'map': x[..., 0], 's': x[:, 0, 0, 1]})
model_lib = types.SimpleNamespace(localization=lambda o: o['map'], score=lambda o: o['s'])
mesh = jax.make_mesh((2, 2), ('data', 'model'), axis_types=(jax.sharding.AxisType.Auto,) * 2)
rng = np.random.default_rng(0)
m = T._maps('saturated', (8, 32, 32), rng)
masks, valid = T._masks(m.shape, rng, m), np.r_[np.ones(5), np.zeros(3)]
batch = jax.device_put(T._batch(m, masks, np.ones(8), valid), sharding.batch_sharding(mesh))
out = evaluate.make_eval_step(model_lib, model, mesh)({'params': {}, 'model_state': {}}, batch)
np.testing.assert_array_equal(np.asarray(out['pixel_hist']).reshape(2, -1),
                              metrics.pixel_histogram(m[:5], masks[:5]))
np.testing.assert_array_equal(np.asarray(out['pixel_hist_painted']).reshape(2, -1),
                              metrics.painted_histogram(np.asarray(out['score'])[:5], masks[:5]))
print('ok')
'''


def test_eval_step_histogram_on_a_sharded_batch():
  """On a 2x2 (data, model) mesh each device bins its own rows and the histograms are
  summed over the data axis (a plain scatter of batch-sharded indices does not lower)."""
  import os, subprocess, sys  # pylint: disable=g-import-not-at-top,multiple-imports
  env = dict(os.environ, JAX_PLATFORMS='cpu',
             XLA_FLAGS='--xla_force_host_platform_device_count=4',
             PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(__file__)),
                                         os.path.dirname(__file__)]))
  proc = subprocess.run([sys.executable, '-c', _SHARDED], env=env, capture_output=True,
                        text=True, check=False)
  assert proc.returncode == 0 and proc.stdout.strip() == 'ok', proc.stderr[-3000:]
