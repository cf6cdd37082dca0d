"""DeeperForensics perturbations and --mode=robustness."""
from __future__ import annotations

import json
import os

import cv2
import numpy as np
import skimage.data

from fjax.preprocess import corruptions
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
  grey = corruptions.corrupt(image, 'saturation', 5, None)
  assert np.abs(grey.astype(int) - grey[..., :1]).max() <= 2  # saturation 0: grey
  np.testing.assert_array_equal(corruptions.corrupt(image, 'gaussian_blur', 3, None),
                                cv2.GaussianBlur(image.astype(np.float32), (13, 13), 0)
                                .round().clip(0, 255).astype(np.uint8))
  pix = corruptions.corrupt(image, 'pixelation', 3, None)  # level 3: factor 4
  blocks = pix.reshape(32, 4, 32, 4, 3)  # 128 px pixelated by 4: constant 4x4 blocks
  assert (blocks == blocks[:, :1, :, :1]).all()


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
