"""Whole-image training augmentations (host side, explicit `np.random.Generator`), applied
to real and fake faces alike after any self-blending, so that global appearance (light,
colour, compression) carries no label: the detector must look at blending traces."""
from __future__ import annotations

import cv2
import numpy as np


def photometric(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """uint8 RGB -> uint8 RGB: brightness/contrast, saturation and hue jitter, then JPEG
  re-compression (quality 40..95) with probability 0.5."""
  x = image.astype(np.float32)
  mean = x.mean()
  x = (x - mean) * rng.uniform(0.7, 1.3) + mean + rng.uniform(-30, 30)
  hsv = cv2.cvtColor(np.clip(x, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.int32)
  hsv[..., 0] = (hsv[..., 0] + rng.integers(-8, 9)) % 180  # OpenCV hue is 0..179
  hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.7, 1.3), 0, 255)
  x = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
  if rng.random() < 0.5:
    ok, buf = cv2.imencode('.jpg', x[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY,
                                                  int(rng.integers(40, 96))])
    if ok:
      x = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
  return np.ascontiguousarray(x)


def random_crop(image: np.ndarray, mask: np.ndarray, landmarks: np.ndarray,
                rng: np.random.Generator, min_scale: float):
  """A square crop of side U(min_scale, 1) x the face crop's at a uniform position, for
  the image, its mask and its landmarks (shifted into the crop): the face moves and
  scales, so a detector cannot memorise the training faces pixel by pixel."""
  size = image.shape[0]
  side = int(round(size * rng.uniform(min_scale, 1.0)))
  y, x = (int(rng.integers(0, size - side + 1)) for _ in range(2))
  return (image[y:y + side, x:x + side], mask[y:y + side, x:x + side],
          landmarks - np.float32([x, y]))
