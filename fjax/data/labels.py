"""Label maps made at build time from aligned real/fake face crops and from landmarks
(NumPy/OpenCV/PyWavelets; host side only).

- `pixel_diff` (MG1) and `diff_mask` (MG2, > 0.1): FoCus's comparison baselines.
- `ssim_map`: SSIM (Wang et al. 2004; Gaussian window sigma 1.5, or a uniform window) of
  two grayscale images.
- `msccnet_mask`: MSCCNet's pixel-level FF++ annotation (sec. 4.1; the authors' released
  script step by step).
- `noise_residual`: Detect-and-Locate's noise label, the wavelet Wiener residual.
- `au_maps`, `partial_face_mask`: AUNet's 15 action-unit regions and tampering mask.
"""
from __future__ import annotations

import cv2
import numpy as np
import pywt
from scipy import ndimage

from fjax.data import self_blend


def gray(image: np.ndarray) -> np.ndarray:
  """uint8 RGB -> float64 grayscale in [0, 255] (ITU-R 601 weights, as OpenCV)."""
  return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def pixel_diff(real: np.ndarray, fake: np.ndarray) -> np.ndarray:
  """MG1: |fake - real| per RGB channel, converted to grayscale, / 255 -> [0, 1]."""
  diff = np.abs(fake.astype(np.float64) - real.astype(np.float64))
  return (gray(diff) / 255.0).astype(np.float32)


def diff_mask(real: np.ndarray, fake: np.ndarray, threshold: float = 0.1) -> np.ndarray:
  """MG2: the MG1 map binarised at `threshold` (0.1 in the papers FoCus compares with)."""
  return (pixel_diff(real, fake) > threshold).astype(np.float32)


def ssim_map(a: np.ndarray, b: np.ndarray, data_range: float = 255.0,
             sigma: float = 1.5, win_size: int | None = None) -> np.ndarray:
  """Per-pixel SSIM of two grayscale images: luminance * contrast-structure terms from
  local moments (K1 0.01, K2 0.03). Gaussian-weighted (`sigma`) with population
  covariances; with `win_size`, a uniform win_size x win_size window with sample
  covariances instead (scikit-image's default window)."""
  a, b = a.astype(np.float64), b.astype(np.float64)
  if win_size:
    blur = lambda x: ndimage.uniform_filter(x, win_size, mode='reflect')
    norm = win_size ** 2 / (win_size ** 2 - 1)  # sample, not population, (co)variances
  else:
    blur = lambda x: ndimage.gaussian_filter(x, sigma, mode='reflect', truncate=3.5)
    norm = 1.0
  mu_a, mu_b = blur(a), blur(b)
  var_a = norm * (blur(a * a) - mu_a ** 2)
  var_b = norm * (blur(b * b) - mu_b ** 2)
  cov = norm * (blur(a * b) - mu_a * mu_b)
  c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
  # SSIM = (2 mu_a mu_b + C1)(2 cov + C2) / ((mu_a^2 + mu_b^2 + C1)(var_a + var_b + C2))
  return ((2 * mu_a * mu_b + c1) * (2 * cov + c2) /
          ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2)))


def ssim_dissimilarity(real: np.ndarray, fake: np.ndarray) -> np.ndarray:
  """The SSIM manipulation map of a pair: 1 - SSIM of the grayscale crops, clipped to
  [0, 1] (FoCus's SSIM baseline)."""
  return np.clip(1.0 - ssim_map(gray(real), gray(fake)), 0, 1).astype(np.float32)


