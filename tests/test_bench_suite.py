"""`python -m fjax.bench --suite=paper` (fjax/bench_suite.py): one paper preset at its test
preset's sizes on the tiny demo set, through the command line; the table's arithmetic
(MFU from the model FLOPs of the row without remat, input-bound) by hand."""
from __future__ import annotations

import json

import pytest

from fjax import bench_suite
from tests.conftest import error_line, run_cli


def test_suite_runs_a_paper_preset_at_tiny_size_and_prints_the_table(data_dir):
  proc = run_cli('fjax.bench', '--suite=paper', '--tiny', '--models=xception',
                 '--variants=float32', '--steps=1', '--peak_tflops=0.5', data_dir=data_dir)
  lines = proc.stdout.strip().splitlines()
  row = json.loads(lines[0])
  assert (row['model'], row['variant'], row['image_size'], row['batch']) == (
      'xception', 'float32', 32, 8)
  assert row['steps'] >= 1 and row['images_per_s'] == pytest.approx(8 / row['step_s'])
  assert row['tflop_per_step'] > 0 and row['peak_source'] == 'xla' and row['peak_gib'] > 0
  assert row['input_images_per_s'] > 0  # the tiny demo set's loader ran beside the steps
  cells = [c.strip() for c in lines[-1].strip('|').split('|')]
  assert cells[:4] == ['xception', 'float32', '32', '8']
  mfu = row['tflop_per_step'] / row['step_s'] / 0.5
  assert float(cells[7]) == pytest.approx(mfu, abs=1e-3)
  bound = row['input_images_per_s'] < row['images_per_s']
  assert cells[10] == ('yes' if bound else 'no')


def test_mfu_counts_model_flops_without_remat_and_the_peak_by_device_kind():
  rows = [{'model': 'm', 'variant': v, 'device': 'NVIDIA A100-SXM4-80GB', 'step_s': s,
           'images_per_s': 64 / s, 'tflop_per_step': f, 'input_images_per_s': 100.0}
          for v, s, f in (('float32', 2.0, 10.0), ('float32+remat', 2.5, 13.0),
                          ('bfloat16', 0.5, 10.0))]
  bench_suite.with_mfu(rows)
  assert rows[0]['mfu'] == pytest.approx(10.0 / 2.0 / 19.5)
  assert rows[1]['mfu'] == pytest.approx(10.0 / 2.5 / 19.5)  # recomputation is not model work
  assert rows[2]['mfu'] == pytest.approx(10.0 / 0.5 / 312.0)
  assert [r['input_bound'] for r in rows] == [False, False, True]  # 32, 25.6, 128 images/s
  assert bench_suite.peak_tflops('TPU v5 lite', 'float32') == 197.0
  assert bench_suite.peak_tflops('cpu', 'float32') is None
  assert bench_suite.peak_tflops('cpu', 'bfloat16', ['10', '20']) == 20.0


def test_suite_bad_input_is_one_line():
  proc = run_cli('fjax.bench', '--suite=paper', '--models=nope', check=False)
  assert error_line(proc).startswith('error: --models: unknown')


def test_peer_rows_say_why_a_model_is_not_timed():
  """`--peer=torch`: each row in a fresh process; without the authors' code or at a size
  their model cannot take, the row says why (the timing itself needs their checkout)."""
  rows = [{'model': m, 'variant': 'float32', 'step_s': 1.0, 'images_per_s': 4.0,
           'batch': 4, 'image_size': 32} for m in ('msccnet', 'semantic_noise')]
  peers = bench_suite.peers(rows, 1, '/nonexistent')
  assert 'mmsegmentation' in peers[0]['error'] and '299 px only' in peers[1]['error']
  table = bench_suite.peer_table(peers).splitlines()
  assert len(table) == 4 and table[2].startswith(
      "| msccnet | float32 (authors' torch) | the authors'")
