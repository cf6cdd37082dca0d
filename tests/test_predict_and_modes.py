"""The end-to-end path: train (fixture) -> eval mode -> summary mode -> predict."""
import json
import os
import re
import shutil
import weakref

import cv2
import numpy as np
import pytest

from conftest import TEST_CONFIG, error_line, read_metrics, run_cli
from data_builders.demo_forgeries import media
from fjax import inference
from fjax import run as run_lib
from fjax.predict import inputs, pictures, scoring
from fjax.predict.scoring import batched
from fjax.util.errors import UserError


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
  workdir = str(tmp_path / 'run')  # eval writes into the workdir: a copy of the shared run
  shutil.copytree(trained_workdir, workdir)
  proc = run_cli('fjax.main', f'--config={TEST_CONFIG}', f'--workdir={workdir}',
                 '--mode=eval', data_dir=data_dir)
  result = json.loads(proc.stdout.strip().splitlines()[-1])
  test = [r for r in read_metrics(workdir) if r['split'] == 'test'][0]
  for key in ('auc', 'ap', 'miou'):
    assert result[key] == test[key]


def test_summary_mode(tmp_path):
  run_cli('fjax.main', f'--config={TEST_CONFIG}', f'--workdir={tmp_path}', '--mode=summary',
          '--config.model.middle_blocks=8')  # the test preset computes 1: timm's has 8
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
    # header (score), panel titles, face | map, colour bar (tests/test_cam.py: the layout)
    assert picture.shape == (pictures.TOP + 256, 512 + pictures.BAR_W, 3)
    face, drawn = picture[pictures.TOP:, :256], picture[pictures.TOP:, 256:512]
    assert not np.array_equal(face, drawn)  # the map is drawn
  # Per input, the run's evaluation rule (the default, SBI's): the mean over frames of each
  # frame's highest face score (6 faces in batches of 4: one padded batch).
  per_input = [json.loads(l) for l in open(out / 'inputs.jsonl')]
  assert [(r['frames'], r['faces'], r['status'], r['rule'], r['faceless']) for r in
          per_input] == [(1, 6, 'ok', 'mean_frame_max', 'skip'),
                         (2, len(video), 'ok', 'mean_frame_max', 'skip')]
  for r, faces in zip(per_input, (photo, video)):
    best = {}
    for f in faces:
      best[f['frame']] = max(best.get(f['frame'], 0.0), f['fake_probability'])
    np.testing.assert_allclose(r['fake_probability'], np.mean(list(best.values())),
                               rtol=1e-6)
    assert f"{r['path']}: fake probability {r['fake_probability']:.4f}" in proc.stdout
  np.testing.assert_allclose(per_input[0]['fake_probability'],
                             max(f['fake_probability'] for f in photo), rtol=1e-6)


def _predict(workdir, *args, check=True):
  return run_cli('fjax.predict', f'--workdir={workdir}', *map(str, args), check=check)


def _rows(path):
  with open(path) as f:
    return [json.loads(line) for line in f]


def test_predict_keeps_inputs_of_the_same_name_apart(trained_workdir, tmp_path):
  """real/0001.jpg and fake/0001.jpg (a forensics data set's layout): an overlay for every
  face of both, none overwritten, each row naming the overlay of its own face."""
  from fjax.data import faces  # pylint: disable=g-import-not-at-top
  paths = []
  for folder, source in (('real', media.feat_data('single_face.jpg')),
                         ('fake', media.insightface_image('t1.jpg'))):
    os.makedirs(tmp_path / folder)
    paths.append(str(tmp_path / folder / '0001.jpg'))
    shutil.copy(source, paths[-1])
  out = tmp_path / 'out'
  _predict(trained_workdir, '--input', *paths, '--output', out)
  rows = _rows(out / 'predictions.jsonl')
  names = [r['overlay'] for r in rows]
  assert [r['path'] for r in rows] == [paths[0]] + [paths[1]] * 6
  assert len(set(names)) == 7 and sorted(names) == sorted(
      n for n in os.listdir(out) if n.endswith('.png'))
  prefixes = {r['path']: r['overlay'].split('_f00000_')[0] for r in rows}
  assert len(set(prefixes.values())) == 2
  assert all(p.startswith('0001-') for p in prefixes.values())  # the stem, then the tag
  images = {p: faces.read_image(p) for p in paths}
  for r in rows:  # the overlay's left half is this row's face, not the other input's
    left = cv2.cvtColor(cv2.imread(str(out / r['overlay'])),
                        cv2.COLOR_BGR2RGB)[pictures.TOP:, :256]
    box = np.array(r['box'], np.float32)  # rounded to 0.1 px in the row
    own, other = (np.abs(faces.crop(images[p], box, 256).astype(int) - left).mean()
                  for p in sorted(paths, key=lambda p: p != r['path']))
    assert own < 2 < 10 < other, (own, other)


