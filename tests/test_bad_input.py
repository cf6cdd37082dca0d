"""Each bad input: one clear line on stderr, a non-zero exit, no traceback, and existing
checkpoints left as they were."""
import hashlib
import json
import os
import shutil

import numpy as np
import orbax.checkpoint as ocp

from conftest import TEST_CONFIG, error_line, run_cli
from data_builders.demo_forgeries import media


def _main(*args, data_dir=None):
  return run_cli('fjax.main', *args, data_dir=data_dir, check=False)


def _tree_digest(path):
  digest = hashlib.sha256()
  for root, _, files in sorted(os.walk(path)):
    for name in sorted(files):
      digest.update(name.encode())
      with open(os.path.join(root, name), 'rb') as f:
        digest.update(f.read())
  return digest.hexdigest()


def test_unknown_config_key(tmp_path):
  line = error_line(_main(f'--config={TEST_CONFIG}', '--config.optimzer.lr=1',
                          f'--workdir={tmp_path}'))
  assert 'unknown config key' in line and 'optimzer' in line


def test_unknown_preset(tmp_path):
  line = error_line(_main('--config=configs/xception.py:dmeo', f'--workdir={tmp_path}'))
  assert "unknown preset 'dmeo'" in line


def test_missing_config_file(tmp_path):
  line = error_line(_main('--config=configs/nope.py', f'--workdir={tmp_path}'))
  assert 'nope.py' in line


def test_missing_data_set(tmp_path):
  line = error_line(_main(f'--config={TEST_CONFIG}', '--config.dataset.name=faceforensics',
                          f'--workdir={tmp_path}'))
  assert 'unknown data set' in line or 'not built' in line


def test_tampered_pairs_need_real_faces_only(data_dir, tmp_path):
  line = error_line(_main('--config=configs/aunet.py:test',
                          '--config.dataset.train_real_only=False', f'--workdir={tmp_path}',
                          data_dir=data_dir))
  assert 'input.tamper.pairs tampers real faces only' in line


def test_crop_scale_out_of_range(data_dir, tmp_path):
  line = error_line(_main(f'--config={TEST_CONFIG}', '--config.input.crop_scale=0',
                          f'--workdir={tmp_path}', data_dir=data_dir))
  assert 'input.crop_scale=0' in line


def test_workdir_of_another_model(data_dir, trained_workdir, tmp_path):
  workdir = str(tmp_path / 'other')
  shutil.copytree(trained_workdir, workdir)
  with open(os.path.join(workdir, 'config.json')) as f:
    saved = json.load(f)
  saved['model']['name'] = 'msccnet'
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    json.dump(saved, f)
  before = _tree_digest(os.path.join(workdir, 'checkpoints'))
  line = error_line(_main(f'--config={TEST_CONFIG}', f'--workdir={workdir}',
                          data_dir=data_dir))
  assert "holds a 'msccnet' run" in line
  assert _tree_digest(os.path.join(workdir, 'checkpoints')) == before


def test_checkpoint_of_another_shape(data_dir, tmp_path):
  workdir = tmp_path / 'shape'
  (workdir / 'checkpoints').mkdir(parents=True)
  mgr = ocp.CheckpointManager(str(workdir / 'checkpoints'), item_names=('state',))
  mgr.save(3, args=ocp.args.Composite(state=ocp.args.StandardSave(
      {'step': np.int32(3), 'params': {'fc': {'kernel': np.zeros((5, 1), np.float32)}}})))
  mgr.wait_until_finished()
  before = _tree_digest(workdir / 'checkpoints')
  line = error_line(_main(f'--config={TEST_CONFIG}', f'--workdir={workdir}',
                          data_dir=data_dir))
  assert 'holds another model or shape' in line
  assert _tree_digest(workdir / 'checkpoints') == before


def test_truncated_checkpoint(data_dir, trained_workdir, tmp_path):
  workdir = str(tmp_path / 'truncated')
  shutil.copytree(trained_workdir, workdir)
  state_dir = os.path.join(workdir, 'checkpoints', '4', 'state')
  victims = [os.path.join(r, f) for r, _, fs in os.walk(state_dir) for f in fs
             if 'd' == os.path.basename(r) or f.startswith('ocdbt')]
  for path in victims or [os.path.join(state_dir, f) for f in os.listdir(state_dir)]:
    with open(path, 'r+b') as f:
      f.truncate(max(os.path.getsize(path) // 3, 1))
  before = _tree_digest(os.path.join(workdir, 'checkpoints'))
  for mode in ('eval', 'train'):
    line = error_line(_main(f'--config={TEST_CONFIG}', f'--workdir={workdir}',
                            f'--mode={mode}', data_dir=data_dir))
    assert 'corrupt or incomplete' in line, line
  assert _tree_digest(os.path.join(workdir, 'checkpoints')) == before


def test_nan_loss_stops_without_a_checkpoint(data_dir, tmp_path):
  workdir = str(tmp_path / 'nan')
  line = error_line(_main(f'--config={TEST_CONFIG}', f'--workdir={workdir}',
                          '--config.optimizer.lr=1e30', '--config.checkpoint_every=100',
                          '--config.total_steps=20', data_dir=data_dir))
  assert 'training diverged' in line and 'loss is nan' in line.lower()
  assert not [s for s in os.listdir(os.path.join(workdir, 'checkpoints')) if s.isdigit()]


def test_predict_rejects_non_images(trained_workdir, tmp_path):
  empty = tmp_path / 'empty.jpg'
  empty.write_bytes(b'')
  text = tmp_path / 'notes.png'
  text.write_text('not an image')
  for path, words in ((empty, 'is empty'), (text, 'not a readable image'),
                      (tmp_path / 'missing.jpg', 'no such file')):
    proc = run_cli('fjax.predict', f'--workdir={trained_workdir}', '--input', str(path),
                   '--output', str(tmp_path / 'out'), check=False)
    assert words in error_line(proc)
  proc = run_cli('fjax.predict', f'--workdir={trained_workdir}', '--input', str(text),
                 '--output', str(tmp_path / 'out'), '--batch_size', '0', check=False)
  assert error_line(proc) == 'error: --batch_size must be at least 1, not 0'


def test_predict_records_frames_without_a_face(trained_workdir, tmp_path):
  out = tmp_path / 'out'
  run_cli('fjax.predict', f'--workdir={trained_workdir}', '--input',
          media.feat_data('no_face.mp4'), '--output', str(out), '--frames', '2')
  rows = [json.loads(l) for l in open(out / 'predictions.jsonl')]
  assert rows and all(r['status'] == 'no face' and r['fake_probability'] is None
                      for r in rows)
  per_input = [json.loads(l) for l in open(out / 'inputs.jsonl')]
  assert per_input == [{'path': media.feat_data('no_face.mp4'), 'frames': len(rows), 'faces': 0,
                        'fake_probability': None}]
