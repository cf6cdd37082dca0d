"""DeeperForensics perturbations and --mode=robustness."""
from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
import skimage.data

from fjax.data import corruptions
from tests.conftest import TEST_CONFIG, run_cli


def test_each_perturbation_grows_with_its_level():
  image = cv2.resize(skimage.data.astronaut(), (128, 128))
  for kind in corruptions.LEVELS:
    diffs = []
    for level in (1, 5):
      out = corruptions.corrupt(image, kind, level, np.random.default_rng(0))
      assert out.shape == image.shape and out.dtype == np.uint8, kind
      diffs.append(np.abs(out.astype(int) - image).mean())
    assert 0 < diffs[0] < diffs[1], (kind, diffs)


def test_saturation_scales_the_ycbcr_chroma_and_truncates():
  """DF-1.0 CS: Cb, Cr (BT.601) x p, Y kept, float -> uint8 by truncation."""
  image = np.array([[[200, 100, 50], [10, 250, 30]],
                    [[0, 0, 255], [128, 128, 128]]], np.uint8)
  # By hand: Y = .299 R + .587 G + .114 B = 124.2, 153.16, 29.07, 128; Cb = (B - Y) / 1.772,
  # Cr = (R - Y) / 1.402 scaled by p and converted back give Y + p (x - Y) per channel;
  # level 1, p = 0.4: (200, 100, 50) -> (154.52, 114.52, 94.52) -> (154, 114, 94).
  np.testing.assert_array_equal(corruptions.corrupt(image, 'saturation', 1, None), [
      [[154, 114, 94], [95, 191, 103]], [[17, 17, 119], [128, 128, 128]]])
  np.testing.assert_array_equal(corruptions.corrupt(image, 'saturation', 5, None), [  # p = 0
      [[124] * 3, [153] * 3], [[29] * 3, [128] * 3]])
  ycc = corruptions.rgb_to_ycbcr(image)
  np.testing.assert_allclose(ycc[0, 0], [124.2, (50 - 124.2) / 1.772, (200 - 124.2) / 1.402])
  np.testing.assert_allclose(corruptions.ycbcr_to_rgb(ycc), image, atol=1e-9)


def test_contrast_is_the_image_times_p_truncated():
  image = np.array([[[255, 100, 7], [0, 20, 199]]], np.uint8)
  np.testing.assert_array_equal(corruptions.corrupt(image, 'contrast', 1, None),  # x 0.85
                                [[[216, 85, 5], [0, 17, 169]]])  # 216.75, 5.95, 169.15
  np.testing.assert_array_equal(corruptions.corrupt(image, 'contrast', 5, None),  # x 0.35
                                [[[89, 35, 2], [0, 7, 69]]])  # 89.25, 2.45, 69.65


def test_gaussian_blur_uses_sigma_k_over_6():
  import scipy.ndimage  # pylint: disable=g-import-not-at-top
  image = cv2.resize(skimage.data.astronaut(), (64, 64))
  k = 13  # level 3
  t = np.arange(k) - k // 2
  g = np.exp(-t ** 2 / (2 * (k / 6) ** 2))
  g /= g.sum()
  ref = image.astype(float)
  for axis in (0, 1):  # OpenCV's default border (reflect-101) is scipy's 'mirror'
    ref = scipy.ndimage.convolve1d(ref, g, axis=axis, mode='mirror')
  out = corruptions.corrupt(image, 'gaussian_blur', 3, None).astype(float)
  assert np.abs(out - ref).max() < 1.5  # OpenCV's uint8 blur is fixed-point: up to ~1.06
  default_sigma = cv2.GaussianBlur(image, (k, k), 0).astype(float)  # sigma 2.3, not 2.17
  assert np.abs(default_sigma - ref).max() > 5  # 6.97


