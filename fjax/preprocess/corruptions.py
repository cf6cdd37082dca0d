"""The seven perturbations of DeeperForensics-1.0 at five levels each (FoCus table IV):
colour saturation, colour contrast, block-wise occlusion, white Gaussian noise, Gaussian
blur, pixelation and JPEG compression (video compression in the original, JPEG here:
single frames). uint8 RGB in, uint8 RGB out; random parts draw from the given Generator.
"""
from __future__ import annotations

import cv2
import numpy as np

# kind -> the parameter at levels 1..5 (DeeperForensics-1.0's values where it has them).
LEVELS = {
    'saturation': (0.4, 0.3, 0.2, 0.1, 0.0),          # factor on the HSV saturation
    'contrast': (0.85, 0.725, 0.6, 0.475, 0.35),     # factor on the deviation from the mean
    'block_occlusion': (16, 32, 48, 64, 80),          # number of random grey blocks
    'gaussian_noise': (0.001, 0.002, 0.005, 0.01, 0.05),  # variance on [0, 1] pixels
    'gaussian_blur': (7, 9, 13, 17, 21),              # kernel size (sigma from OpenCV)
    'pixelation': (2, 3, 4, 5, 6),                    # down-sampling factor
    'jpeg': (90, 70, 50, 30, 10),                     # JPEG quality (our choice)
}


def corrupt(image: np.ndarray, kind: str, level: int, rng: np.random.Generator) -> np.ndarray:
  """`image` perturbed by `kind` at `level` (1..5)."""
  p = LEVELS[kind][level - 1]
  h, w = image.shape[:2]
  x = image.astype(np.float32)
  if kind == 'saturation':
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] *= p
    return cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB)
  if kind == 'contrast':
    x = (x - x.mean()) * p + x.mean()
  elif kind == 'block_occlusion':
    side = max(1, h // 16)
    for _ in range(p):
      i, j = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
      x[i:i + side, j:j + side] = 128.0
  elif kind == 'gaussian_noise':
    x = x + rng.normal(0.0, np.sqrt(p) * 255.0, x.shape)
  elif kind == 'gaussian_blur':
    x = cv2.GaussianBlur(x, (p, p), 0)
  elif kind == 'pixelation':
    small = cv2.resize(image, (max(1, w // p), max(1, h // p)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
  elif kind == 'jpeg':
    ok, buf = cv2.imencode('.jpg', image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(p)])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy() if ok else image
  else:
    raise ValueError(f'unknown corruption {kind!r}')
  return np.clip(np.round(x), 0, 255).astype(np.uint8)
