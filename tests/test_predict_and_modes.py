"""The end-to-end path: train (fixture) -> eval mode -> summary mode -> predict."""
import json
import os

import cv2
import numpy as np

from conftest import TEST_CONFIG, read_metrics, run_cli
from data_builders.demo_forgeries import media
from fjax.predict import batched


def test_training_writes_all_outputs(trained_workdir):
  rows = read_metrics(trained_workdir)
  assert [r['step'] for r in rows if r['split'] == 'train'] == [1, 2, 3, 4]
  test = [r for r in rows if r['split'] == 'test']
  assert len(test) == 1
  for key in ('acc', 'auc', 'eer', 'ap', 'video_auc', 'iou', 'miou', 'f1', 'mf1'):
    assert key in test[0]
  assert os.listdir(os.path.join(trained_workdir, 'tb'))
  assert json.load(open(os.path.join(trained_workdir, 'config.json')))['model']['name'] \
      == 'xception_baseline'


def test_eval_mode_reproduces_test_metrics(data_dir, trained_workdir, tmp_path):
  proc = run_cli('fjax.main', f'--config={TEST_CONFIG}', f'--workdir={trained_workdir}',
                 '--mode=eval', data_dir=data_dir)
  result = json.loads(proc.stdout.strip().splitlines()[-1])
  test = [r for r in read_metrics(trained_workdir) if r['split'] == 'test'][0]
  for key in ('auc', 'ap', 'miou'):
    assert result[key] == test[key]


def test_summary_mode(tmp_path):
  run_cli('fjax.main', f'--config={TEST_CONFIG}', f'--workdir={tmp_path}', '--mode=summary')
  summary = json.load(open(tmp_path / 'summary.json'))
  assert summary['total_params'] == sum(summary['params_per_module'].values())
  # timm's legacy_xception has 22,855,952 parameters, 2,049,000 of them in its fc head.
  assert summary['params_per_module']['backbone'] == 22_855_952 - 2_049_000
  assert summary['outputs']['logit'] == [8]
  assert summary['outputs']['map_logits'] == [8, 2, 2]  # 32 px input, stride 16


def test_predict_image_and_video(trained_workdir, tmp_path):
  out = tmp_path / 'out'
  proc = run_cli('fjax.predict', f'--workdir={trained_workdir}', '--input',
                 media.insightface_image('t1.jpg'), media.feat_data('single_face.mp4'),
                 '--output', str(out), '--frames', '2', '--batch_size', '4')
  rows = [json.loads(l) for l in open(out / 'predictions.jsonl')]
  photo = [r for r in rows if r['path'].endswith('t1.jpg')]
  video = [r for r in rows if r['path'].endswith('.mp4')]
  assert len(photo) == 6 and len({r['frame'] for r in video}) == 2
  for r in photo + video:
    assert r['status'] == 'ok' and 0 <= r['fake_probability'] <= 1
    picture = cv2.imread(str(out / r['overlay']))
    assert picture.shape == (256, 512, 3)
    assert not np.array_equal(picture[:, :256], picture[:, 256:])  # the map is drawn
  # Per input: the mean over its faces (6 faces in batches of 4: one padded batch).
  per_input = [json.loads(l) for l in open(out / 'inputs.jsonl')]
  assert [(r['frames'], r['faces']) for r in per_input] == [(1, 6), (2, len(video))]
  for r, faces in zip(per_input, (photo, video)):
    np.testing.assert_allclose(r['fake_probability'],
                               np.mean([f['fake_probability'] for f in faces]), rtol=1e-6)
    assert f"{r['path']}: fake probability {r['fake_probability']:.4f}" in proc.stdout


def test_batched_pads_to_one_shape_and_matches_row_by_row():
  shapes = []
  def fn(x):  # a per-row function, like a model in eval mode
    shapes.append(x.shape)
    return x.sum(axis=(1, 2)), x[:, ::-1]
  x = np.random.default_rng(0).normal(size=(11, 3, 2)).astype(np.float32)
  sums, flipped = batched(fn, x, 4)
  assert shapes == [(4, 3, 2)] * 3
  for i in range(len(x)):  # the reference: one row at a time
    np.testing.assert_array_equal(sums[i], x[i].sum())
    np.testing.assert_array_equal(flipped[i], x[i, ::-1])
  assert len(sums) == len(flipped) == 11


def test_predict_split_draws_similarity_maps_beside_ground_truth(data_dir, tmp_path):
  """Fig. 5 rows: face | predicted mask | true mask | predicted similarity | true one."""
  workdir, out = str(tmp_path / 'ls'), str(tmp_path / 'rows')
  run_cli('fjax.main', '--config=configs/local_similarity.py:test', f'--workdir={workdir}',
          data_dir=data_dir)
  proc = run_cli('fjax.predict', f'--workdir={workdir}', '--split=test', '--limit=3',
                 f'--output={out}', data_dir=data_dir)
  assert '3 faces of split test' in proc.stdout
  with open(os.path.join(out, 'predictions.jsonl')) as f:
    rows = [json.loads(line) for line in f]
  assert [r['panels'] for r in rows][0] == ['face', 'map', 'mask', 'similarity',
                                            'similarity_gt']
  picture = cv2.imread(os.path.join(out, rows[0]['png']))
  assert picture.shape == (256, 256 * 5, 3)  # face and overlay, mask, two similarity maps
