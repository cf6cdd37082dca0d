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