def test_block_occlusion_puts_p_grey_8px_blocks_per_256px_at_the_drawn_places():
  for (h, w), level, count in (((224, 224), 1, 16), ((600, 520), 2, 64)):  # 520 // 256 = 2
    image = np.zeros((h, w, 3), np.uint8)
    out = corruptions.corrupt(image, 'block_occlusion', level, np.random.default_rng(7))
    expected = np.zeros((h, w), bool)
    draw = np.random.default_rng(7)
    for _ in range(count):  # column, then row, each in 0 .. side - 9
      c, r = draw.integers(0, w - 8), draw.integers(0, h - 8)
      expected[r:r + 8, c:c + 8] = True
    np.testing.assert_array_equal(out[..., 0] == 128, expected)
    assert (out[expected] == 128).all() and (out[~expected] == 0).all()
    assert not expected[:, -1].any() and not expected[-1].any()  # as randint(0, w - 9)


def test_gaussian_noise_is_white_in_ycbcr_with_the_released_scale():
  """Level 2 (p = 0.002): std 255 sqrt(p) 255/219 in Y and 255 sqrt(p) 255/224 in Cb, Cr,
  the three independent (RGB noise would correlate Y and Cb)."""
  image = np.full((256, 256, 3), 128, np.uint8)
  out = corruptions.corrupt(image, 'gaussian_noise', 2, np.random.default_rng(0))
  x = out.astype(float)
  y = .299 * x[..., 0] + .587 * x[..., 1] + .114 * x[..., 2]
  noise = np.stack([y - 128, (x[..., 2] - y) / 1.772, (x[..., 0] - y) / 1.402]).reshape(3, -1)
  sigma = 255 * np.sqrt(0.002) * np.array([255 / 219, 255 / 224, 255 / 224])  # 13.3, 13.0
  np.testing.assert_allclose(noise.std(1), sigma, rtol=0.02)
  np.testing.assert_allclose(noise.mean(1), [-0.5, 0, 0], atol=0.25)  # truncation: -0.5
  corr = np.corrcoef(noise)
  assert np.abs(corr[np.triu_indices(3, 1)]).max() < 0.02, corr
  again = corruptions.corrupt(image, 'gaussian_noise', 2, np.random.default_rng(0))
  np.testing.assert_array_equal(out, again)  # from the given generator only


def test_pixelation_is_bilinear_down_by_p_and_back():
  row = np.tile(np.array([0, 0, 100, 100], np.uint8)[None, :, None], (4, 1, 3))
  np.testing.assert_array_equal(  # p = 2: down to [0, 100], up with weights 1/4, 3/4
      corruptions.corrupt(row, 'pixelation', 1, None)[0, :, 0], [0, 25, 75, 100])
  row = np.tile(np.array([0, 10, 20, 30, 40, 50], np.uint8)[None, :, None], (6, 1, 3))
  np.testing.assert_array_equal(  # p = 3: samples x = 1, 4 (10, 40), then interpolated
      corruptions.corrupt(row, 'pixelation', 2, None)[0, :, 0], [10, 10, 20, 30, 40, 40])


def test_video_compression_round_trips_through_h264():
  image = cv2.resize(skimage.data.astronaut(), (96, 96))
  errors = [np.abs(corruptions.corrupt(image, 'video_compression', level, None).astype(int)
                   - image).mean() for level in (1, 3, 5)]  # CRF 30, 35, 40
  assert 0 < errors[0] < errors[1] < errors[2], errors
  odd = corruptions.corrupt(image[:37, :51], 'video_compression', 1, None)  # yuv420p: padded
  assert odd.shape == (37, 51, 3) and odd.dtype == np.uint8
  assert np.abs(odd.astype(int) - image[:37, :51]).mean() < 2 * errors[0]
  flat = np.full((32, 32, 3), (120, 60, 200), np.uint8)  # only the YUV rounding is lost
  assert np.abs(corruptions.corrupt(flat, 'video_compression', 5, None).astype(int)
                - flat).max() <= 3


