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


# MSCCNet's released training pipeline (configs/mscc/mscc_resnet_ff_all.py): Resize to
# 520 * s px keeping the ratio, s ~ U(0.5, 2), RandomCrop 512, flip, mmseg's
# PhotoMetricDistortion, Normalize, centred Padding to 512. The 520 / 512 ratio is kept
# for other input sizes.
RESCALE_BASE = 520 / 512


def rescale_crop(image: np.ndarray, mask: np.ndarray, landmarks: np.ndarray,
                 rng: np.random.Generator, size: int, scale_range=(0.5, 2.0),
                 max_ratio: float = 0.75, tries: int = 10):
  """The released Resize (keep_ratio) and RandomCrop(one_category_max_ratio) for an
  image, its [0, 1] mask and its landmarks: the image is resized (bilinear; the mask
  nearest) so that its sides fit int(size * 520/512 * s), s ~ U(scale_range); a crop of
  at most size x size is drawn up to `tries` times until both classes of the mask
  (> 0.5) are in it and neither covers `max_ratio` of it (the last draw is kept, so a
  real face's crop is uniform). Returns (image, mask, landmarks) of the crop, which is
  smaller than size x size when the rescaled image is: `pad_center` pads it."""
  h, w = image.shape[:2]
  out = int(size * RESCALE_BASE * rng.uniform(*scale_range))
  factor = min(out / max(h, w), out / min(h, w))
  dw, dh = int(w * factor + 0.5), int(h * factor + 0.5)
  image = cv2.resize(image, (dw, dh), interpolation=cv2.INTER_LINEAR)
  mask = cv2.resize(mask, (dw, dh), interpolation=cv2.INTER_NEAREST)
  landmarks = landmarks * np.float32([dw / w, dh / h])
  ch, cw = min(size, dh), min(size, dw)
  for _ in range(tries):
    top, left = int(rng.integers(0, dh - ch + 1)), int(rng.integers(0, dw - cw + 1))
    fake = float((mask[top:top + ch, left:left + cw] > 0.5).mean())
    if 0 < fake < 1 and max(fake, 1 - fake) < max_ratio:
      break
  return (image[top:top + ch, left:left + cw], mask[top:top + ch, left:left + cw],
          landmarks - np.float32([left, top]))


def pad_center(x: np.ndarray, size: int, value) -> tuple[np.ndarray, tuple[int, int]]:
  """x padded with `value` (a scalar or one value per channel) to size x size, centred
  as the released Padding; returns the padded array and the (left, top) offset."""
  h, w = x.shape[:2]
  top, left = (size - h) // 2, (size - w) // 2
  if (h, w) == (size, size):
    return x, (0, 0)
  out = np.empty((size, size) + x.shape[2:], x.dtype)
  out[...] = value
  out[top:top + h, left:left + w] = x
  return out, (left, top)


def photometric_distortion(image: np.ndarray, rng: np.random.Generator,
                           brightness: float = 32, contrast=(0.5, 1.5),
                           saturation=(0.5, 1.5), hue: int = 18) -> np.ndarray:
  """uint8 RGB -> uint8 RGB: mmseg's PhotoMetricDistortion as MSCCNet's loader runs it.
  Each step with probability 1/2: brightness + U(-32, 32); contrast x U(0.5, 1.5) first
  or last (1/2 each); saturation x U(0.5, 1.5); hue + an integer in [-18, 18), each
  clipped to uint8. The released loader reads BGR images with OpenCV and converts with
  COLOR_RGB2HSV, so its hue and saturation act on the channel-swapped image: that is
  what this does (saturation is the same either way; the hue shift's sign flips)."""
  x = np.ascontiguousarray(image[..., ::-1])  # the released order of operations on BGR
  convert = lambda a, alpha=1.0, beta=0.0: np.clip(
      a.astype(np.float32) * alpha + beta, 0, 255).astype(np.uint8)
  if rng.integers(2):
    x = convert(x, beta=rng.uniform(-brightness, brightness))
  mode = rng.integers(2)
  if mode == 1 and rng.integers(2):
    x = convert(x, alpha=rng.uniform(*contrast))
  if rng.integers(2):
    hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)
    hsv[..., 1] = convert(hsv[..., 1], alpha=rng.uniform(*saturation))
    x = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
  if rng.integers(2):
    hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0].astype(int) + rng.integers(-hue, hue)) % 180
    x = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
  if mode == 0 and rng.integers(2):
    x = convert(x, alpha=rng.uniform(*contrast))
  return np.ascontiguousarray(x[..., ::-1])
