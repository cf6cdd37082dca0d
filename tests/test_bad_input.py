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
  assert line == "error: unknown config key 'optimzer' (did you mean 'optimizer'?)"
  line = error_line(_main(f'--config={TEST_CONFIG}', '--config.optimizer.lrr=1',
                          f'--workdir={tmp_path}'))
  assert line == "error: unknown config key 'optimizer.lrr' (did you mean 'optimizer.lr'?)"
  line = error_line(_main(f'--config={TEST_CONFIG}', '--config.zzz=1', f'--workdir={tmp_path}'))
  assert line == "error: unknown config key 'zzz'"


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
  line = error_line(_main(f'--config={TEST_CONFIG}', '--config.dataset.name=faceforensics/c32',
                          f'--workdir={tmp_path}'))
  assert line == ("error: data set 'faceforensics/c32': faceforensics has no config 'c32' "
                  "(did you mean 'c23'?); its configs: c23, c40, raw, c23_270, c40_270, tiny "
                  '(and c23_<kind>_<level>, tiny_<kind>_<level>: frame-perturbed)')


def test_build_names_what_it_needs(tmp_path):
  """data_builders.build: TFDS's whole message (the manual-download instructions after
  its first line), the builder's configs for a misspelt one; one line each, no TFDS log."""
  empty = tmp_path / 'manual'
  empty.mkdir()
  out = tmp_path / 'tfds'
  from data_builders.faceforensics import faceforensics  # pylint: disable=g-import-not-at-top
  how = faceforensics.Faceforensics.MANUAL_DOWNLOAD_INSTRUCTIONS
  proc = run_cli('data_builders.build', 'faceforensics', '--config=tiny',
                 f'--manual_dir={empty}', f'--data_dir={out}', check=False)
  assert error_line(proc) == (f'error: Manual directory {empty} does not exist or is empty. '
                              'Create it and download/extract dataset artifacts in there '
                              f'using instructions: {how}')
  assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr  # no TFDS log lines
  proc = run_cli('data_builders.build', 'faceforensics', '--config=tiny', f'--data_dir={out}',
                 check=False)
  assert error_line(proc) == (f'error: Manual directory {out}/downloads/manual does not exist '
                              'or is empty. Create it and download/extract dataset artifacts '
                              f'in there using instructions: {how} (no --manual_dir was given: '
                              'name the folder of the originals with it)')
  proc = run_cli('data_builders.build', 'celeb_df', '--config=tinny', f'--data_dir={out}',
                 check=False)
  assert error_line(proc) == ("error: celeb_df has no config 'tinny' (did you mean 'tiny'?); "
                              'its configs: default, tiny')


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
  # Evaluation names the damage; training falls back to checkpoint 2 (test_faults.py).
  line = error_line(_main(f'--config={TEST_CONFIG}', f'--workdir={workdir}', '--mode=eval',
                          data_dir=data_dir))
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
  out = tmp_path / 'out'
  for path, words in ((empty, 'is empty'), (text, 'not a readable image'),
                      (tmp_path / 'missing.jpg', 'no such file')):
    proc = run_cli('fjax.predict', f'--workdir={trained_workdir}', '--input', str(path),
                   '--output', str(out), check=False)
    assert error_line(proc) == f'error: {path}: {words}'.replace('is empty', 'file is empty')
  # No input could be read: one line, and nothing left behind to block the next call.
  proc = run_cli('fjax.predict', f'--workdir={trained_workdir}', '--input', str(empty),
                 str(text), str(tmp_path / 'missing.jpg'), '--output', str(out), check=False)
  assert error_line(proc) == (f'error: none of the 3 inputs could be read (first: {empty}: '
                              'file is empty)')
  assert not os.path.exists(out)
  proc = run_cli('fjax.predict', f'--workdir={trained_workdir}', '--input', str(text),
                 '--output', str(out), '--batch_size', '0', check=False)
  assert error_line(proc) == 'error: --batch_size must be at least 1, not 0'