def test_a_missing_ffmpeg_is_one_user_error_before_any_evaluation(monkeypatch, tmp_path):
  from fjax.trainer import robustness  # pylint: disable=g-import-not-at-top
  from fjax.util.errors import UserError  # pylint: disable=g-import-not-at-top
  monkeypatch.setenv('IMAGEIO_FFMPEG_EXE', str(tmp_path / 'no-ffmpeg'))
  calls = []
  with pytest.raises(UserError, match='video_compression needs an ffmpeg binary'):
    robustness.run(None, lambda c, s: calls.append(s), 'test', str(tmp_path), None, 0)
  assert not calls


def test_robustness_mode_writes_the_table_and_plot(data_dir, trained_workdir, tmp_path):
  workdir = str(tmp_path / 'run')
  import shutil  # pylint: disable=g-import-not-at-top
  shutil.copytree(trained_workdir, workdir)
  proc = run_cli('fjax.main', f'--config={TEST_CONFIG}', f'--workdir={workdir}',
                 '--mode=robustness', data_dir=data_dir)
  assert 'gaussian_blur' in proc.stdout
  with open(os.path.join(workdir, 'robustness.json')) as f:
    table = json.load(f)
  assert set(table) == set(corruptions.LEVELS)
  assert all(len(r['auc_per_level']) == 5 for r in table.values())
  assert cv2.imread(os.path.join(workdir, 'robustness.png')).shape[0] == 480


def test_frame_perturbation_comes_before_the_face_crop(ffpp, tmp_path):
  """faceforensics/tiny_block_occlusion_5: each stored face is the clean build's box cut
  from the whole frame perturbed by DF-1.0's block occlusion (the frame read back from
  the fixture video, perturbed with the frame's generator); evaluation.robustness=frame
  asks for every level's build before evaluating anything."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from configs import xception  # pylint: disable=g-import-not-at-top
  from fjax.data import faces  # pylint: disable=g-import-not-at-top
  from fjax.trainer import robustness  # pylint: disable=g-import-not-at-top
  from fjax.util.errors import UserError  # pylint: disable=g-import-not-at-top
  manual, clean_dir, _ = ffpp
  data_dir = str(tmp_path / 'tfds')
  name = corruptions.perturbed_name('tiny', 'block_occlusion', 5)
  run_cli('data_builders.build', 'faceforensics', f'--config={name}',
          f'--manual_dir={manual}', f'--data_dir={data_dir}')
  src = tfds.data_source(f'faceforensics/{name}', split='test', data_dir=data_dir)
  clean = tfds.data_source('faceforensics/tiny', split='test', data_dir=clean_dir)
  key = lambda e: (e['method'].decode(), e['video_id'].decode(), int(e['frame']))
  boxes = {key(e): e['box'] for e in (clean[i] for i in range(len(clean)))}
  assert len(src) == len(clean) > 4
  for e in (src[i] for i in range(len(src))):
    method, vid, frame = key(e)
    np.testing.assert_array_equal(e['box'], boxes[(method, vid, frame)])  # the same faces
    rel = ('original_sequences/youtube' if method == 'real' else
           f'manipulated_sequences/{method}') + f'/c23/videos/{vid}.mp4'
    (_, whole), = faces.read_frames_at(os.path.join(manual, rel), [frame])
    perturbed = corruptions.corrupt(whole, 'block_occlusion', 5,
                                    corruptions.frame_rng(vid, frame))
    np.testing.assert_array_equal(e['image'], faces.crop(perturbed, e['box'], 64))
  config = xception.get_config('test')
  config.dataset.update(name='faceforensics/tiny', data_dir=data_dir)
  config.evaluation.robustness = 'frame'
  assert robustness.at_level(config, 'gaussian_blur', 3, config.dataset.name).dataset.name \
      == 'faceforensics/tiny_gaussian_blur_3'
  calls = []
  with pytest.raises(UserError, match='34 not built, e.g. faceforensics/tiny_saturation_1'):
    robustness.run(config, lambda c, s: calls.append(c), 'test', str(tmp_path), None, 0)
  assert not calls
  config.evaluation.robustness = 'crop'
  crop = robustness.at_level(config, 'gaussian_blur', 3, config.dataset.name)
  assert (crop.dataset.name, crop.input.corruption) == ('faceforensics/tiny',
                                                        'gaussian_blur:3')
