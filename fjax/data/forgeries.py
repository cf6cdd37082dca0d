"""More kinds of fakes with exact masks for the demo sets (besides self-blending): a
landmark-aligned face swap across identities, a local edit of one facial region, and the
planted cue (faint noise in a random region: demo_forgeries/planted).
NumPy/OpenCV with an explicit `np.random.Generator`; masks in [0, 1], float32."""
from __future__ import annotations

import cv2
import numpy as np

from fjax.data import labels, self_blend


def _colour_transfer(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """Matches the source's per-channel LAB mean and std to the target's inside `mask`."""
  src = cv2.cvtColor(source, cv2.COLOR_RGB2LAB).astype(np.float32)
  tgt = cv2.cvtColor(target, cv2.COLOR_RGB2LAB).astype(np.float32)
  m = mask > 0.5
  if m.sum() < 16:
    return source
  out = (src - src[m].mean(0)) / (src[m].std(0) + 1e-6) * tgt[m].std(0) + tgt[m].mean(0)
  return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def face_swap(target: np.ndarray, target_lm: np.ndarray, donor: np.ndarray,
              donor_lm: np.ndarray, rng: np.random.Generator):
  """The donor's face warped onto the target by the similarity transform that best maps
  the donor's 68 landmarks onto the target's, colour-matched, and blended through the
  target's blurred landmark hull. Returns (fake uint8, mask float32)."""
  h, w = target.shape[:2]
  m, _ = cv2.estimateAffinePartial2D(donor_lm.astype(np.float32), target_lm.astype(np.float32))
  if m is None:
    raise ValueError('landmarks do not define a similarity transform')
  warped = cv2.warpAffine(donor, m, (w, h), borderMode=cv2.BORDER_REFLECT)
  mask = self_blend.deformed_mask(target_lm, (h, w), rng)
  warped = _colour_transfer(warped, target, mask)
  alpha = mask[..., None]
  fake = alpha * warped.astype(np.float32) + (1 - alpha) * target.astype(np.float32)
  return np.round(fake).astype(np.uint8), mask.astype(np.float32)


# Regions an edit may touch: the eyes, the nose and the mouth (indices into AU_REGIONS).
EDIT_REGIONS = (4, 5, 8, 13, 14)


def local_edit(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator):
  """One facial region (an eye, the nose or the mouth: its AU ellipse, dilated and
  blurred) re-rendered with a colour shift and a blur or sharpening, the way expression
  edits change only part of a face. Returns (fake uint8, mask float32)."""
  h = image.shape[0]
  region = labels.au_ellipses(landmarks, h)[..., rng.choice(EDIT_REGIONS)]
  grow = max(3, int(0.05 * h)) | 1
  region = cv2.dilate(region, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow, grow)))
  mask = cv2.GaussianBlur(region, (0, 0), max(1.0, 0.02 * h))
  mask /= max(float(mask.max()), 1e-6)
  x = image.astype(np.float32)
  x = x * rng.uniform(0.8, 1.2, size=3) + rng.uniform(-20, 20, size=3)
  if rng.random() < 0.5:
    x = cv2.GaussianBlur(x, (0, 0), rng.uniform(1.0, 2.5))
  else:
    x = x + rng.uniform(1.0, 2.0) * (x - cv2.GaussianBlur(x, (0, 0), 1.5))
  alpha = mask[..., None]
  fake = alpha * np.clip(x, 0, 255) + (1 - alpha) * image.astype(np.float32)
  return np.round(fake).astype(np.uint8), mask.astype(np.float32)


# The planted cue (issue 18): faint grey-level noise, learnable by construction, with an
# exact mask: N(0, 10^2) grey levels per 2 x 2 block (so the demo's 2x downscale keeps
# all of it), the same in R, G and B (a fine grain, not a colour change). Tried first and
# not learnt by the Xception demo in 240 steps (test AUC 0.51, pixel AUC 0.62 both): a
# grating of amplitude 6 and period 8 px, and per-pixel noise of sigma 8 (sigma 4 after
# the downscale).
PLANTED_SIGMA, PLANTED_BLOCK = 10.0, 2


def plant(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """`image` + N(0, PLANTED_SIGMA^2) grey-level noise, constant on PLANTED_BLOCK-pixel
  blocks, where `mask` > 0.5 (hard edge, so the mask is exact); uint8 RGB in and out."""
  h, w = image.shape[:2]
  b = PLANTED_BLOCK
  noise = rng.normal(0.0, PLANTED_SIGMA, (-(-h // b), -(-w // b))).astype(np.float32)
  noise = np.repeat(np.repeat(noise, b, 0), b, 1)[:h, :w]
  inside = (mask > 0.5)[..., None]
  return np.clip(np.round(image.astype(np.float32) + inside * noise[..., None]), 0,
                 255).astype(np.uint8)


def planted_cue(image: np.ndarray, rng: np.random.Generator):
  """A fake whose only change is the planted noise inside a random ellipse (centre in
  the middle 60 % of the crop, semi-axes 12-30 % of its side, any angle). Returns (fake
  uint8, mask float32 in {0, 1})."""
  h = image.shape[0]
  centre = tuple(int(v) for v in rng.uniform(0.2 * h, 0.8 * h, size=2))
  axes = tuple(int(v) for v in rng.uniform(0.12 * h, 0.3 * h, size=2))
  mask = np.zeros(image.shape[:2], np.uint8)
  cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
  mask = mask.astype(np.float32)
  return plant(image, mask, rng), mask
