"""Label generators against independent references, on a real face (skimage's astronaut,
landmarks from dlib)."""
from __future__ import annotations

import functools

import cv2
import numpy as np
import pywt
import pytest
import skimage.data
from skimage.metrics import structural_similarity

from fjax.preprocess import faces, labels


@functools.lru_cache(maxsize=None)
def face_crop(size: int = 128):
  """(uint8 RGB crop, (68, 2) landmarks in crop pixels) of the astronaut's face."""
  image = skimage.data.astronaut()
  face = max(faces.detect_faces(image), key=lambda f: f.box[2] * f.box[3])
  box = faces.square_box(face.box)
  return faces.crop(image, box, size), faces.crop_landmarks(face.landmarks, box, size)


def tampered(real: np.ndarray, centre, axes) -> tuple[np.ndarray, np.ndarray]:
  """A fake: an ellipse of the face recoloured and blurred; returns (fake, region)."""
  region = np.zeros(real.shape[:2], np.uint8)
  cv2.ellipse(region, centre, axes, 0, 0, 360, 1, -1)
  altered = cv2.GaussianBlur(real, (0, 0), 2.0).astype(np.float32) * [1.15, 0.9, 0.85]
  fake = np.where(region[..., None] > 0, np.clip(altered, 0, 255), real).astype(np.uint8)
  return fake, region.astype(bool)


def test_ssim_map_equals_skimage():
  real, _ = face_crop()
  fake, _ = tampered(real, (64, 70), (20, 14))
  a, b = labels.gray(real), labels.gray(fake)
  _, ref = structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, full=True)
  np.testing.assert_allclose(labels.ssim_map(a, b), ref, atol=1e-6)


def test_pixel_difference_and_threshold():
  real, _ = face_crop()
  fake, region = tampered(real, (64, 70), (20, 14))
  mg1 = labels.pixel_diff(real, fake)
  ref = cv2.cvtColor(cv2.absdiff(fake, real), cv2.COLOR_RGB2GRAY) / 255.0
  np.testing.assert_allclose(mg1, ref, atol=1 / 255 + 1e-6)  # OpenCV rounds to uint8
  assert mg1[~region].max() == 0 and mg1[region].mean() > 0.02
  np.testing.assert_array_equal(labels.diff_mask(real, fake), (mg1 > 0.1).astype(np.float32))


def test_msccnet_mask_covers_the_tampered_region():
  real, _ = face_crop()
  fake, region = tampered(real, (64, 70), (20, 14))
  mask = labels.msccnet_mask(real, fake) > 0
  assert mask[region].mean() > 0.99
  # The procedure grows the region (dilate 3x7x7, erode 3x5x5, blur 7x7 > 0): ~6 px.
  near = cv2.dilate(region.astype(np.uint8),
                    cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (21, 21))) > 0
  assert not mask[~near].any()
  assert mask.sum() < 3 * region.sum()
  assert not labels.msccnet_mask(real, real).any()  # an untouched pair: an empty mask


def _wiener_residual_by_loops(image: np.ndarray, sigma: float, levels: int) -> np.ndarray:
  """The same formula written out coefficient by coefficient."""
  out = np.zeros(image.shape, np.float64)
  for ch in range(image.shape[-1]):
    coeffs = pywt.wavedec2(image[..., ch].astype(np.float64), 'db4', mode='periodization',
                           level=levels)
    resid = [np.zeros_like(coeffs[0])]
    for details in coeffs[1:]:
      bands = []
      for c in details:
        r = np.zeros_like(c)
        for i in range(c.shape[0]):
          for j in range(c.shape[1]):
            variances = []
            for w in (3, 5, 7, 9):
              padded = np.pad(c, w // 2, mode='symmetric')
              window = padded[i:i + w, j:j + w]
              variances.append(max(0.0, float((window ** 2).mean()) - sigma ** 2))
            v = min(variances)
            r[i, j] = c[i, j] * sigma ** 2 / (v + sigma ** 2)
        bands.append(r)
      resid.append(tuple(bands))
    out[..., ch] = pywt.waverec2(resid, 'db4', mode='periodization')
  return out


@pytest.mark.parametrize('sigma', [5.0, 10.0])
def test_noise_residual_matches_explicit_loops(sigma):
  real, _ = face_crop(64)
  crop = real[8:40, 16:48]  # 32 x 32: two db4 levels
  ours = labels.noise_residual(crop, sigma, levels=2)
  np.testing.assert_allclose(ours, _wiener_residual_by_loops(crop, sigma, 2), atol=1e-4)


def test_noise_residual_finds_added_noise():
  real, _ = face_crop(128)
  smooth = cv2.GaussianBlur(real, (0, 0), 2.0).astype(np.float64)
  noise = np.random.default_rng(0).normal(0, 5.0, smooth.shape)
  resid = labels.noise_residual(smooth + noise, 5.0)
  corr = np.corrcoef(resid.ravel(), noise.ravel())[0, 1]
  assert corr > 0.8, corr
  assert abs(labels.noise_residual(np.full((64, 64, 3), 120.0), 5.0)).max() < 1e-6


def test_au_maps_follow_the_dlib_landmarks():
  crop, lm = face_crop(128)
  maps = labels.au_maps(lm, 128)
  assert maps.shape == (128, 128, len(labels.AU_REGIONS)) == (128, 128, 15)
  np.testing.assert_allclose(maps.max((0, 1)), 1.0, rtol=1e-6)
  ys, xs = np.mgrid[:128, :128]
  peaks = np.array([[(maps[..., k] * xs).sum(), (maps[..., k] * ys).sum()] / maps[..., k].sum()
                    for k in range(15)])  # centroids (x, y)
  for k, (_, idx) in enumerate(labels.AU_REGIONS):
    assert np.linalg.norm(peaks[k] - lm[list(idx)].mean(0)) < 3, labels.AU_REGIONS[k][0]
  # Anatomy on a real face: brows above the eyes above the lips above the chin.
  y = {labels.AU_REGIONS[k][0].split()[0]: peaks[k][1] for k in (0, 4, 9, 12)}
  assert y['AU1'] < y['AU5/7'] < y['AU10'] < y['AU17']
  assert peaks[1][0] < peaks[2][0]  # subject's right brow is on the image's left
  del crop


def test_partial_face_mask_removes_au_regions():
  _, lm = face_crop(128)
  rng = np.random.default_rng(3)
  mask = labels.partial_face_mask(lm, 128, rng, sigma=1e-3)
  hull = labels.self_blend.hull_mask(lm, (128, 128))
  ellipses = labels.au_ellipses(lm, 128)
  assert (mask <= hull + 1e-6).all()
  removed = [k for k in range(15) if mask[ellipses[..., k] > 0].max() < 0.5]
  assert 1 <= len(removed) <= 3
  kept_area = (hull > 0) & (ellipses.max(-1) == 0)
  assert mask[kept_area].min() > 0.99
  # max_removed=0: the whole face mask M_f (table 4's "w/o M_p").
  full = labels.partial_face_mask(lm, 128, rng, max_removed=0, sigma=1e-3)
  np.testing.assert_allclose(full, hull, atol=1e-6)
