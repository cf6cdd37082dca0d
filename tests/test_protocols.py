"""Evaluation protocols (issue 17): face -> frame -> video rules, faceless frames."""
from __future__ import annotations

import os
import re

import numpy as np
import pytest
import sklearn.metrics as skm

from fjax.trainer import metrics
from fjax.util.errors import UserError


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
  with pytest.raises(UserError, match=re.escape(
      "evaluation.video_score='median', faceless='skip': use mean_faces | mean_frame_max "
      'and skip | half')):
    metrics.detection_metrics(v, f, y, s, 'median')


def test_per_method_auc_is_taken_on_the_rows_of_auc():
  """Frames of 1-3 faces, two methods: under SBI's rule `auc_<m>` is the frame AUC of the
  real videos and m's (SBI's procedure written out), under 'half' with the faceless frames
  of those videos; 'mean_faces' the face AUC."""
  rows, faceless = _random_rows(5)
  method = lambda vid, label: 'real' if not label else ('A' if vid % 4 == 1 else 'B')
  v, f, y, s = (np.array(c) for c in zip(*rows))
  nv, nf, ny = (np.array(c) for c in zip(*faceless))
  methods = [method(i, l) for i, l in zip(v, y)]
  out = metrics.per_method_metrics(v, f, y, s, methods, 'mean_frame_max', 'half',
                                   (nv, nf, ny), [method(i, l) for i, l in zip(nv, ny)])
  for m in ('A', 'B'):
    frames = {}
    for vid, frame, label, score in rows:
      if method(vid, label) in ('real', m):
        frames[vid, frame] = (label, max(frames.get((vid, frame), (0, -1.0))[1], score))
    ref = list(frames.values()) + [(label, 0.5) for vid, _, label in faceless
                                   if method(vid, label) in ('real', m)]
    assert out[f'auc_{m}'] == pytest.approx(skm.roc_auc_score(*zip(*ref)), abs=1e-12)
  faces = metrics.per_method_metrics(v, f, y, s, methods, 'mean_faces')
  keep = np.isin(methods, ('real', 'A'))
  assert faces['auc_A'] == pytest.approx(skm.roc_auc_score(y[keep], s[keep]), abs=1e-12)


FRAME_LEVEL_PRESETS = ('focus', 'focus_eval', 'msccnet', 'semantic_noise', 'xception')


@pytest.mark.parametrize('name', FRAME_LEVEL_PRESETS)
def test_bystander_in_a_fake_frame_is_never_a_fake_row(name):
  """A fake video of a test set whose frames show the subject (face 0, the largest) and a
  bystander (face 1): under each frame-level paper preset (evaluation.video_score =
  mean_faces) the bystander is no row; the subject, the real video's faces, a frame's only
  stored face whatever its rank (the demo set keeps one chosen face per photo) and the
  faceless frame stay."""
  import importlib  # pylint: disable=g-import-not-at-top
  from fjax.data import selection  # pylint: disable=g-import-not-at-top
  config = importlib.import_module(f'configs.{name}').get_config('paper')
  assert config.evaluation.video_score == 'mean_faces'
  config.dataset.update(name='celeb_df', methods=(), frames_test=0)
  t = {'label': np.array([1, 1, 1, 1, 0, 0, 1]),
       'method': np.array(['fake'] * 4 + ['real'] * 2 + ['fake']),
       'video_key': np.array(['fake/v'] * 4 + ['real/r'] * 2 + ['fake/p'], object),
       'frame': np.array([0, 0, 5, 5, 0, 5, 0]), 'face': np.array([0, 1, 0, 1, 0, 0, 2]),
       'faceless': [['v', 9, 1, 'fake']]}
  protocol = selection.Protocol.of(config, train=False)
  keep = np.ones(7, bool)
  for _, mask in protocol.rules(t, t):
    keep &= mask
  assert keep.tolist() == [True, False, True, False, True, True, True]
  assert protocol.faceless(t)['frame'].tolist() == [9]
  assert not selection.Protocol.of(config, train=True).subject_only  # training: every face
  config.evaluation.video_score = 'mean_frame_max'  # SBI's rule: every face, frame max
  assert not selection.Protocol.of(config, train=False).subject_only


