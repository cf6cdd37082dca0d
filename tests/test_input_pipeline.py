"""The grain input pipeline's transforms: labels travel with the image through the flip,
mask sources, real-only training."""
from __future__ import annotations

import numpy as np
import pytest

from configs import xception
from fjax.data import examples, loaders, masks, selection, sources
from fjax.util.errors import UserError
from fjax.data import augment, labels


def _config(data_dir, **input_kw):
  config = xception.get_config('test')
  config.dataset.data_dir = data_dir
  for k, v in input_kw.items():
    setattr(config.input, k, v)
  return config


def _outcomes(example, config):
  """prepare() under many seeds, split by whether the flip happened."""
  recipe = examples.Recipe.of(config)
  plain = examples.prepare(example, recipe, None)
  flipped = None
  for seed in range(20):
    out = examples.prepare(example, recipe, np.random.default_rng(seed))
    if not np.array_equal(out['image'], plain['image']):
      flipped = out
      break
  return plain, flipped


def test_labels_flip_with_the_image(data_dir):
  config = _config(data_dir, labels=('noise', 'au_maps'), image_size=48)
  source = sources.data_source(config, 'train')
  example = next(source[i] for i in range(len(source)) if source[i]['label'] == 1)
  plain, flipped = _outcomes(example, config)
  assert flipped is not None
  assert plain['noise'].shape == (48, 48, 3) and plain['au_maps'].shape == (48, 48, 15)
  for key in ('image', 'mask', 'noise', 'au_maps'):
    np.testing.assert_allclose(flipped[key], plain[key][:, ::-1], atol=1e-6, err_msg=key)
  assert plain['mask'].any()
  # The noise label is the residual of the image the model sees (the crop at 48 px).
  image = examples._resize(example['image'], 48)  # pylint: disable=protected-access
  ref = labels.noise_residual(image, 5.0)
  np.testing.assert_allclose(plain['noise'], ref, atol=1e-5)


def test_mask_sources(data_dir):
  config = _config(data_dir)
  source = sources.data_source(config, 'train')
  fake = next(source[i] for i in range(len(source)) if source[i]['label'] == 1)
  config.dataset.mask_source = 'diff'
  diff = masks.read_mask(fake, 'diff')
  np.testing.assert_array_equal(masks.read_mask(fake, 'diff@0.1'),
                                (diff > 0.1).astype(np.float32))
  assert masks.read_mask(fake, 'msccnet').any()
  config.dataset.mask_source = 'focus_maps'
  with pytest.raises(UserError, match='is not one of'):
    sources.data_source(config, 'train')


def test_real_only_training_source(data_dir):
  config = _config(data_dir, self_blend_prob=0.5)
  config.dataset.train_real_only = True
  full = sources.data_source(config, 'train')
  reals = loaders.train_source(config)
  assert 0 < len(reals) < len(full)
  assert all(reals[i]['label'] == 0 for i in range(len(reals)))
  rng = np.random.default_rng(0)
  recipe = examples.Recipe.of(config)
  made = [examples.prepare(reals[i % len(reals)], recipe, rng) for i in range(40)]
  fakes = [m for m in made if m['label'] == 1]
  assert 8 <= len(fakes) <= 32  # about half self-blended on the fly
  assert all(m['mask'].any() for m in fakes)


def test_random_crop_moves_landmarks_and_mask_with_the_image():
  # Each pixel holds its own coordinates, so a crop's pixel at a shifted landmark must
  # read the landmark's original position, and the mask must be cut where the image was.
  size = 200
  ys, xs = np.mgrid[:size, :size]
  image = np.stack([xs, ys, np.zeros_like(xs)], -1).astype(np.uint8)
  mask = (xs % 7 == 0).astype(np.float32)
  landmarks = np.random.default_rng(0).uniform(0, size - 1, (68, 2)).astype(np.float32)
  sides = set()
  for seed in range(10):
    crop, crop_mask, moved = augment.random_crop(image, mask, landmarks,
                                                 np.random.default_rng(seed), 0.6)
    side = crop.shape[0]
    sides.add(side)
    assert crop.shape == (side, side, 3) and crop_mask.shape == (side, side)
    assert 0.6 * size - 1 <= side <= size
    x0, y0 = int(crop[0, 0, 0]), int(crop[0, 0, 1])
    np.testing.assert_array_equal(crop_mask, mask[y0:y0 + side, x0:x0 + side])
    inside = np.all((moved >= 0) & (moved < side), axis=1)
    pts = np.floor(moved[inside]).astype(int)
    np.testing.assert_array_equal(crop[pts[:, 1], pts[:, 0], :2],
                                  np.floor(landmarks[inside]).astype(int))
  assert len(sides) > 1