def test_predict_skips_a_bad_input_among_good_ones(trained_workdir, tmp_path):
  """Unreadable image, cut video, missing file: each gets a status row in both files, the
  good inputs around them are predicted as usual, and the call succeeds."""
  text = tmp_path / 'notes.png'
  text.write_text('not an image')
  cut = tmp_path / 'cut.mp4'  # the first 5000 bytes of a real video: no index
  with open(media.feat_data('single_face.mp4'), 'rb') as f:
    cut.write_bytes(f.read(5000))
  inputs = [media.insightface_image('t1.jpg'), str(text), str(cut),
            str(tmp_path / 'missing.jpg'), media.feat_data('single_face.mp4')]
  out = tmp_path / 'out'
  proc = run_cli('fjax.predict', f'--workdir={trained_workdir}', '--input', *inputs,
                 '--output', str(out), '--frames', '2', '--batch_size', '4')
  assert '3 of 5 inputs skipped' in proc.stdout
  statuses = ['ok', 'skipped: not a readable image', 'skipped: cannot decode the video',
              'skipped: no such file', 'ok']
  per_input = [json.loads(l) for l in open(out / 'inputs.jsonl')]
  assert [(r['path'], r['status']) for r in per_input] == list(zip(inputs, statuses))
  assert [r['faces'] for r in per_input] == [6, 0, 0, 0, 2]
  rows = [json.loads(l) for l in open(out / 'predictions.jsonl')]
  assert [r['status'] for r in rows] == ['ok'] * 6 + statuses[1:4] + ['ok'] * 2
  for r in rows:
    if r['status'] == 'ok':
      assert 0 <= r['fake_probability'] <= 1 and os.path.exists(out / r['overlay'])
    else:
      assert r['fake_probability'] is None and 'overlay' not in r
  for path, status in zip(inputs[1:4], statuses[1:4]):
    assert f'{path}: {status}' in proc.stdout


def test_predict_records_frames_without_a_face(trained_workdir, tmp_path):
  out = tmp_path / 'out'
  run_cli('fjax.predict', f'--workdir={trained_workdir}', '--input',
          media.feat_data('no_face.mp4'), '--output', str(out), '--frames', '2')
  rows = [json.loads(l) for l in open(out / 'predictions.jsonl')]
  assert rows and all(r['status'] == 'no face' and r['fake_probability'] is None
                      for r in rows)
  per_input = [json.loads(l) for l in open(out / 'inputs.jsonl')]
  # The run's rule (default: faceless frames skipped): no score; evaluation would say 0.5.
  assert per_input == [{'path': media.feat_data('no_face.mp4'), 'frames': len(rows), 'faces': 0,
                        'faceless_frames': len(rows), 'fake_probability': None,
                        'status': 'no face', 'rule': 'mean_frame_max', 'faceless': 'skip'}]


def test_summary_refuses_a_workdir_of_another_model(trained_workdir, tmp_path):
  """As eval and train do: summary.json of another model's run is not replaced."""
  with open(os.path.join(trained_workdir, 'config.json')) as f:
    saved = json.load(f)
  saved['model']['name'] = 'msccnet'
  with open(tmp_path / 'config.json', 'w') as f:
    json.dump(saved, f)
  (tmp_path / 'summary.json').write_text('{"of": "msccnet"}')
  line = error_line(_main(f'--config={TEST_CONFIG}', f'--workdir={tmp_path}',
                          '--mode=summary'))
  assert "holds a 'msccnet' run" in line
  assert (tmp_path / 'summary.json').read_text() == '{"of": "msccnet"}'


def test_workdir_naming_a_file(trained_workdir, tmp_path):
  path = tmp_path / 'notes.txt'
  path.write_text('a file')
  for mode in ('train', 'summary'):
    line = error_line(_main(f'--config={TEST_CONFIG}', f'--workdir={path}', f'--mode={mode}'))
    assert line == f'error: --workdir {path} is a file, not a directory'
  line = error_line(_main(f'--config={TEST_CONFIG}', f'--workdir={path}/run'))
  assert line == f'error: --workdir {path}/run: {path} is a file, not a directory'
  image = media.insightface_image('t1.jpg')
  line = error_line(run_cli('fjax.predict', f'--workdir={path}', '--input', image,
                            '--output', str(tmp_path / 'out'), check=False))
  assert line == f'error: --workdir {path} is a file, not a directory'
  line = error_line(run_cli('fjax.predict', f'--workdir={trained_workdir}', '--input', image,
                            '--output', str(path), check=False))
  assert line == f'error: --output {path} is a file, not a directory'
  assert path.read_text() == 'a file'