@pytest.fixture(scope='module')
def ffpp_config(ffpp):
  """The xception test config reading the FF++ fixture (faceforensics/tiny: Deepfakes,
  Face2Face, FaceShifter; 3 frames per video)."""
  from configs import xception  # pylint: disable=g-import-not-at-top
  config = xception.get_config('test')
  config.dataset.update(name='faceforensics/tiny', data_dir=ffpp[1])
  return config


def _selected(config, split, train):
  from fjax.data import splits  # pylint: disable=g-import-not-at-top
  opened = splits.open_split(config, split, train)
  t = opened.table
  return opened.source, [(t['method'][i], t['video_id'][i], int(t['frame'][i]),
                          int(t['label'][i])) for i in opened.rows]


def test_methods_cross_manipulation_and_frames_per_video(ffpp_config):
  from fjax.util.errors import UserError  # pylint: disable=g-import-not-at-top
  config = ffpp_config.copy_and_resolve_references()
  _, every = _selected(config, 'train', True)
  assert {m for m, *_ in every} == {'real', 'Deepfakes', 'Face2Face', 'FaceShifter'}
  config.dataset.methods = ('Deepfakes', 'Face2Face')
  source, rows = _selected(config, 'train', True)
  assert {m for m, *_ in rows} == {'real', 'Deepfakes', 'Face2Face'}
  assert len(rows) == sum(m != 'FaceShifter' for m, *_ in every)
  assert '"methods Deepfakes,Face2Face"' in repr(source)  # the resume check sees it
  # Cross-manipulation: training on one method, evaluation on every selected one.
  config.dataset.train_method = 'Face2Face'
  assert {m for m, *_ in _selected(config, 'train', True)[1]} == {'real', 'Face2Face'}
  assert {m for m, *_ in _selected(config, 'test', False)[1]} == {'real', 'Face2Face',
                                                                 'Deepfakes'}
  # N frames per video: the first and the last of each video's 3 sampled frames.
  config.dataset.frames_test = 2
  _, full = _selected(ffpp_config, 'test', False)
  _, two = _selected(config, 'test', False)
  per_video = {}
  for m, v, f, _ in full:
    per_video.setdefault((m, v), set()).add(f)
  expected = {(m, v, f) for m, v, _, _ in two for f in
              (min(per_video[(m, v)]), max(per_video[(m, v)]))}
  assert {(m, v, f) for m, v, f, _ in two} <= expected
  assert all(len({f for m2, v2, f, _ in two if (m2, v2) == k}) <= 2 for k in per_video)
  config.dataset.methods = ('NeuralTexture',)
  with pytest.raises(UserError, match="no method 'NeuralTexture'"):
    _selected(config, 'train', True)


def test_validation_during_training_sees_training_methods_only(ffpp_config):
  """Leave-one-out and train-on-one: the validation split is selected by training's method
  rules (`validation=True`, what the training loop asks for), evaluation by its own."""
  from fjax.data import splits  # pylint: disable=g-import-not-at-top
  config = ffpp_config.copy_and_resolve_references()
  config.dataset.frames_train = 1  # validation keeps evaluation's frames
  methods = lambda split: {m for m, *_ in _selected(config, split, False)[1]}
  def validation(**kw):
    config.dataset.update(**kw)
    opened = splits.open_split(config, config.dataset.split_eval, validation=True)
    return {m for m in opened.table['method'][opened.rows]}, len(opened.rows)
  every, n = validation()
  assert every == {'real', 'Deepfakes', 'Face2Face', 'FaceShifter'}
  assert n == len(_selected(config, config.dataset.split_eval, False)[1])
  assert validation(holdout='Face2Face')[0] == {'real', 'Deepfakes', 'FaceShifter'}
  assert methods(config.dataset.split_eval) == {'real', 'Face2Face'}  # evaluation: it only
  assert validation(holdout='', train_method='Deepfakes')[0] == {'real', 'Deepfakes'}
  assert methods('test') == {'real', 'Deepfakes', 'Face2Face', 'FaceShifter'}


