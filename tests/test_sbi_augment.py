"""SBI's released augmentation (fjax/data/sbi_augment.py, AUNet's paper preset):
every path of the source transforms is reachable, source or target is altered, the real
and the fake share the training transforms, JPEG in about half the draws, and each call
is reproducible from the example's generator. References are written here with cv2."""
import cv2
import numpy as np

from fjax.data import sbi_augment

SEEDS = range(160)


def _face(size=64, seed=0):
  """A smooth colour image with some texture (JPEG and sharpening both change it)."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[:size, :size] / size
  base = np.stack([160 + 60 * x, 110 + 50 * y, 90 + 40 * x * y], -1)
  return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def _applied(out):
  return {name: params for name, params in out['applied_transforms']}


def test_downscale_is_nearest_down_then_linear_up():
  img = _face(60)
  for ratio in (2, 4):
    want = cv2.resize(cv2.resize(img, (60 // ratio, 60 // ratio),
                                 interpolation=cv2.INTER_NEAREST),
                      (60, 60), interpolation=cv2.INTER_LINEAR)
    got = sbi_augment.RandomDownScale().apply(img, ratio=ratio)
    np.testing.assert_array_equal(got, want)


def test_source_transforms_reach_every_path():
  img = _face()
  counts = {}
  ratios = set()
  for seed in SEEDS:
    applied = _applied(sbi_augment.run(sbi_augment.source_pipeline(record=True),
                                       np.random.default_rng(seed), image=img))
    for name in applied:
      counts[name] = counts.get(name, 0) + 1
    assert ('RandomDownScale' in applied) != ('Sharpen' in applied)  # OneOf: exactly one
    if 'RandomDownScale' in applied:
      ratios.add(applied['RandomDownScale']['ratio'])
      assert 'Sharpen' not in applied
  n = len(SEEDS)
  assert counts['HueSaturationValue'] == counts['RandomBrightnessContrast'] == n  # p=1
  assert 0.18 < counts['RGBShift'] / n < 0.42  # p=0.3
  assert 0.35 < counts['RandomDownScale'] / n < 0.65
  assert ratios == {2, 4}


def test_source_or_target_is_altered_and_calls_repeat():
  img = _face()
  target_kept = 0
  for seed in range(40):
    source, target = sbi_augment.source_and_target(img, np.random.default_rng(seed))
    again = sbi_augment.source_and_target(img, np.random.default_rng(seed))
    np.testing.assert_array_equal(source, again[0])
    np.testing.assert_array_equal(target, again[1])
    assert source.dtype == target.dtype == np.uint8 and source.shape == img.shape
    if np.array_equal(target, img):
      target_kept += 1
    else:  # the target took the source transforms: the source is the face, only moved
      assert np.abs(target.astype(int) - img).mean() > 1
    assert not np.array_equal(source, img)  # moved (and altered when the target is not)
  assert 10 <= target_kept <= 30  # p=0.5 each way


def test_real_and_fake_share_the_training_transforms():
  real = _face(64)
  fake = real.copy()
  fake[16:32, 32:48] = 255 - fake[16:32, 32:48]  # one 16 x 16 JPEG unit (4:2:0) differs
  outside = np.ones(real.shape[:2], bool)
  outside[12:36, 28:52] = False  # the unit and 4 px around it (chroma upsampling reads them)
  for seed in range(30):
    rng = np.random.default_rng(seed)
    r, f = sbi_augment.training(real, real.copy(), rng)
    np.testing.assert_array_equal(r, f)  # identical inputs: identical outputs
    r, f = sbi_augment.training(real, fake, np.random.default_rng(seed))
    # Pointwise colour transforms and JPEG per 16 x 16 unit, the same parameters.
    np.testing.assert_array_equal(r[outside], f[outside])
    again = sbi_augment.training(real, fake, np.random.default_rng(seed))
    np.testing.assert_array_equal(f, again[1])


def test_jpeg_in_about_half_the_draws_as_cv2_encodes():
  img = _face()
  jpeg, checked_alone, untouched = 0, 0, 0
  for seed in SEEDS:
    out = sbi_augment.run(sbi_augment.training_pipeline(record=True),
                          np.random.default_rng(seed), image=img, image1=img)
    applied = _applied(out)
    if 'ImageCompression' in applied:
      jpeg += 1
      quality = applied['ImageCompression']['quality']
      assert 40 <= quality <= 100
      if len(applied) == 1:  # JPEG alone: equal to cv2's encode/decode at that quality
        ok, buf = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        np.testing.assert_array_equal(out['image'], cv2.imdecode(buf, cv2.IMREAD_UNCHANGED))
        checked_alone += 1
    elif not applied:
      np.testing.assert_array_equal(out['image'], img)
      untouched += 1
  assert 0.38 < jpeg / len(SEEDS) < 0.62  # p=0.5
  assert checked_alone > 0 and untouched > 0


def _crop_face_train(img, bbox, u):
  """SBI's src/utils/funcs.py crop_face(img, bbox=[[x0, y0], [x1, y1]], margin=False,
  crop_by_bbox=True, phase='train'), written out with its four np.random.rand() draws
  given as `u` (w0, w1, h0, h1)."""
  h_img, w_img = len(img), len(img[0])
  (x0, y0), (x1, y1) = bbox
  w, h = x1 - x0, y1 - y0
  w0_margin, w1_margin, h0_margin, h1_margin = w / 4, w / 4, h / 4, h / 4
  w0_margin *= u[0] * 0.6 + 0.2
  w1_margin *= u[1] * 0.6 + 0.2
  h0_margin *= u[2] * 0.6 + 0.2
  h1_margin *= u[3] * 0.6 + 0.2
  y0_new, y1_new = max(0, int(y0 - h0_margin)), min(h_img, int(y1 + h1_margin) + 1)
  x0_new, x1_new = max(0, int(x0 - w0_margin)), min(w_img, int(x1 + w1_margin) + 1)
  return y0_new, y1_new, x0_new, x1_new


def test_final_crop_is_sbis_crop_face_on_the_stored_face_box():
  """The window of SBI's training crop around the detector box inside a stored crop
  (the box: the centred square of side / 1.3), against crop_face written out; margins
  above the stored 0.15 box-widths are clipped at the crop's edge, as crop_face clips
  at its image's."""
  clipped = 0
  for side in (64, 317):
    img = np.zeros((side, side, 3), np.uint8)
    b = side / 1.3
    bbox = [[(side - b) / 2, (side - b) / 2], [(side + b) / 2, (side + b) / 2]]
    for seed in SEEDS:
      u = np.random.default_rng(seed).random(4)
      got = sbi_augment.final_crop(side, np.random.default_rng(seed))
      assert got == _crop_face_train(img, bbox, u), (side, seed)
      y0, y1, x0, x1 = got
      assert 0 <= y0 < bbox[0][1] and bbox[1][1] < y1 <= side
      clipped += (y0 == 0) + (x0 == 0) + (y1 == side) + (x1 == side)
  # a margin is clipped when its U(0.2, 0.8) factor exceeds 0.6 (a third of the sides),
  # or comes within the last pixel that crop_face's int() rounds away (more at 64 px)
  assert 0.3 < clipped / (2 * len(SEEDS) * 4) < 0.47


def test_crop_pair_keeps_landmarks_on_their_pixels():
  """One window for the real face, the fake and the mask; a pixel marked at each landmark
  is still under the landmark after the crop."""
  side = 96
  landmarks = np.random.default_rng(1).uniform(20, 76, (68, 2)).astype(np.float32)
  marked = np.zeros((side, side, 3), np.uint8)
  marked[landmarks[:, 1].astype(int), landmarks[:, 0].astype(int)] = 255
  for seed in range(20):
    real, fake, mask, moved = sbi_augment.crop_pair(
        marked, marked.copy(), marked[..., 0].astype(np.float32), landmarks,
        np.random.default_rng(seed))
    assert real.shape == fake.shape and mask.shape == real.shape[:2]
    assert (real[moved[:, 1].astype(int), moved[:, 0].astype(int)] == 255).all()
    assert (mask == real[..., 0]).all() and (fake == real).all()
