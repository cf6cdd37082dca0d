"""FoCus maps as a product: export from a trained run, train another model on them."""
from __future__ import annotations

import json
import os

import cv2
import grain
import numpy as np
import tensorflow_datasets as tfds
from sklearn.metrics import roc_auc_score

import data_builders.demo_forgeries  # noqa: F401  (registers the builder)
from fjax.focus_maps import Overlap
from tests.conftest import TEST_CONFIG, error_line, read_metrics, run_cli



def assert_one_map_per_example(maps, split: str, data_dir: str) -> None:
  """An exported split holds one map per example of the tiny demo split, at the crop's
  size, zero on real faces."""
  source = tfds.data_source('demo_forgeries/tiny', split=split, data_dir=data_dir)
  stored = grain.sources.ArrayRecordDataSource([os.path.join(maps, f'{split}.array_record')])
  assert len(stored) == len(source)
  for i in range(len(source)):
    m = cv2.imdecode(np.frombuffer(stored[i], np.uint8), cv2.IMREAD_GRAYSCALE)
    assert m.shape == source[i]['image'].shape[:2]
    if source[i]['label'] == 0:
      assert not m.any()

def test_export_and_train_on_focus_maps(data_dir, trained_workdir, focus_maps, tmp_path):
  run, maps, printed = focus_maps
  assert 'pixel AUC' in printed and 'real-face prior' in printed
  with open(os.path.join(maps, 'info.json')) as f:
    info = json.load(f)
  assert info['map'] == 'a_fus (eq. 5)' and 0 <= info['report']['test']['pixel_auc_fakes'] <= 1
  for split in ('train', 'test'):
    assert_one_map_per_example(maps, split, data_dir)
  # Another model trains with the maps as its mask supervision.
  xdir = str(tmp_path / 'xception_on_focus')
  run_cli('fjax.main', f'--config={TEST_CONFIG}', f'--workdir={xdir}',
          '--config.dataset.mask_source=focus', f'--config.dataset.focus_maps={maps}',
          data_dir=data_dir)
  assert any(r['split'] == 'test' for r in read_metrics(xdir))
  # Clear errors: an existing output, a run of another model.
  line = error_line(run_cli('fjax.focus_maps', f'--workdir={run}', f'--output={maps}',
                            data_dir=data_dir, check=False))
  assert 'exists' in line
  line = error_line(run_cli('fjax.focus_maps', f'--workdir={trained_workdir}',
                            f'--output={tmp_path / "x"}', data_dir=data_dir, check=False))
  assert 'not a FoCus one' in line
  line = error_line(run_cli('fjax.focus_maps', f'--workdir={run}', f'--output={tmp_path / "y"}',
                            '--unlabeled', '--map=a_rgb', data_dir=data_dir, check=False))
  assert 'leave out --map' in line and not os.path.exists(tmp_path / 'y.incomplete')
  # One branch's CAR map (eq. 4) instead of the fused one.
  rgb = str(tmp_path / 'rgb_maps')
  run_cli('fjax.focus_maps', f'--workdir={run}', f'--output={rgb}', '--splits=test',
          '--map=a_rgb', data_dir=data_dir)
  with open(os.path.join(rgb, 'info.json')) as f:
    assert json.load(f)['map'] == 'a_rgb (eq. 4)'


def _iou(pred, truth):
  inter = sum(bool(p) and bool(t) for p, t in zip(pred, truth))
  return inter / sum(bool(p) or bool(t) for p, t in zip(pred, truth))


def test_overlap_against_sklearn_and_loops():
  rng = np.random.default_rng(0)
  masks = np.zeros((5, 8, 8), bool)
  masks[:, 2:6, 3:7] = True
  masks[0, 0, 0] = True
  maps = np.clip(0.3 * masks + rng.uniform(0, 0.7, masks.shape), 0, 1)
  maps[1, :4] = 0.5  # ties
  reals = rng.uniform(0, 1, (3, 8, 8))
  scores = rng.uniform(0, 1, 8)
  overlap = Overlap()
  for m, t, s in zip(maps, masks, scores):
    overlap.add_fake(m, t, s)
  for m, s in zip(reals, scores[5:]):
    overlap.add_real(m, s)
  r = overlap.report()
  stored = np.round(maps * 255) / 255  # the 8-bit maps the export writes
  t = masks.ravel()
  assert r['fakes'] == 5
  assert np.isclose(r['pixel_auc_fakes'], roc_auc_score(t, stored.ravel()))
  assert np.isclose(r['iou_at_0.5'], _iou(stored.ravel() > 0.5, t))
  assert np.isclose(r['iou_all_fake'], t.mean())
  prior = np.broadcast_to(np.round(reals.mean(0) * 255) / 255, maps.shape).ravel()
  assert np.isclose(r['pixel_auc_real_prior'], roc_auc_score(t, prior))
  assert np.isclose(r['iou_real_prior'], _iou(prior > 0.5, t))
  every = np.concatenate([masks, np.zeros(reals.shape, bool)])  # the painted map, pooled
  painted = np.broadcast_to(scores[:, None, None], every.shape)
  assert np.isclose(r['pixel_auc_painted'], roc_auc_score(every.ravel(), painted.ravel()))
  only_fakes = Overlap()
  only_fakes.add_fake(maps[0], masks[0], 0.5)
  assert 'pixel_auc_real_prior' not in only_fakes.report()


def test_complementary_mask_readings_of_a_focus_run(focus_maps):
  """fjax.focus_cl on the shared FoCus run's last checkpoint: the RGB shares of the three
  readings of Algorithm 1 at test time, the sampled one near its closed-form expectation
  (the mean of focus.keep_probability), which Algorithm 1's noise keeps within
  [sigmoid(-1), sigmoid(1)]; the fused map of the argmax is a_aux where the share is 0
  (and a_rgb where it is 1)."""
  from fjax import focus_cl, inference  # pylint: disable=g-import-not-at-top
  run = focus_maps[0]
  config, forward = inference.load_run(run)
  config.dataset.update(holdout='', methods=(), frames_test=0, single_subject=())
  config.input.workers = 0
  r = focus_cl.measure(config, forward, 'test', draws=4)
  assert 0.268 <= r['rgb_share_expected'] <= 0.732
  assert abs(r['rgb_share_sampled'] - r['rgb_share_expected']) < 0.15
  assert 0 <= r['rgb_share_argmax'] <= 1 and 0 <= r['auc_argmax'] <= 1
  for share, branch in ((0.0, 'a_aux'), (1.0, 'a_rgb')):
    if r['rgb_share_argmax'] == share:
      assert r['pixel_auc_fakes_a_fus_argmax'] == r[f'pixel_auc_fakes_{branch}']
