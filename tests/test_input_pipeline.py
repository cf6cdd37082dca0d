"""The grain input pipeline's transforms: labels travel with the image through the flip,
mask sources, real-only training."""
from __future__ import annotations

import numpy as np
import pytest

from configs import xception
from fjax import input_pipeline
from fjax.errors import UserError
from fjax.preprocess import augment, labels


def _config(data_dir, **input_kw):
  config = xception.get_config('test')
  config.dataset.data_dir = data_dir
  for k, v in input_kw.items():
    setattr(config.input, k, v)
  return config


def _outcomes(example, config):
  """prepare() under many seeds, split by whether the flip happened."""
  plain = input_pipeline.prepare(example, config, None)
  flipped = None
  for seed in range(20):
    out = input_pipeline.prepare(example, config, np.random.default_rng(seed))
    if not np.array_equal(out['image'], plain['image']):
      flipped = out
      break
  return plain, flipped


def test_labels_flip_with_the_image(data_dir):
  config = _config(data_dir, labels=('noise', 'au_maps'), image_size=48)
  source = input_pipeline.data_source(config, 'train')
  example = next(source[i] for i in range(len(source)) if source[i]['label'] == 1)
  plain, flipped = _outcomes(example, config)
  assert flipped is not None
  assert plain['noise'].shape == (48, 48, 3) and plain['au_maps'].shape == (48, 48, 15)
  for key in ('image', 'mask', 'noise', 'au_maps'):
    np.testing.assert_allclose(flipped[key], plain[key][:, ::-1], atol=1e-6, err_msg=key)
  assert plain['mask'].any()
  # The noise label is the residual of the image the model sees (the crop at 48 px).
  image = input_pipeline._resize(example['image'], 48)  # pylint: disable=protected-access
  ref = labels.noise_residual(image, 5.0)
  np.testing.assert_allclose(plain['noise'], ref, atol=1e-5)


def test_mask_sources(data_dir):
  config = _config(data_dir)
  source = input_pipeline.data_source(config, 'train')
  fake = next(source[i] for i in range(len(source)) if source[i]['label'] == 1)
  config.dataset.mask_source = 'diff'
  diff = input_pipeline.read_mask(fake, 'diff')
  np.testing.assert_array_equal(input_pipeline.read_mask(fake, 'diff@0.1'),
                                (diff > 0.1).astype(np.float32))
  assert input_pipeline.read_mask(fake, 'msccnet').any()
  config.dataset.mask_source = 'focus_maps'
  with pytest.raises(UserError, match='is not one of'):
    input_pipeline.data_source(config, 'train')


def test_real_only_training_source(data_dir):
  config = _config(data_dir, self_blend_prob=0.5)
  config.dataset.train_real_only = True
  full = input_pipeline.data_source(config, 'train')
  reals = input_pipeline.real_only(config, 'train', full)
  assert 0 < len(reals) < len(full)
  assert all(reals[i]['label'] == 0 for i in range(len(reals)))
  rng = np.random.default_rng(0)
  made = [input_pipeline.prepare(reals[i % len(reals)], config, rng) for i in range(40)]
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
