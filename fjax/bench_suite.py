"""`python -m fjax.bench --suite=paper`: every paper preset's train step on the device
present, float32 and bfloat16, with and without remat, one fresh process per row (so that
each row's peak device memory is its own), with the preset's input pipeline running
beside the timed steps in a thread (on the embedded demo set, its examples cycled when
the split is smaller than the batch).

  python -m fjax.bench --suite=paper [--models=msccnet,aunet] [--variants=bfloat16+remat]
      [--steps=10] [--workers=8] [--peak_tflops=19.5,312]
  python -m fjax.bench --suite=paper --tiny     # each paper preset at its test preset's
                                                # sizes on the tiny demo set (CPU, seconds)
  python -m fjax.bench --suite=paper --models=semantic_noise --peer=torch \\
      --peer_dir=CHECKOUT   # also times the authors' PyTorch model (Detect and Locate's
                            # arch/xcep_fusion.py in a local checkout of their repository)

Columns: images/s and seconds per step of the step alone (a synthetic batch on the
device); TFLOP per step (XLA's cost analysis of the compiled step, per device); MFU =
model FLOPs / step time / the device's dense peak (model FLOPs: the row without remat of
the same dtype, since remat's recomputed forward is not model work); peak device memory
(`memory_stats()` where the backend reports it, else XLA's memory analysis: arguments +
temporaries, the state being donated); the input pipeline's images/s measured while the
steps ran, and `input-bound` when it is below the step's.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

PRESETS = ('focus', 'msccnet', 'local_similarity', 'semantic_noise', 'aunet', 'xception')
VARIANTS = ('float32', 'bfloat16', 'float32+remat', 'bfloat16+remat')
# Dense peak TFLOP/s (float32, bfloat16) by the first name found in jax's device_kind.
# TPUs have one MXU rate: float32 matmuls run as bfloat16 passes, so both columns use it.
PEAK_TFLOPS = (('H100 PCIe', 51.0, 756.0), ('A100', 19.5, 312.0), ('H100', 67.0, 989.0),
               ('H200', 67.0, 989.0), ('TPU v4', 275.0, 275.0),
               ('TPU v5 lite', 197.0, 197.0), ('TPU v5e', 197.0, 197.0),
               ('TPU v5', 459.0, 459.0), ('TPU v6 lite', 918.0, 918.0),
               ('TPU v6e', 918.0, 918.0))


def peak_tflops(device_kind: str, dtype: str, override=()) -> float | None:
  """The dense peak of a device kind for `dtype`; `override`: (both) or (fp32, bf16)."""
  if override:
    values = [float(v) for v in override]
    return values[-1] if dtype == 'bfloat16' else values[0]
  for name, fp32, bf16 in PEAK_TFLOPS:
    if name in device_kind:
      return bf16 if dtype == 'bfloat16' else fp32
  return None  # CPU and unknown kinds: give --peak_tflops


def preset_config(model: str, variant: str, tiny: bool, workers: int):
  import importlib  # pylint: disable=g-import-not-at-top
  config = importlib.import_module(f'configs.{model}').get_config(
      'paper,test' if tiny else 'paper')
  dtype, _, remat = variant.partition('+')
  with config.unlocked():
    config.model.dtype, config.model.remat = dtype, remat == 'remat'
    config.input.workers = workers
  return config


class _Feeder(threading.Thread):
  """The train loader pulled in a thread; the times its batches arrived."""

  def __init__(self, config):
    super().__init__(daemon=True)
    from fjax import bench_pipeline  # pylint: disable=g-import-not-at-top
    from fjax.data import loaders  # pylint: disable=g-import-not-at-top
    config = bench_pipeline.on_demo_data(config)
    self.iterator = iter(loaders.train_loader(config, config.batch_size,
                                              bench_pipeline.cycled_source(config)))
    next(self.iterator)  # start-up: files opened, workers started
    self.arrivals, self.stop = [], False

  def run(self):
    while not self.stop:
      next(self.iterator)
      self.arrivals.append(time.perf_counter())

  def images_per_s(self, t0: float, images_per_batch: int) -> float | None:
    seen = [t for t in self.arrivals if t >= t0]
    if len(seen) < 2:
      return None
    return images_per_batch * (len(seen) - 1) / (seen[-1] - seen[0])


def row(model: str, variant: str, tiny: bool, steps: int, workers: int,
        max_seconds: float) -> dict:
  """One row, in this process: the step compiled and timed for `steps` steps and until
  the loader beside it has delivered 3 batches (at most `max_seconds`)."""
  import jax  # pylint: disable=g-import-not-at-top
  from fjax import bench_step  # pylint: disable=g-import-not-at-top
  from fjax.util.errors import UserError  # pylint: disable=g-import-not-at-top
  config = preset_config(model, variant, tiny, workers)
  compiled, st, batch, compile_s = bench_step.compiled_step(config)
  images = config.batch_size * bench_step.images_per_example(config)
  out = {'model': model, 'variant': variant, 'image_size': config.input.image_size,
         'batch': config.batch_size, 'images_per_step': images,
         'device': jax.devices()[0].device_kind, 'platform': jax.devices()[0].platform,
         'compile_s': round(compile_s, 1)}
  try:
    feeder = _Feeder(config)
    feeder.start()
  except UserError as e:
    feeder, out['input'] = None, f'not measured: {e}'
  st, metrics = compiled(st, batch)  # the first call allocates
  jax.block_until_ready(metrics)
  t0, done = time.perf_counter(), 0
  fed = lambda: feeder is None or sum(t >= t0 for t in feeder.arrivals) >= 3
  while done < steps or (not fed() and time.perf_counter() - t0 < max_seconds):
    st, metrics = compiled(st, batch)
    jax.block_until_ready(metrics)
    done += 1
  step_s = (time.perf_counter() - t0) / done
  if feeder:
    feeder.stop = True
    rate = feeder.images_per_s(t0, images)
    out['input_images_per_s'] = round(rate, 1) if rate else None
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else (cost or {})
  mem = compiled.memory_analysis()
  stats = jax.local_devices()[0].memory_stats() or {}
  if 'peak_bytes_in_use' in stats:
    peak, source = stats['peak_bytes_in_use'], 'device'
  else:
    peak, source = mem.argument_size_in_bytes + mem.temp_size_in_bytes, 'xla'
  out.update(steps=done, step_s=step_s, images_per_s=images / step_s,
             tflop_per_step=float(cost.get('flops', 0.0)) * config.accum_steps / 1e12,
             peak_gib=peak / 2 ** 30, peak_source=source)
  return out


def run_rows(models, variants, tiny: bool, steps: int, workers: int,
             max_seconds: float = 120.0):
  """Each (model, variant) row in a fresh process; a row that fails is its error's last
  line. Yields the rows as they finish."""
  for model in models:
    for variant in variants:
      yield _fresh(row, model, variant, tiny, steps, workers, max_seconds)


def _fresh(fn, *args) -> dict:
  """fn(*args) (a dict) in a fresh Python process (multiprocessing's spawn would import
  `python -m fjax.bench` again under another name and define its flags twice)."""
  code = (f'import json, sys; from {fn.__module__} import {fn.__name__} as fn; '
          'print(json.dumps(fn(*json.loads(sys.argv[1]))))')
  proc = subprocess.run([sys.executable, '-c', code, json.dumps(args)],
                        capture_output=True, text=True, check=False)
  if proc.returncode:
    lines = proc.stderr.strip().splitlines() or ['exit status %d' % proc.returncode]
    return {'model': args[0], 'variant': args[1], 'error': lines[-1]}
  return json.loads(proc.stdout.strip().splitlines()[-1])


def with_mfu(rows: list[dict], override=()) -> list[dict]:
  """Adds `mfu`: model FLOPs (the same model and dtype without remat, else this row's
  count) per second over the device's peak; `input_bound`."""
  model_flops = {(r['model'], r['variant']): r['tflop_per_step'] for r in rows
                 if 'tflop_per_step' in r and '+' not in r['variant']}
  for r in rows:
    if 'step_s' not in r:
      continue
    dtype = r['variant'].split('+')[0]
    flops = model_flops.get((r['model'], dtype), r['tflop_per_step'])
    peak = peak_tflops(r['device'], dtype, override)
    r['mfu'] = flops / r['step_s'] / peak if peak else None
    rate = r.get('input_images_per_s')
    r['input_bound'] = None if rate is None else rate < r['images_per_s']
  return rows


