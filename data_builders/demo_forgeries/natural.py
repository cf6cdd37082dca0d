"""Natural images that installed packages ship, as an unlimited source of real crops for
the planted cue (demo_forgeries/planted_natural, issue 28): random square crops (side
20-100 % of the image's shorter side), random horizontal flips, resized to the crop size.
Splits are disjoint by source image (two views of one scene share a split), so the test
crops come from images no training crop was cut from.
"""
from __future__ import annotations

import os

import cv2
import numpy as np

from data_builders.demo_forgeries import media
from fjax.data import faces

# (source, split): 'skimage:<name>' a file of scikit-image's data directory (the ones it
# ships, no download), 'feat:' / 'insightface:' the demo faces' media (media.py), a video
# as 'feat:<file>@<frames>' (evenly spaced frames). Synthetic charts, logos, binary
# silhouettes and text pages are left out.
SOURCES = (
    ('skimage:astronaut.png', 'train'), ('skimage:brick.png', 'train'),
    ('skimage:camera.png', 'train'), ('skimage:cell.png', 'train'),
    ('skimage:clock_motion.png', 'train'), ('skimage:grass.png', 'train'),
    ('skimage:hubble_deep_field.jpg', 'train'), ('skimage:ihc.png', 'train'),
    ('skimage:microaneurysms.png', 'train'), ('skimage:motorcycle_left.png', 'train'),
    ('skimage:motorcycle_right.png', 'train'),
    ('feat:0-f1-su-ph.jpg', 'train'), ('feat:0-f15-hao-ph.jpg', 'train'),
    ('feat:single_face.jpg', 'train'), ('feat:multi_face.jpg', 'train'),
    ('feat:BWPictureHuman.jpg', 'train'), ('feat:WolfgangLanger_Pexels.mp4@8', 'train'),
    ('insightface:Tom_Hanks_54745.png', 'train'), ('insightface:mask_black.jpg', 'train'),
    ('insightface:mask_blue.jpg', 'train'),
    ('skimage:coins.png', 'validation'), ('skimage:retina.jpg', 'validation'),
    ('feat:15-f13-anc-ph.jpg', 'validation'), ('insightface:mask_green.jpg', 'validation'),
    ('skimage:coffee.png', 'test'), ('skimage:chelsea.png', 'test'),
    ('skimage:rocket.jpg', 'test'), ('skimage:moon.png', 'test'),
    ('skimage:gravel.png', 'test'), ('feat:45-m7-di-ph.jpg', 'test'),
    ('feat:single_face.mp4@8', 'test'), ('insightface:t1.jpg', 'test'),
    ('insightface:mask_white.jpg', 'test'),
)
CROP_SCALE = (0.2, 1.0)  # crop side / the image's shorter side


def _rgb(image: np.ndarray) -> np.ndarray:
  """uint8 RGB of a grey, RGB or RGBA image."""
  if image.ndim == 2:
    return np.repeat(image[..., None], 3, -1)
  return np.ascontiguousarray(image[..., :3])


def load(source: str) -> list[np.ndarray]:
  """The RGB frames of one source (one for a photo)."""
  package, name = source.split(':', 1)
  if package == 'skimage':
    import skimage.io  # pylint: disable=g-import-not-at-top
    return [_rgb(skimage.io.imread(os.path.join(media.package_dir('skimage'), 'data', name)))]
  name, _, frames = name.partition('@')
  path = media.feat_data(name) if package == 'feat' else media.insightface_image(name)
  if frames:
    return [f for _, f in faces.read_video_frames(path, int(frames))]
  return [faces.read_image(path)]


def random_crop(image: np.ndarray, size: int, rng: np.random.Generator):
  """(crop uint8 [size, size, 3], box x0, y0, x1, y1 in the image): a square of side
  CROP_SCALE of the shorter side at a uniform position, flipped left-right half the
  time, resized to `size` (area averaging down, bilinear up)."""
  h, w = image.shape[:2]
  side = max(8, int(round(rng.uniform(*CROP_SCALE) * min(h, w))))
  y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
  crop = image[y:y + side, x:x + side]
  if rng.random() < 0.5:
    crop = crop[:, ::-1]
  interp = cv2.INTER_AREA if side >= size else cv2.INTER_LINEAR
  crop = cv2.resize(np.ascontiguousarray(crop), (size, size), interpolation=interp)
  return crop, np.array([x, y, x + side, y + side], np.float32)


def crops(split: str, count: int, size: int, rng: np.random.Generator):
  """Yields (source, frame index, crop, box) for `count` crops of the split's sources,
  the sources (each frame of a video one image) taken in turn."""
  images = [(s, k, f) for s, sp in SOURCES if sp == split for k, f in enumerate(load(s))]
  for i in range(count):
    source, frame, image = images[i % len(images)]
    yield (source, frame, *random_crop(image, size, rng))
