"""FoCus maps as a product: export from a trained run, train another model on them."""
from __future__ import annotations

import json
import os

import cv2
import grain
import numpy as np
import tensorflow_datasets as tfds

import data_builders.demo_forgeries  # noqa: F401  (registers the builder)
from tests.conftest import TEST_CONFIG, error_line, read_metrics, run_cli


def test_export_and_train_on_focus_maps(data_dir, trained_workdir, tmp_path):
  run = str(tmp_path / 'focus')
  run_cli('fjax.main', '--config=configs/focus.py:test', f'--workdir={run}', data_dir=data_dir)
  maps = str(tmp_path / 'maps')
  proc = run_cli('fjax.focus_maps', f'--workdir={run}', f'--output={maps}', data_dir=data_dir)
  assert 'pixel AUC' in proc.stdout and 'IoU@0.5' in proc.stdout
  with open(os.path.join(maps, 'info.json')) as f:
    info = json.load(f)
  assert info['map'] == 'a_fus (eq. 5)' and 0 <= info['report']['test']['pixel_auc'] <= 1
  for split in ('train', 'test'):
    source = tfds.data_source('demo_forgeries/tiny', split=split, data_dir=data_dir)
    stored = grain.sources.ArrayRecordDataSource([os.path.join(maps, f'{split}.array_record')])
    assert len(stored) == len(source)
    for i in range(len(source)):
      m = cv2.imdecode(np.frombuffer(stored[i], np.uint8), cv2.IMREAD_GRAYSCALE)
      assert m.shape == source[i]['image'].shape[:2]
      if source[i]['label'] == 0:
        assert not m.any()
  # Another model trains with the maps as its mask supervision.
  xdir = str(tmp_path / 'xception_on_focus')
  run_cli('fjax.main', f'--config={TEST_CONFIG}', f'--workdir={xdir}',
          '--config.dataset.mask_source=focus', f'--config.dataset.focus_maps={maps}',
          data_dir=data_dir)
  assert any(r['split'] == 'test' for r in read_metrics(xdir))
  # Clear errors: an existing output, a run of another model.
  line = error_line(run_cli('fjax.focus_maps', f'--workdir={run}', f'--output={maps}',
                            data_dir=data_dir, check=False))
  assert 'exists' in line
  line = error_line(run_cli('fjax.focus_maps', f'--workdir={trained_workdir}',
                            f'--output={tmp_path / "x"}', data_dir=data_dir, check=False))
  assert 'not a FoCus one' in line