def test_predict_never_mixes_two_runs(trained_workdir, tmp_path):
  out = tmp_path / 'out'
  _predict(trained_workdir, '--input', media.insightface_image('t1.jpg'), '--output', out)
  (out / 'notes.txt').write_text('not written by predict')
  before = sorted(os.listdir(out))
  assert len(before) == 6 + 3
  again = ('--input', media.feat_data('single_face.jpg'), '--output', out)
  line = error_line(_predict(trained_workdir, *again, check=False))
  assert line == (f'error: --output {out} already holds an earlier prediction '
                  '(predictions.jsonl, inputs.jsonl, 6 overlay PNGs); pass --overwrite to '
                  'replace it or choose another --output')
  assert sorted(os.listdir(out)) == before
  _predict(trained_workdir, *again, '--overwrite')
  rows = _rows(out / 'predictions.jsonl')
  assert len(rows) == 1 and rows[0]['path'] == media.feat_data('single_face.jpg')
  assert sorted(os.listdir(out)) == sorted(['inputs.jsonl', 'notes.txt', 'predictions.jsonl',
                                            rows[0]['overlay']])
  # An overlay no predictions.jsonl lists (an older version's run) is not predict's to
  # delete: --overwrite refuses rather than mix it with a new run.
  shutil.copy(out / rows[0]['overlay'], out / 'old_f00000_face0.png')
  line = error_line(_predict(trained_workdir, *again, '--overwrite', check=False))
  assert 'overlay PNGs that no predictions.jsonl lists (e.g. old_f00000_face0.png)' in line
  assert len(os.listdir(out)) == 5


def test_predict_streams_one_input_at_a_time(trained_workdir, tmp_path, monkeypatch):
  """Memory stays bounded: the model runs on the first input's faces before the second
  input is read, every forward pass has --batch_size rows, and when an input is read no
  frame of an earlier input is still alive."""
  events, alive = [], []
  read, load = inputs.frames_of, inference.load_run

  def frames_of(path, num_frames):
    assert not [ref for ref in alive if ref() is not None], 'an earlier frame is held'
    events.append('read')
    frames = read(path, num_frames)
    alive.extend(weakref.ref(frame) for _, frame in frames)
    return frames

  def load_run(workdir, **kwargs):
    config, forward = load(workdir, **kwargs)
    config.evaluation.video_score = 'mean_faces'  # the mean over each frame's largest face
    def logged(images):
      events.append(images.shape[0])
      return forward(images)
    logged.map_kind = forward.map_kind  # the model's own map (no CAM)
    return config, logged

  monkeypatch.setattr(inputs, 'frames_of', frames_of)
  monkeypatch.setattr(inference, 'load_run', load_run)
  paths = [media.insightface_image('t1.jpg'), media.feat_data('single_face.mp4'),
           media.feat_data('single_face.jpg')]
  counts = scoring.predict(trained_workdir, paths, str(tmp_path / 'out'), num_frames=3,
                           batch_size=4)
  assert counts == {'read': 3, 'rows': 10, 'faces': 10}
  # 6 + 3 + 1 faces in batches of 4 (one may hold faces of two inputs), the last padded.
  assert events == ['read', 4, 'read', 4, 'read', 4]
  per_input = _rows(tmp_path / 'out' / 'inputs.jsonl')
  rows = _rows(tmp_path / 'out' / 'predictions.jsonl')
  for r in per_input:
    scores = [f['fake_probability'] for f in rows if f['path'] == r['path'] and f['face'] == 0]
    np.testing.assert_allclose(r['fake_probability'], np.mean(scores), rtol=1e-6)
    assert r['rule'] == 'mean_faces'