def test_balance_pairs_each_fake_with_its_identitys_nearest_real():
  # (index, label, identity, frame): identity a has reals at frames 0 and 10, b none.
  rows = [(0, 0, 'a', 0), (1, 0, 'a', 10), (2, 1, 'a', 9), (3, 1, 'a', 4), (4, 1, 'a', 5),
          (5, 0, 'c', 3), (6, 1, 'b', 0)]
  picked, strangers = selection.balance_indices(rows, 'pair')
  # frame 9 -> 10, frame 4 -> 0, frame 5 (a tie) -> the earlier frame 0; b has no real.
  assert picked.tolist() == [2, 1, 3, 0, 4, 0, 6, 0] and strangers == 1  # b: reals in turn
  picked, _ = selection.balance_indices(rows, 'oversample_real')
  assert sorted(picked.tolist()) == [0, 0, 1, 2, 3, 4, 5, 6]  # 4 fakes, reals cycled to 4
  assert selection.balance_indices(rows[:2], 'pair')[0] is None


def test_pair_balanced_source_describes_itself(data_dir):
  import pickle  # pylint: disable=g-import-not-at-top
  config = _config(data_dir, balance='pair')
  source = loaders.train_source(config)
  full = sources.data_source(config, 'train')
  fakes = sum(int(full[i]['label']) for i in range(len(full)))
  assert len(source) == 2 * fakes
  for k in range(0, len(source), 2):
    fake, real = source[k], source[k + 1]
    assert (int(fake['label']), int(real['label'])) == (1, 0)
    assert fake['identity'] == real['identity'] and fake['frame'] == real['frame']
  # Grain's resume check compares reprs across processes; workers get a pickled copy.
  assert '"filters": ["pair"]' in repr(source)
  assert repr(loaders.train_source(config)) == repr(source)
  assert repr(pickle.loads(pickle.dumps(source))) == repr(source)
  config.dataset.train_real_only = True
  with pytest.raises(UserError, match='train_real_only'):
    loaders.train_source(config)


def test_msccnet_rescale_crop_moves_mask_and_landmarks_with_the_image():
  # Channel 0 holds x, channel 1 y: after rescaling by f and cropping, the pixel at a moved
  # landmark reads (about) the landmark's original position; the mask is the right half.
  size = 200
  ys, xs = np.mgrid[:size, :size]
  image = np.stack([xs, ys, np.zeros_like(xs)], -1).astype(np.uint8)
  mask = (xs >= 100).astype(np.float32)
  landmarks = np.random.default_rng(0).uniform(0, size - 1, (68, 2)).astype(np.float32)
  balanced = 0
  for seed in range(20):
    crop, crop_mask, moved = augment.rescale_crop(image, mask, landmarks,
                                                  np.random.default_rng(seed), 64)
    assert crop.shape[:2] == crop_mask.shape and max(crop.shape[:2]) <= 64
    inside = np.all((moved >= 0) & (moved < np.array(crop.shape[1::-1])), axis=1)
    pts = np.floor(moved[inside]).astype(int)
    per_pixel = np.median(np.diff(crop[0, :, 0].astype(float)))  # 1 / the scale factor
    np.testing.assert_allclose(crop[pts[:, 1], pts[:, 0], :2], landmarks[inside],
                               atol=per_pixel + 1.5)
    x = crop[..., 0].astype(float)
    far = np.abs(x - 99.5) > 2  # the bilinear image and nearest mask agree off the edge
    np.testing.assert_array_equal(crop_mask[far], (x[far] >= 100).astype(np.float32))
    fake = crop_mask.mean()
    balanced += 0 < fake < 1 and max(fake, 1 - fake) < 0.75
  assert balanced >= 18  # the crop is redrawn until neither class fills 75 %


def test_msccnet_augment_pads_with_the_mean_colour_and_an_ignored_mask(data_dir):
  config = _config(data_dir, augment='msccnet', hflip=False, image_size=64)
  source = sources.data_source(config, 'train')
  example = next(source[i] for i in range(len(source)) if source[i]['label'] == 1)
  padded, recipe = 0, examples.Recipe.of(config)
  for seed in range(12):
    out = examples.prepare(example, recipe, np.random.default_rng(seed))
    assert out['image'].shape == (64, 64, 3) and out['mask'].shape == (64, 64)
    border = np.abs(out['image'][0]).max(-1) < 1e-5  # the top row of a padded image
    if border.all():
      padded += 1
      assert (out['mask'][0] == examples.IGNORE).all()
  assert 0 < padded < 12  # scales below ~1 pad, above crop
  plain = examples.prepare(example, recipe, None)  # evaluation: resize only
  resized = examples._resize(example['image'], 64)  # pylint: disable=protected-access
  np.testing.assert_array_equal(plain['image'], examples.normalize(
      resized, config.input.mean, config.input.std))


def test_photometric_distortion_keeps_grey_grey():
  grey = np.repeat(np.arange(0, 256, 4, dtype=np.uint8)[None, :, None], 3, -1)
  colour = np.random.default_rng(0).integers(0, 256, (16, 16, 3)).astype(np.uint8)
  changed = 0
  for seed in range(10):
    out = augment.photometric_distortion(grey, np.random.default_rng(seed))
    assert out.dtype == np.uint8 and out.shape == grey.shape
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    again = augment.photometric_distortion(colour, np.random.default_rng(seed))
    np.testing.assert_array_equal(again, augment.photometric_distortion(
        colour, np.random.default_rng(seed)))
    changed += not np.array_equal(again, colour)
  assert changed >= 7
