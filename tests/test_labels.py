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

from fjax.data import faces, labels


@functools.lru_cache(maxsize=None)
def face_crop(size: int = 128):
  """(uint8 RGB crop, (68, 2) landmarks in crop pixels) of the astronaut's face."""
  image = skimage.data.astronaut()
  face = max(faces.detect_faces(image),  # the largest box (before 1.5.0: the mission patch)
             key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
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
  # The uniform 7x7 window with sample covariances: scikit-image's default call.
  _, ref = structural_similarity(a / 255, b / 255, data_range=2.0, full=True)
  np.testing.assert_allclose(labels.ssim_map(a / 255, b / 255, 2.0, win_size=7), ref,
                             atol=1e-9)


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


def released_annotation(real: np.ndarray, fake: np.ndarray) -> np.ndarray:
  """MSCCNet's FF++ annotation re-derived from the authors' script, call by call, on
  3-channel images as they draw them: bool (H, W)."""
  g_real = cv2.cvtColor(real, cv2.COLOR_RGB2GRAY) / 255.0
  g_fake = cv2.cvtColor(fake, cv2.COLOR_RGB2GRAY) / 255.0
  # Their structural_similarity(fake, real, full=True): default window; the scikit-image
  # of the time took data_range = 2 for floats (dtype range -1..1), now it must be given.
  _, ssim = structural_similarity(g_fake, g_real, full=True, data_range=2.0)
  diss = 1.0 - ssim
  diss = cv2.GaussianBlur((diss - diss.min()) / np.ptp(diss), (5, 5), 0)
  weighted = np.uint8(g_fake * (diss > 0.08).astype(int) * 255)
  _, seed = cv2.threshold(weighted, 0, 255, cv2.THRESH_BINARY)
  grown = cv2.dilate(seed, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)),
                     iterations=3)
  contours, _ = cv2.findContours(grown, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
  kept = [cv2.convexHull(c) for c in contours if c.shape[0] > 5]
  canvas = np.zeros(real.shape[:2] + (3,), np.uint8)
  canvas = cv2.fillConvexPoly(canvas, cv2.convexHull(np.vstack(kept)), (255, 255, 255))
  shrunk = cv2.erode(canvas, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)),
                     iterations=3)
  _, out = cv2.threshold(np.uint8(cv2.GaussianBlur(shrunk / 255.0, (7, 7), 0) * 255), 0,
                         255, cv2.THRESH_BINARY)
  assert (out == out[..., :1]).all()
  return out[..., 0] > 0


def test_msccnet_mask_is_one_hull_around_two_regions():
  """Two separated tampered regions: the released procedure fills one convex hull around
  both (not one hull per region), so the mask bridges the face between them."""
  real, _ = face_crop()
  once, first = tampered(real, (44, 48), (10, 8))
  fake, _ = tampered(once, (84, 100), (10, 8))
  second = tampered(real, (84, 100), (10, 8))[1]
  mask = labels.msccnet_mask(real, fake)
  assert mask.dtype == np.float32 and set(np.unique(mask)) <= {0.0, 1.0}
  np.testing.assert_array_equal(mask > 0, released_annotation(real, fake))
  assert mask[first | second].all()
  assert cv2.connectedComponents(mask.astype(np.uint8))[0] == 2  # background + one blob
  # The segment between the two centres lies inside; each region alone gives much less.
  t = np.linspace(0, 1, 50)
  assert mask[np.round(48 + 52 * t).astype(int), np.round(44 + 40 * t).astype(int)].all()
  apart = [labels.msccnet_mask(real, tampered(real, c, (10, 8))[0]).sum()
           for c in ((44, 48), (84, 100))]
  assert mask.sum() > 1.3 * sum(apart)


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
  pad = 32  # a canvas with room around the crop: the 1.3x crop cuts the chin's AU17 region
  wide = labels.au_maps(lm + pad, 128 + 2 * pad)
  ys, xs = np.mgrid[:128 + 2 * pad, :128 + 2 * pad]
  peaks = np.array([[(wide[..., k] * xs).sum(), (wide[..., k] * ys).sum()] / wide[..., k].sum()
                    for k in range(15)]) - pad  # centroids (x, y) in crop pixels
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