def test_input_score_follows_the_evaluation_rule():
  """Two faces in frame 0 (0.1, 0.7), one in frame 3 (0.4), one frame without a face."""
  frames, scores = [0, 0, 3], [0.1, 0.7, 0.4]
  expected = {('mean_frame_max', 'skip'): (0.7 + 0.4) / 2,
              ('mean_frame_max', 'half'): (0.7 + 0.4 + 0.5) / 3,
              ('mean_faces', 'skip'): (0.1 + 0.7 + 0.4) / 3,
              ('mean_faces', 'half'): (0.1 + 0.7 + 0.4 + 0.5) / 4}
  for rule, value in expected.items():
    assert abs(scoring.input_score(frames, scores, 1, *rule) - value) < 1e-12, rule
  # No face at all: skipped (evaluation scores such a video 0.5), or 0.5 per frame.
  assert scoring.input_score([], [], 3, 'mean_frame_max', 'skip') is None
  assert scoring.input_score([], [], 3, 'mean_frame_max', 'half') == 0.5
  with pytest.raises(UserError, match=re.escape(
      "evaluation.video_score='median', faceless='skip': use mean_faces | mean_frame_max "
      'and skip | half')):
    scoring.input_score(frames, scores, 0, 'median', 'skip')


def test_old_workdirs_get_the_default_rule():
  saved = {'model': {'name': 'xception_baseline'}, 'dataset': {'name': 'demo_forgeries'}}
  config = run_lib.with_defaults(saved, run_lib.defaults_of('xception_baseline'))
  assert config['evaluation'] == {'video_score': 'mean_frame_max', 'faceless': 'skip',
                                  'robustness': 'crop'}


def test_predict_astronaut_frame_is_its_best_face(trained_workdir, tmp_path, monkeypatch):
  """skimage's astronaut: her face alone (the mission patch on her sleeve, a HOG detection,
  fails faces.is_face), and her photo's score is that face's; with faceless 'half', each
  frame of a video without a face counts 0.5 (face_noface.mov: faces in 2 of 4 sampled
  frames)."""
  photo = str(tmp_path / 'astronaut.png')
  cv2.imwrite(photo, cv2.cvtColor(media.astronaut(), cv2.COLOR_RGB2BGR))
  load = inference.load_run

  def load_run(workdir, **kwargs):
    config, forward = load(workdir, **kwargs)
    config.evaluation.faceless = 'half'
    return config, forward

  monkeypatch.setattr(inference, 'load_run', load_run)
  video = media.feat_data('face_noface.mov')
  printed = []
  scoring.predict(trained_workdir, [photo, video], str(tmp_path / 'out'), num_frames=4,
                  batch_size=4, on_input=printed.append)
  rows = _rows(tmp_path / 'out' / 'predictions.jsonl')
  per_input = _rows(tmp_path / 'out' / 'inputs.jsonl')
  astro = [r['fake_probability'] for r in rows if r['path'] == photo]
  assert len(astro) == 1
  faces = {r['frame']: r['fake_probability'] for r in rows
           if r['path'] == video and r['status'] == 'ok'}
  assert len(faces) == 2 and sum(r['path'] == video for r in rows) == 4
  assert [(r['rule'], r['faceless'], r['faces'], r['faceless_frames']) for r in per_input] \
      == [('mean_frame_max', 'half', 1, 0), ('mean_frame_max', 'half', 2, 2)]
  np.testing.assert_allclose(per_input[0]['fake_probability'], max(astro), rtol=1e-6)
  np.testing.assert_allclose(per_input[1]['fake_probability'],
                             (sum(faces.values()) + 0.5 + 0.5) / 4, rtol=1e-6)
  assert printed == per_input


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


def test_predict_split_draws_similarity_maps_beside_ground_truth(data_dir, straight_run,
                                                                  tmp_path):
  """Fig. 5 rows: face | predicted mask | true mask | predicted similarity | true one."""
  workdir, out = straight_run('local_similarity'), str(tmp_path / 'rows')  # test preset
  proc = run_cli('fjax.predict', f'--workdir={workdir}', '--split=test', '--limit=3',
                 f'--output={out}', data_dir=data_dir)
  assert '3 faces of split test' in proc.stdout
  with open(os.path.join(out, 'predictions.jsonl')) as f:
    rows = [json.loads(line) for line in f]
  assert [r['panels'] for r in rows][0] == ['face', 'map', 'mask', 'similarity',
                                            'similarity_gt']
  picture = cv2.imread(os.path.join(out, rows[0]['png']))
  # face and overlay, mask, two similarity maps, each under its title; the colour bar
  assert picture.shape == (pictures.TOP + 256, 256 * 5 + pictures.BAR_W, 3)
  titles = picture[pictures.HEADER_H:pictures.TOP, :256 * 5]
  assert all((titles[:, k * 256:(k + 1) * 256] > 128).any() for k in range(5))