def test_cross_dataset_table_scores_files_and_single_subject(data_dir, trained_workdir,
                                                             tmp_path):
  """`--mode=eval --datasets=...` on two fixture test sets (a built one missing): the table,
  and scores files from which scikit-learn recomputes the printed AUCs under SBI's rule."""
  import json  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  from configs import xception  # pylint: disable=g-import-not-at-top
  from fjax.data import schema, splits  # pylint: disable=g-import-not-at-top
  from tests import test_testsets  # pylint: disable=g-import-not-at-top
  from tests.conftest import TEST_CONFIG, run_cli  # pylint: disable=g-import-not-at-top
  sets = str(tmp_path / 'tfds')
  os.makedirs(sets)
  os.symlink(os.path.join(data_dir, 'demo_forgeries'), os.path.join(sets, 'demo_forgeries'))
  real, fake = test_testsets._clips()  # pylint: disable=protected-access
  for name in ('celeb_df', 'dfdc'):
    manual = str(tmp_path / name)
    getattr(test_testsets, name)(manual, real, fake)
    run_cli('data_builders.build', name, '--config=tiny', f'--manual_dir={manual}',
            f'--data_dir={sets}')
  workdir = str(tmp_path / 'run')
  shutil.copytree(trained_workdir, workdir)
  proc = run_cli('fjax.main', f'--config={TEST_CONFIG}', f'--workdir={workdir}', '--mode=eval',
                 '--datasets=celeb_df/tiny,dfd/tiny,dfdc/tiny', data_dir=sets)
  assert 'skipped: dfd/tiny: not built' in proc.stderr
  with open(os.path.join(workdir, 'eval_table.json')) as f:
    table = json.load(f)
  assert sorted(table['datasets']) == ['celeb_df/tiny/test', 'dfdc/tiny/test']
  assert '| mean |' in open(os.path.join(workdir, 'eval_table.md')).read()
  for name, result in table['datasets'].items():
    with open(os.path.join(workdir, 'scores', name.replace('/tiny/', '_tiny_') + '.jsonl')) as f:
      rows = [json.loads(line) for line in f]
    frames, videos = {}, {}
    for r in rows:  # SBI: a frame's highest face score, a video's mean over its frames
      key = (r['method'], r['video_id'], r['frame'])
      old = frames.get(key, (0, -1.0))
      frames[key] = (old[0] | r['label'], max(old[1], r['score']))
    for (m, v, _), (label, score) in frames.items():
      videos.setdefault((m, v), (label, []))[1].append(score)
    labels, scores = zip(*frames.values())
    assert result['auc'] == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-6)
    vl, vs = zip(*((l, np.mean(s)) for l, s in videos.values()))
    assert result['video_auc'] == pytest.approx(skm.roc_auc_score(vl, vs), abs=1e-6)
    if name.startswith('dfdc'):
      assert {r['face'] for r in rows if r['video_id'] == 'two_people'} == {0, 1}
  config = xception.get_config('test')
  config.dataset.update(name='dfdc/tiny', data_dir=sets, single_subject=('dfdc',))
  opened = splits.open_split(config, 'test')
  source = opened.source
  assert {bytes(source[i]['video_id']).decode() for i in range(len(source))} == {
      'plumless', 'buckeroo', 'ccc'}
  # Video ids are exact (the table's video keys, numbered on the host), so two names whose
  # CRC-32s collide stay two videos of their own labels.
  import zlib  # pylint: disable=g-import-not-at-top
  assert zlib.crc32(b'plumless') == zlib.crc32(b'buckeroo')
  key = opened.table['video_key']
  ids = {k: set(opened.videos[key == k].tolist()) for k in ('real/plumless', 'fake/buckeroo')}
  assert all(len(v) == 1 for v in ids.values()) and ids['real/plumless'] != ids['fake/buckeroo']
  assert opened.videos.dtype == np.int64 and 'video' not in schema.KEYS  # ids stay on the host
  assert [int(source[i]['row']) for i in range(len(source))] == opened.rows.tolist()
  f = opened.faceless  # ccc's blank last frame, under the protocol's own rules
  assert f['frame'].tolist() == [7] and f['label'].tolist() == [1] and f['method'].tolist() == [
      'fake']
  ccc = opened.table['video_key'] == 'fake/ccc'
  assert f['video'].tolist() == [opened.videos[ccc][0]]


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _listed_commands():
  """The `python -m fjax.main` commands of the paper-table list (docs/tables.md)."""
  text = open(os.path.join(ROOT, 'docs', 'tables.md'), encoding='utf-8').read()
  start, end = text.index('<!-- protocol-commands -->'), text.index('<!-- /protocol-commands -->')
  return re.findall(r'`(python -m fjax\.main [^`]+)`', text[start:end])