def table(rows: list[dict]) -> str:
  """The rows as a Markdown table."""
  head = ('| preset | variant | px | batch | images/s | step s | TFLOP/step | MFU | peak GiB '
          '| input images/s | input-bound |\n' + '| --- ' * 11 + '|')
  lines = [head]
  fmt = lambda v, f: '-' if v is None else format(v, f)
  for r in rows:
    if 'error' in r:
      lines.append(f'| {r["model"]} | {r["variant"]} | {r["error"]} |' + ' |' * 8)
      continue
    bound = {None: '-', True: 'yes', False: 'no'}[r.get('input_bound')]
    lines.append(
        f'| {r["model"]} | {r["variant"]} | {r["image_size"]} | {r["batch"]} '
        f'| {r["images_per_s"]:.1f} | {r["step_s"]:.4g} | {r["tflop_per_step"]:.4g} '
        f'| {fmt(r.get("mfu"), ".3f")} | {r["peak_gib"]:.3f} ({r["peak_source"]}) '
        f'| {r.get("input_images_per_s") or r.get("input", "-")} | {bound} |')
  return '\n'.join(lines)


def peers(rows: list[dict], steps: int, peer_dir: str) -> list[dict]:
  """The authors' PyTorch model per timed row (`fjax.bench_peer`), fresh process each."""
  from fjax import bench_peer  # pylint: disable=g-import-not-at-top
  out = []
  for r in rows:
    if 'step_s' not in r:
      continue
    p = _fresh(bench_peer.peer_row, r['model'], r['variant'], r['batch'],
               r['image_size'], steps, peer_dir)
    if 'torch_images_per_s' in p:
      p['fjax_over_torch'] = r['images_per_s'] / p['torch_images_per_s']
    out.append(p)
  return out


