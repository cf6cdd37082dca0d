"""The augmentations of SBI's released training code (Shiohara & Yamasaki, CVPR 2022;
mapooon/SelfBlendedImages, `src/utils/sbi.py`), built with albumentations as SBI builds
them, for AUNet's tampered pairs (`input.tamper.sbi_augment`).

- Source transforms (eq. 8 of AUNet; SBI's source-target augmentation), applied to the
  source or to the target, each with probability 0.5: RGB shift (+-20 per channel,
  p=0.3), hue/saturation/value shift (limits +-0.3 on the uint8 scale, p=1: in effect an
  RGB -> HSV -> RGB round trip plus a shift of at most one level, as released),
  brightness/contrast (+-0.1, p=1), then one of a downscale (by 2 or 4, nearest down and
  bilinear back up) or a sharpening (alpha 0.2-0.5, lightness 0.5-1.0).
- The source then moves: an affine shift of +-3% (x) and +-1.5% (y) of the side and a
  scale in [0.95, 1/0.95] per axis, constant (black) border.
- Training transforms, applied once to the real face and its fake with the same drawn
  parameters (albumentations' additional_targets): RGB shift (+-20, p=0.3), HSV (+-0.3,
  p=0.3), brightness/contrast (+-0.3, p=0.3), JPEG at quality 40-100 (p=0.5).
- The final crop (`final_crop`, `src/utils/funcs.py` crop_face with crop_by_bbox=True in
  the train phase): the face box widened on each side by a quarter of its width (height)
  times U(0.2, 0.8), the same window for the real face and its fake.

Every call is reproducible: albumentations draws from its own generators (not the global
`random` / `np.random` state), which `run` seeds from the example's `np.random.Generator`
before each call, so a resumed run sees the same images. The pipelines are built per call
(half a millisecond), so no state is shared between threads or examples.
"""
from __future__ import annotations

import os
import random

os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')  # no version check over the network
import albumentations as A  # pylint: disable=g-import-not-at-top
import cv2  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

DOWNSCALE_RATIOS = (2, 4)


class RandomDownScale(A.ImageOnlyTransform):
  """SBI's frequency transform: shrink by a ratio drawn from DOWNSCALE_RATIOS with
  nearest-neighbour sampling, then resize back to the input size bilinearly."""

  def __init__(self, p: float = 1.0):
    super().__init__(p=p)

  def get_params(self):
    return {'ratio': DOWNSCALE_RATIOS[int(self.random_generator.integers(len(DOWNSCALE_RATIOS)))]}

  def apply(self, img, ratio=2, **params):
    h, w = img.shape[:2]
    small = cv2.resize(img, (int(w / ratio), int(h / ratio)), interpolation=cv2.INTER_NEAREST)
    out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return out.reshape(img.shape)

  def get_transform_init_args_names(self):
    return ()


def _colour(rgb_p: float, hsv_p: float, bc_limit: float, bc_p: float) -> list:
  return [
      A.RGBShift(r_shift_limit=(-20, 20), g_shift_limit=(-20, 20), b_shift_limit=(-20, 20),
                 p=rgb_p),
      A.HueSaturationValue(hue_shift_limit=(-0.3, 0.3), sat_shift_limit=(-0.3, 0.3),
                           val_shift_limit=(-0.3, 0.3), p=hsv_p),
      A.RandomBrightnessContrast(brightness_limit=(-bc_limit, bc_limit),
                                 contrast_limit=(-bc_limit, bc_limit), p=bc_p),
  ]


def source_pipeline(record: bool = False) -> A.Compose:
  """SBI's get_source_transforms; `record` keeps each applied transform's parameters in
  the output's `applied_transforms` (for tests)."""
  return A.Compose([
      A.Compose(_colour(0.3, 1.0, 0.1, 1.0), p=1.0),
      A.OneOf([RandomDownScale(p=1.0),
               A.Sharpen(alpha=(0.2, 0.5), lightness=(0.5, 1.0), p=1.0)], p=1.0),
  ], p=1.0, save_applied_params=record)


def affine_pipeline() -> A.Compose:
  """The image part of SBI's randaffine (the source's shift and scale)."""
  return A.Compose([A.Affine(translate_percent={'x': (-0.03, 0.03), 'y': (-0.015, 0.015)},
                             scale=(0.95, 1 / 0.95), fit_output=False, p=1.0)], p=1.0)


def training_pipeline(record: bool = False) -> A.Compose:
  """SBI's get_transforms: `image` and `image1` receive the same parameters."""
  return A.Compose([*_colour(0.3, 0.3, 0.3, 0.3),
                    A.ImageCompression(quality_range=(40, 100), p=0.5)],
                   additional_targets={'image1': 'image'}, p=1.0, save_applied_params=record)


def run(pipeline: A.Compose, rng: np.random.Generator, **images) -> dict:
  """Calls `pipeline` on uint8 images with its generators seeded from one draw of `rng`
  (shared by all its transforms, so their draws are independent of each other)."""
  seed = int(rng.integers(2 ** 63))
  pipeline.set_random_state(np.random.default_rng(seed), random.Random(seed))
  return pipeline(**{k: np.ascontiguousarray(v, np.uint8) for k, v in images.items()})


def source_and_target(image: np.ndarray, rng: np.random.Generator):
  """(I_s, I_t) from one uint8 face as SBI's self_blending makes them: the source
  transforms go to the source or to the target (p=0.5 each), then the source moves."""
  if rng.random() < 0.5:
    source, target = run(source_pipeline(), rng, image=image)['image'], image.copy()
  else:
    source, target = image.copy(), run(source_pipeline(), rng, image=image)['image']
  return run(affine_pipeline(), rng, image=source)['image'], target


def training(real: np.ndarray, fake: np.ndarray, rng: np.random.Generator):
  """SBI's training transforms on a real face and its fake, same parameters for both."""
  out = run(training_pipeline(), rng, image=fake, image1=real)
  return out['image1'], out['image']


FACE_BOX = 1.3  # a stored crop's side over its detector box's side (faces.square_box)


def final_crop(side: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
  """(y0, y1, x0, x1) of SBI's training crop in a stored face crop of `side` px: the face
  box (the centred square of side / FACE_BOX) with margins w/4 * U(0.2, 0.8) drawn per side,
  rounded and clipped as crop_face rounds and clips them to its image."""
  w = side / FACE_BOX
  x0 = y0 = (side - w) / 2
  x1 = y1 = x0 + w
  w0, w1, h0, h1 = (w / 4 * (rng.random() * 0.6 + 0.2) for _ in range(4))
  return (max(0, int(y0 - h0)), min(side, int(y1 + h1) + 1),
          max(0, int(x0 - w0)), min(side, int(x1 + w1) + 1))


def crop_pair(real, fake, mask, landmarks, rng: np.random.Generator):
  """SBI's final crop of a real face, its fake and the fake's mask (one window,
  `final_crop`), with the landmarks moved into it."""
  y0, y1, x0, x1 = final_crop(real.shape[0], rng)
  return (real[y0:y1, x0:x1], fake[y0:y1, x0:x1], mask[y0:y1, x0:x1],
          landmarks - np.float32([x0, y0]))
