"""Self-blended images (Shiohara & Yamasaki, CVPR 2022): a fake made from one real face.

A source copy of the face is altered (colour, contrast, blur or sharpening, a small shift
and scale) and blended into the original through a blurred, randomly deformed convex hull
of the landmarks. The blend mask is returned exactly, so every fake has a true mask.
The alteration and the mask deformation are fjax's own lighter versions of SBI's (no HSV,
no downscaling, no elastic deformation, the target never altered); the demo data set's
self-blends are built with them. SBI's released transforms are in `sbi_augment`.
Pure NumPy/OpenCV with an explicit `np.random.Generator`: usable in a builder or on the
fly in a grain `RandomMap`.
"""
from __future__ import annotations

import cv2
import numpy as np

BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)


def hull_mask(landmarks: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
  """Filled convex hull of the points as a float32 {0, 1} map of shape hw."""
  mask = np.zeros(hw, np.uint8)
  cv2.fillConvexPoly(mask, cv2.convexHull(np.round(landmarks).astype(np.int32)), 1)
  return mask.astype(np.float32)


def _odd(n) -> int:
  return int(n) // 2 * 2 + 1


def deformed_mask(landmarks: np.ndarray, hw, rng: np.random.Generator) -> np.ndarray:
  """Hull, randomly eroded or dilated, then blurred, normalised to a max of 1."""
  mask = hull_mask(landmarks, hw)
  size = max(hw)
  k = _odd(rng.uniform(0.02, 0.08) * size)
  kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
  mask = cv2.erode(mask, kernel) if rng.random() < 0.5 else cv2.dilate(mask, kernel)
  blur = _odd(rng.uniform(0.05, 0.2) * size)
  mask = cv2.GaussianBlur(mask, (blur, blur), 0)
  return mask / max(float(mask.max()), 1e-6)


def alter_source(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """uint8 RGB -> float32 in [0, 255]: contrast x U(0.8, 1.2), brightness +-20, a colour
  cast +-15 per channel, a Gaussian blur (sigma 0.5-1.5) or an unsharp mask (amount
  0.5-1.5), then a shift of +-3% and a scale of 0.95-1.05 (reflected border)."""
  x = image.astype(np.float32)
  x = (x - x.mean()) * rng.uniform(0.8, 1.2) + x.mean() + rng.uniform(-20, 20)
  x = x + rng.uniform(-15, 15, size=3)  # colour cast
  h, w = x.shape[:2]
  if rng.random() < 0.5:
    x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 1.5))
  else:
    x = x + rng.uniform(0.5, 1.5) * (x - cv2.GaussianBlur(x, (0, 0), 1.0))
  s = rng.uniform(0.95, 1.05)
  m = np.float32([[s, 0, (1 - s) * w / 2 + rng.uniform(-0.03, 0.03) * w],
                  [0, s, (1 - s) * h / 2 + rng.uniform(-0.03, 0.03) * h]])
  x = cv2.warpAffine(x, m, (w, h), borderMode=cv2.BORDER_REFLECT)
  return np.clip(x, 0, 255)


def blend(target: np.ndarray, source: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """source * mask + target * (1 - mask), rounded to uint8 (SBI; AUNet eq. 9)."""
  mask = mask if mask.ndim == 3 else mask[..., None]
  fake = mask * source.astype(np.float32) + (1 - mask) * target.astype(np.float32)
  return np.round(fake).astype(np.uint8)


def self_blend(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator):
  """Returns (fake uint8 image, mask float32 in [0, 1]) for an RGB uint8 face crop.

  The mask is the blend support (before the blend ratio): where it is > 0.5 the face
  region was replaced by the altered source.
  """
  mask = deformed_mask(landmarks, image.shape[:2], rng)
  alpha = (mask * rng.choice(BLEND_RATIOS))[..., None]
  return blend(image, alter_source(image, rng), alpha), mask.astype(np.float32)