def peer_table(rows: list[dict]) -> str:
  lines = ['| preset | variant | torch images/s | fjax over torch |', '| --- ' * 4 + '|']
  for p in rows:
    if 'error' in p:
      lines.append(f'| {p["model"]} | {p["variant"]} | {p["error"]} | |')
    else:
      lines.append(f'| {p["model"]} | {p["variant"]} | {p["torch_images_per_s"]:.1f} '
                   f'| {p["fjax_over_torch"]:.2f} |')
  return '\n'.join(lines)


def suite(name: str, models, variants, tiny: bool, steps: int, workers: int,
          peak_override=(), peer: str = '', peer_dir: str = '') -> list[dict]:
  """Runs the suite and prints one JSON line per row as it finishes, then the table(s)."""
  from fjax.util.errors import UserError  # pylint: disable=g-import-not-at-top
  if name != 'paper':
    raise UserError(f'--suite={name}: the suite is paper (every paper preset)')
  for given, known, flag in ((models, PRESETS, 'models'), (variants, VARIANTS, 'variants')):
    if set(given) - set(known):
      raise UserError(f'--{flag}: unknown {sorted(set(given) - set(known))}; known: '
                      f'{",".join(known)}')
  if len(peak_override) > 2:
    raise UserError('--peak_tflops: one value (every dtype) or two (float32,bfloat16)')
  if peer not in ('', 'torch'):
    raise UserError(f'--peer={peer}: the peer is torch')
  rows = []
  for r in run_rows(models or PRESETS, variants or VARIANTS, tiny, steps, workers):
    print(json.dumps(r), flush=True)
    rows.append(r)
  print(table(with_mfu(rows, peak_override)))
  if peer:
    peer_rows = peers(rows, steps, peer_dir)
    for p in peer_rows:
      print(json.dumps(p), flush=True)
    print(peer_table(peer_rows))
  return rows
