"""The planted cue (issue 18): faint noise with an exact mask, as a data set
(demo_forgeries/planted) and as AUNet's tampering step."""
from __future__ import annotations

import numpy as np
import skimage.data

from fjax.data import forgeries, tamper


def _face():
  import cv2  # pylint: disable=g-import-not-at-top
  return cv2.resize(skimage.data.astronaut()[:240, 120:360], (128, 128))


def test_planted_cue_changes_only_the_masked_pixels_by_grey_noise():
  image = np.full((128, 128, 3), 120, np.uint8)  # flat: no clipping, the noise itself
  fake, mask = forgeries.planted_cue(image, np.random.default_rng(3))
  assert set(np.unique(mask)) == {0.0, 1.0} and 0.03 < mask.mean() < 0.5
  diff = fake.astype(int) - image
  assert not diff[mask == 0].any()
  assert (diff[..., 0] == diff[..., 1]).all() and (diff[..., 0] == diff[..., 2]).all()
  inside = diff[..., 0][mask == 1]
  assert abs(inside.std() - forgeries.PLANTED_SIGMA) < 0.1 * forgeries.PLANTED_SIGMA
  assert abs(inside.mean()) < 3 * forgeries.PLANTED_SIGMA / np.sqrt(inside.size)
  # Constant on 2 x 2 blocks, independent between blocks.
  d = diff[..., 0].astype(float)
  blocks = d.reshape(64, 2, 64, 2)
  inner = mask.reshape(64, 2, 64, 2).min((1, 3)) == 1
  assert (blocks == blocks[:, :1, :, :1]).all(axis=(1, 3))[inner].all()
  coarse = blocks[:, 0, :, 0]
  both = inner[:, 1:] & inner[:, :-1]
  assert abs(np.corrcoef(coarse[:, 1:][both], coarse[:, :-1][both])[0, 1]) < 0.15
  # On a real face the same draws give the same mask; pixels change only inside it.
  face = _face()
  fake2, mask2 = forgeries.planted_cue(face, np.random.default_rng(3))
  np.testing.assert_array_equal(mask2, mask)
  assert not (fake2 != face)[mask2 == 0].any()


def test_aunet_planted_tampering_plants_inside_the_partial_face_mask():
  from fjax.data import faces  # pylint: disable=g-import-not-at-top
  face = _face()
  found = faces.detect_faces(face)
  assert found
  landmarks = found[0].landmarks
  real, fake, mask = tamper.tampered_counterpart(face, landmarks, np.random.default_rng(0),
                                                 artefact='planted')
  np.testing.assert_array_equal(real, face)
  assert set(np.unique(mask)) <= {0.0, 1.0} and mask.mean() > 0.05
  changed = (fake != real).any(-1)
  assert changed[mask == 1].mean() > 0.5 and not changed[mask == 0].any()


def test_planted_data_set_fakes_are_their_real_face_plus_the_cue(tmp_path):
  from data_builders import build  # pylint: disable=g-import-not-at-top
  builder = build.build('demo_forgeries', 'planted_tiny', str(tmp_path))
  src = builder.as_data_source(split='train')
  examples = [src[i] for i in range(len(src))]
  reals = {(e['video_id'], int(e['frame'])): e for e in examples if e['label'] == 0}
  fakes = [e for e in examples if e['label'] == 1]
  assert fakes and {e['method'] for e in fakes} == {b'planted_cue'}
  for e in fakes:
    real = reals[(e['video_id'].rsplit(b'/', 1)[0], int(e['frame']))]
    mask = e['mask'][..., 0] > 127
    changed = (e['image'] != real['image']).any(-1)
    assert not changed[~mask].any() and changed[mask].mean() > 0.5


def test_natural_planted_set_holds_out_its_source_images(tmp_path):
  """demo_forgeries/planted_natural (issue 28): real crops of natural images, each split
  cut from its own source images; crops differ in place, scale and flip; each fake is its
  crop plus the cue inside an exact mask."""
  from data_builders import build  # pylint: disable=g-import-not-at-top
  from data_builders.demo_forgeries import natural  # pylint: disable=g-import-not-at-top
  builder = build.build('demo_forgeries', 'planted_natural_tiny', str(tmp_path))
  sources = {}
  for split, count in zip(('train', 'validation', 'test'), (12, 4, 6)):
    src = builder.as_data_source(split=split)
    examples = [src[i] for i in range(len(src))]
    reals = {e['video_id']: e for e in examples if e['label'] == 0}
    assert len(reals) == count and len(examples) == 2 * count
    sources[split] = {e['identity'].decode() for e in examples}
    assert sources[split] <= {s for s, sp in natural.SOURCES if sp == split}
    images = np.stack([e['image'] for e in reals.values()]).reshape(count, -1)
    assert len(np.unique(images, axis=0)) == count  # no two crops alike
    for e in examples:
      if e['label'] == 1:
        real = reals[e['video_id'].rsplit(b'/', 1)[0]]
        mask = e['mask'][..., 0] > 127
        changed = (e['image'] != real['image']).any(-1)
        assert mask.any() and not changed[~mask].any() and changed[mask].mean() > 0.5
  assert not (sources['train'] & sources['test']) and not (sources['train'] &
                                                           sources['validation'])
  # the crop itself: a square of the stated scale, flipped half the time
  rng = np.random.default_rng(0)
  image = skimage.data.astronaut()
  boxes = [natural.random_crop(image, 32, rng)[1] for _ in range(50)]
  sides = np.array([b[2] - b[0] for b in boxes]) / 512
  assert sides.min() >= natural.CROP_SCALE[0] - 0.01 and sides.max() <= 1
  assert all(b[2] - b[0] == b[3] - b[1] and b[2] <= 512 and b[3] <= 512 for b in boxes)
  flat = np.tile(np.arange(8, dtype=np.uint8)[None, :, None], (8, 1, 3))  # left-right ramp
  flips = [natural.random_crop(flat, 8, np.random.default_rng(k))[0] for k in range(40)]
  firsts = {int(f[0, 0, 0]) for f in flips if (np.diff(f[0, :, 0].astype(int)) != 0).all()}
  assert firsts == {0, 7}  # whole-image crops seen both ways round