def test_noise_residual_on_device_equals_the_host_on_real_faces():
  """`input.noise_on=device`: the train step's JAX residual (fjax/models/wavelet.py) of the
  normalised faces equals `labels.noise_residual` of the uint8 faces: the astronaut's face
  at Detect and Locate's 299 px (odd: PyWavelets pads it) with its flipped copy, and at
  37 px (three levels, bands of 5 samples: the window pads reflect more than once).
  Tolerance 1e-3 grey levels (sigma is 5): float32 on device against float64 on the host;
  measured 6e-5 at 299 px, where the residual reaches 25."""
  import jax  # pylint: disable=g-import-not-at-top
  from configs import semantic_noise  # pylint: disable=g-import-not-at-top
  from fjax.data import examples, schema  # pylint: disable=g-import-not-at-top
  from fjax.trainer import train  # pylint: disable=g-import-not-at-top
  config = semantic_noise.get_config('paper')
  config.input.noise_on = 'device'
  assert 'noise' not in schema.made(config) and examples.Recipe.of(config).labels == ()
  mean, std = config.input.mean, config.input.std
  for size in (299, 37):
    real, _ = face_crop(size)
    faces_ = np.stack([real, real[:, ::-1]])
    batch = {'image': np.stack([examples.normalize(f, mean, std) for f in faces_])}
    ours = jax.jit(lambda b: train.device_labels(b, config))(batch)['noise']
    host = np.stack([labels.noise_residual(f, config.input.noise_sigma) for f in faces_])
    assert np.abs(host).max() > 5  # a real residual, not zeros
    np.testing.assert_allclose(np.asarray(ours), host, atol=1e-3, rtol=0)


def test_au_maps_on_device_equal_the_host_on_real_faces():
  """`input.au_maps_on=device`: AUNet's paper preset's tampered pairs (SBI's transforms,
  its random-margin crop, the random flip) of the astronaut's face, made from the same
  seeds with the maps on the host and with landmarks shipped instead, whose maps the train
  step makes (fjax/models/au_regions.py), once per pair. Both share `labels.au_ellipses`
  (float32; its JAX run fills the same pixels here) and differ only in the blur's float32
  sums (OpenCV's order against a matmul's): tolerance 1e-5 on maps scaled to max 1
  (a pixel filled differently would move them by up to ~0.02)."""
  import jax  # pylint: disable=g-import-not-at-top
  from configs import aunet  # pylint: disable=g-import-not-at-top
  from fjax.data import examples, schema  # pylint: disable=g-import-not-at-top
  from fjax.trainer import train  # pylint: disable=g-import-not-at-top
  config = aunet.get_config('paper')
  config.input.image_size = 96
  assert config.input.au_maps_on == 'device' and 'au_maps' not in schema.made(config)
  host_config = config.copy_and_resolve_references()
  host_config.input.au_maps_on = 'host'
  real, lm = face_crop(160)
  example = {'image': real, 'landmarks': lm, 'label': 0, 'row': 0}
  make = lambda c, seed: examples.prepare(example, examples.Recipe.of(c),
                                          np.random.default_rng(seed))
  seeds = range(4)
  host = np.stack([make(host_config, s)['au_maps'] for s in seeds])
  shipped = [make(config, s) for s in seeds]
  batch = {k: np.stack([p[k] for p in shipped]) for k in ('image', 'landmarks', 'flipped')}
  assert set(shipped[0]) == set(schema.made(config))
  assert batch['landmarks'].shape == (4, 2, 68, 2) and 0 < batch['flipped'].mean() < 1
  for k in ('landmarks', 'flipped'):  # a pair's two share them: the device makes one
    np.testing.assert_array_equal(batch[k][:, 0], batch[k][:, 1])
  ours = jax.jit(lambda b: train.device_labels(b, config))(batch)
  assert 'landmarks' not in ours and 'flipped' not in ours
  np.testing.assert_allclose(np.asarray(ours["au_maps"]), host, atol=1e-5, rtol=0)
  assert (host > 0.5).mean() > 0.01  # real maps, not zeros