def test_every_listed_command_resolves():
  """Each command of the paper-table list: its config file and presets load and every
  --config override parses, both as `python -m fjax.main`'s flag does (ml_collections'
  config_flags, the override cast to the key's type), and every --datasets name has a
  builder (with that builder config, when the name carries one)."""
  import importlib  # pylint: disable=g-import-not-at-top
  import shlex  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  commands = _listed_commands()
  assert len(commands) >= 30
  for command in commands:
    args = shlex.split(command)[3:]
    spec = [a for a in args if a.startswith('--config=configs/')]
    assert len(spec) == 1, command
    overrides = [a for a in args if a.startswith('--config.')]
    argv = ['fjax', '--config=' + os.path.join(ROOT, spec[0][len('--config='):]), *overrides]
    values = flags.FlagValues()
    config_flags.DEFINE_config_file('config', None, '', flag_values=values, sys_argv=argv)
    values(argv)
    config = values.config
    for arg in overrides:
      key, value = arg[len('--config.'):].split('=', 1)
      node = config
      for part in key.split('.'):
        node = node[part]
      assert str(node) == value, (command, key, node)
    for names in re.findall(r'--datasets=(\S+)', command):
      for name in names.split(','):
        builder, _, builder_config = name.partition('/')
        importlib.import_module(f'data_builders.{builder}')
        known = [c.name for c in tfds.builder_cls(builder).BUILDER_CONFIGS]
        assert not builder_config or builder_config in known, (command, name, known)
    assert ('--mode=' not in command
            or re.search(r'--mode=(eval|robustness|summary)', command)), command
  assert re.search(r'(?m)^\| FoCus III .* none: ', open(os.path.join(
      ROOT, 'docs', 'tables.md'), encoding='utf-8').read())  # rows without a command say why


def test_split_columns_are_saved_beside_the_data_set_and_read_back(ffpp_config):
  import glob  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  from fjax.data import sources  # pylint: disable=g-import-not-at-top
  first = sources.table(ffpp_config, 'test')
  saved = glob.glob(os.path.join(ffpp_config.dataset.data_dir, 'faceforensics', 'tiny', '*',
                                 'fjax-columns-test.npz'))
  assert len(saved) == 1
  sources._TABLES.clear()  # pylint: disable=protected-access
  again = sources.table(ffpp_config, 'test')  # from the file
  meta = sources.metadata(ffpp_config, 'test')  # pylint: disable=protected-access
  for k in sources.COLUMNS:
    np.testing.assert_array_equal(first[k], again[k])
    direct = [meta[i][k] for i in range(len(meta))]
    direct = [bytes(v).decode() if isinstance(v, bytes) else int(v) for v in direct]
    assert again[k].tolist() == direct, k
  assert again['faceless'] == first['faceless'] and first['faceless']  # pair 004: no face
  with open(saved[0], 'wb') as f:  # a damaged file is read around, then replaced
    f.write(b'not an npz')
  sources._TABLES.clear()  # pylint: disable=protected-access
  assert sources.table(ffpp_config, 'test')['video_id'].tolist() == \
      again['video_id'].tolist()
  assert np.load(saved[0], allow_pickle=False)['frame'].tolist() == again['frame'].tolist()