def msccnet_mask(real: np.ndarray, fake: np.ndarray) -> np.ndarray:
  """MSCCNet's annotation of a fake crop (uint8 RGB crops cut with the same box), the
  steps of the authors' released FF++ annotation script in order. Returns float32 {0, 1};
  zeros where the script writes no mask (an identical pair, no contour of > 5 points)."""
  # Grayscale as OpenCV rounds it to uint8, then scaled to [0, 1].
  g_real, g_fake = (cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) / 255.0 for x in (real, fake))
  # SSIM map as scikit-image's default call computes it on float images: 7x7 uniform
  # window, sample covariances, data_range 2 (the float dtype range -1..1 it assumed).
  d = 1.0 - ssim_map(g_fake, g_real, data_range=2.0, win_size=7)
  if not d.max() > d.min():
    return np.zeros(d.shape, np.float32)
  d = (d - d.min()) / (d.max() - d.min())  # min-max normalised dissimilarity
  d = cv2.GaussianBlur(d, (5, 5), 0)
  # Above 0.08, weighted by the fake's intensity; uint8 of that > 0 (black pixels drop).
  m = ((g_fake * (d > 0.08) * 255).astype(np.uint8) > 0).astype(np.uint8) * 255
  m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)), iterations=3)
  # ONE convex hull around the points of every contour (tree retrieval, simple chains)
  # of more than 5 points, filled.
  contours, _ = cv2.findContours(m, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
  points = [c for c in contours if len(c) > 5]
  if not points:
    return np.zeros(d.shape, np.float32)
  hull = cv2.fillConvexPoly(np.zeros_like(m), cv2.convexHull(np.concatenate(points)), 255)
  hull = cv2.erode(hull, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)), iterations=3)
  # 7x7 Gaussian blur of the [0, 1] hull, uint8 of x 255 > 0.
  blur = cv2.GaussianBlur(hull / 255.0, (7, 7), 0)
  return ((blur * 255).astype(np.uint8) > 0).astype(np.float32)


# Manipulation maps computed from an aligned (real, fake) pair, by mask-source name.
PAIR_MAPS = {'msccnet': msccnet_mask, 'diff': pixel_diff, 'ssim': ssim_dissimilarity}


def local_wiener_variance(band: np.ndarray, sigma: float,
                          windows=(3, 5, 7, 9)) -> np.ndarray:
  """Signal variance of a wavelet band: min over square windows of
  max(0, mean_window(c^2) - sigma^2) (Mihcak et al. 1999), symmetric borders."""
  sq = band * band
  est = [np.maximum(ndimage.uniform_filter(sq, w, mode='reflect') - sigma ** 2, 0.0)
         for w in windows]
  return np.min(est, axis=0)


def noise_residual(image: np.ndarray, sigma: float, wavelet: str = 'db4',
                   levels: int = 4) -> np.ndarray:
  """Image minus its wavelet-denoised version, per channel, float32 (H, W, C) on the
  image's [0, 255] scale. In the wavelet domain the residual of a detail coefficient c is
  c * sigma^2 / (var + sigma^2) (local Wiener shrinkage); the approximation is zeroed.
  Crops too small for `levels` use the deepest level PyWavelets allows."""
  image = image.astype(np.float64)
  if image.ndim == 2:
    image = image[..., None]
  h, w, _ = image.shape
  depth = min(levels, pywt.dwt_max_level(min(h, w), pywt.Wavelet(wavelet).dec_len))
  out = np.empty(image.shape, np.float32)
  for ch in range(image.shape[-1]):
    coeffs = pywt.wavedec2(image[..., ch], wavelet, mode='periodization', level=depth)
    resid = [np.zeros_like(coeffs[0])]
    for details in coeffs[1:]:
      resid.append(tuple(c * sigma ** 2 / (local_wiener_variance(c, sigma) + sigma ** 2)
                         for c in details))
    out[..., ch] = pywt.waverec2(resid, wavelet, mode='periodization')[:h, :w]
  return out


# The 15 action-unit regions (AUNet sec. 3.2 names them by FACS action units but lists no
# landmarks): 0-based indices into the 68-point iBUG layout (jaw 0-16, right brow 17-21,
# left brow 22-26, nose 27-35, right eye 36-41, left eye 42-47, outer lips 48-59, inner
# lips 60-67; "right" is the subject's right, on the image's left).
AU_REGIONS = (
    ('AU1 inner brow raiser', (20, 21, 22, 23)),
    ('AU2 outer brow raiser, right', (17, 18, 19)),
    ('AU2 outer brow raiser, left', (24, 25, 26)),
    ('AU4 brow lowerer (glabella)', (21, 22, 27, 39, 42)),
    ('AU5/7 upper lid and lid tightener, right', (36, 37, 38, 39, 40, 41)),
    ('AU5/7 upper lid and lid tightener, left', (42, 43, 44, 45, 46, 47)),
    ('AU6 cheek raiser, right', (1, 2, 3, 31, 40, 41)),
    ('AU6 cheek raiser, left', (13, 14, 15, 35, 46, 47)),
    ('AU9 nose wrinkler', (27, 28, 29, 30, 31, 35)),
    ('AU10 upper lip raiser', (31, 33, 35, 48, 50, 51, 52, 54)),
    ('AU12/15 lip corner, right', (4, 5, 48, 49, 59, 60)),
    ('AU12/15 lip corner, left', (11, 12, 53, 54, 55, 64)),
    ('AU17 chin raiser', (6, 7, 8, 9, 10, 56, 57, 58)),
    ('AU20/23/24 lips', (48, 50, 52, 54, 56, 58)),
    ('AU25/26 lips part, jaw drop', (60, 61, 62, 63, 64, 65, 66, 67)),
)