def test_real_faces_become_planted_fakes_on_the_fly():
  """`input.artefact=planted` with `self_blend_prob`: a real training face becomes the
  planted cue's fake (label 1, its exact mask), as the builder makes the stored ones."""
  from fjax.data import examples  # pylint: disable=g-import-not-at-top
  face = _face()
  example = {'image': face, 'mask': np.zeros((128, 128, 1), np.uint8), 'label': 0,
             'landmarks': np.zeros((68, 2), np.float32), 'method': b'real',
             'video_id': b'v', 'frame': 0}
  recipe = examples.Recipe(image_size=128, mean=(0.5,) * 3, std=(0.5,) * 3,
                           self_blend_prob=1.0, artefact='planted')
  out = examples.prepare(example, recipe, np.random.default_rng(5))
  rng = np.random.default_rng(5)
  rng.random()  # prepare's draw of the on-the-fly coin
  fake, mask = forgeries.planted_cue(face, rng)
  assert out['label'] == 1 and 0.03 < out['mask'].mean() < 0.5
  np.testing.assert_array_equal(out['mask'], mask)
  np.testing.assert_allclose(out['image'], examples.normalize(fake, recipe.mean, recipe.std))
  # Never with probability 0; a blend artefact is a self-blend, not the cue.
  kept = examples.prepare(example, examples.Recipe(
      image_size=128, mean=(0.5,) * 3, std=(0.5,) * 3, artefact='planted'),
      np.random.default_rng(5))
  assert kept['label'] == 0 and not kept['mask'].any()


def test_planted_presets_make_their_fakes_on_the_fly_and_old_workdirs_keep_theirs(tmp_path):
  import json  # pylint: disable=g-import-not-at-top
  import importlib  # pylint: disable=g-import-not-at-top
  from fjax import run  # pylint: disable=g-import-not-at-top
  for name in ('xception', 'focus', 'msccnet', 'local_similarity', 'semantic_noise', 'aunet'):
    c = importlib.import_module(f'configs.{name}').get_config('planted')
    assert (c.dataset.train_real_only, c.input.artefact) == (True, 'planted'), name
    assert c.input.self_blend_prob > 0 or c.input.tamper.pairs, name
  # A workdir written when the option was input.tamper.artefact keeps its artefact.
  c = importlib.import_module('configs.aunet').get_config('planted').to_dict()
  c['input']['tamper']['artefact'] = c['input'].pop('artefact')
  (tmp_path / 'config.json').write_text(json.dumps(c))
  saved = run.saved_config(str(tmp_path))
  assert saved.input.artefact == 'planted' and 'artefact' not in saved.input.tamper


def test_planted_preset_trains_on_real_faces_made_fake_on_the_fly(tmp_path):
  """The preset's training loader on planted_tiny: only the split's real faces are read,
  about half come out as planted fakes with hard-edged ellipse masks, the rest real with
  empty masks."""
  import importlib  # pylint: disable=g-import-not-at-top
  from data_builders import build  # pylint: disable=g-import-not-at-top
  from fjax.data import loaders  # pylint: disable=g-import-not-at-top
  build.build('demo_forgeries', 'planted_tiny', str(tmp_path))
  config = importlib.import_module('configs.local_similarity').get_config('planted,test')
  config.dataset.name, config.dataset.data_dir = 'demo_forgeries/planted_tiny', str(tmp_path)
  config.input.image_size = 64  # the set's own size: no resize softens the mask's edge
  source = loaders.train_source(config)
  assert {int(source[i]['label']) for i in range(len(source))} == {0}
  loader = iter(loaders.train_loader(config, 12))  # 13 reals: three epochs' worth
  batches = [next(loader) for _ in range(3)]
  batch = {k: np.concatenate([b[k] for b in batches]) for k in ('label', 'mask')}
  fake = batch['label'] == 1
  assert 0.2 < fake.mean() < 0.8
  assert not batch['mask'][~fake].any()
  masks = batch['mask'][fake]
  assert np.isin(masks, (0.0, 1.0)).all() and (masks.mean((1, 2)) > 0.02).all()