# Region membership: row k averages the landmarks of AU_REGIONS[k].
AU_MEMBERS = np.stack([np.isin(np.arange(68), idx) for _, idx in AU_REGIONS]).astype(np.float32)


def au_ellipses(landmarks, size: int, regions=None, xp=np):
  """(size, size, len(regions)) float32 {0, 1}: per region (all 15 by default), the
  ellipse fitted to its landmarks (centre = mean, semi-axes = 2 standard deviations along
  the principal directions of their sample covariance, at least 3 px), filled where a
  pixel's centre (x, y at integer coordinates) lies inside it with semi-axes half a pixel
  longer (the 1 px outline `cv2.ellipse` drew around its filled polygon before).
  Landmarks are (68, 2) x, y in pixels of the crop. Written once for NumPy (host) and
  `xp=jax.numpy` (the train step with `input.au_maps_on=device`, fjax/models/
  au_regions.py), in float32 on both."""
  members = AU_MEMBERS if regions is None else AU_MEMBERS[np.asarray(regions)]
  lm = xp.asarray(landmarks, xp.float32)
  n = members.sum(1)
  centre = (members @ lm) / n[:, None]  # [K, 2]
  d = lm[None] - centre[:, None]  # [K, 68, 2]
  cov = lambda a, b: (members * d[..., a] * d[..., b]).sum(1) / (n - 1) + (1e-6 if a == b else 0)
  sxx, syy, sxy = cov(0, 0), cov(1, 1), cov(0, 1)
  # Eigenvalues of the 2 x 2 covariance; the major axis at angle theta.
  mid, rad = (sxx + syy) / 2, xp.sqrt(((sxx - syy) / 2) ** 2 + sxy ** 2)
  major = xp.maximum(2 * xp.sqrt(mid + rad), 3.0)[:, None, None] + 0.5
  minor = xp.maximum(2 * xp.sqrt(xp.maximum(mid - rad, 0.0)), 3.0)[:, None, None] + 0.5
  theta = 0.5 * xp.arctan2(2 * sxy, sxx - syy)
  cos, sin = xp.cos(theta)[:, None, None], xp.sin(theta)[:, None, None]
  grid = xp.arange(size, dtype=xp.float32)
  dx = grid[None, None, :] - centre[:, 0, None, None]
  dy = grid[None, :, None] - centre[:, 1, None, None]
  u, v = dx * cos + dy * sin, dy * cos - dx * sin  # along the major and minor axes
  inside = (u / major) ** 2 + (v / minor) ** 2 <= 1
  return xp.transpose(inside, (1, 2, 0)).astype(xp.float32)


def au_maps(landmarks: np.ndarray, size: int, sigma: float = 3.0) -> np.ndarray:
  """AUNet's Y_att: the AU ellipses Gaussian-blurred with `sigma`, each scaled to max 1."""
  maps = cv2.GaussianBlur(au_ellipses(landmarks, size), (0, 0), sigma)
  maps = maps.reshape(size, size, -1)
  return maps / np.maximum(maps.max((0, 1)), 1e-12)


def partial_face_mask(landmarks: np.ndarray, size: int, rng: np.random.Generator,
                      max_removed: int = 3, sigma: float = 3.0) -> np.ndarray:
  """AUNet's M_p: the landmark hull minus 1..max_removed random AU ellipses, Gaussian-
  blurred with `sigma`; float32 in [0, 1]. max_removed=0 gives the blurred face mask M_f
  (the "w/o M_p" ablation of table 4)."""
  mask = self_blend.hull_mask(landmarks, (size, size))
  if max_removed:
    removed = rng.choice(len(AU_REGIONS), rng.integers(1, max_removed + 1), replace=False)
    mask *= au_ellipses(landmarks, size, removed).max(-1) == 0
  return cv2.GaussianBlur(mask, (0, 0), sigma)
