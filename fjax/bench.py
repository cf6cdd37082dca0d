"""Train-step throughput and memory of a model and config, or of the backbones next to
timm's PyTorch (not a test).

  python -m fjax.bench --config=configs/xception.py:demo [--steps=10] [--config.batch_size=32]
  python -m fjax.bench --backbones [--archs=resnet50,...] [--batch=8] [--steps=5]
  python -m fjax.bench --input --config=configs/xception.py:demo [--config.input.workers=2]
  python -m fjax.bench --input --demo_data --config=configs/msccnet.py:paper --steps=5
      # the paper preset's pipeline on the demo set: images/s per core, host cores needed
  python -m fjax.bench --suite=paper [--tiny] [--peer=torch --peer_dir=CHECKOUT]
      # every paper preset's step, fp32/bf16, remat or not: images/s, MFU, memory, input
  python -m fjax.bench --llsm   # memory of the local-similarity map, 7x7 .. 28x28 features
  python -m fjax.bench --depthwise   # depthwise conv: XLA's grouped conv vs shifted slices
  python -m fjax.bench --plan --config=configs/msccnet.py:paper --devices=8 \
      [--config.model.remat=True] [--config.accum_steps=4]   # memory plan, nothing runs
  (installed: `fjax-bench ...`, the same command)

Times the jitted, sharded train step alone on synthetic batches (the input pipeline is
measured separately), after one compiling call. Prints one JSON line: images/s, seconds per
step, compile seconds, XLA's memory analysis of the compiled step (arguments, outputs,
temporaries), the device's peak bytes where the backend reports it, and the host's peak
resident memory.
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time

from absl import flags
from ml_collections import config_flags

from fjax import bench_step

flags.DEFINE_integer('steps', 10, 'Timed steps after the compiling one.')
flags.DEFINE_bool('backbones', False, 'Benchmark the backbones (JAX vs timm) instead.')
flags.DEFINE_bool('input', False, 'Benchmark the train input pipeline (batches/s) instead.')
flags.DEFINE_bool('llsm', False, 'Peak memory of the LLSM pairwise map vs feature size.')
flags.DEFINE_bool('depthwise', False, 'Time both depthwise-conv implementations.')
flags.DEFINE_list('archs', [], 'Backbones to benchmark (default: all of fjax.weights.ARCHS).')
flags.DEFINE_integer('batch', 0, 'Backbone batch size (default: the paper batch per arch).')
flags.DEFINE_bool('plan', False, 'Compile the train step ahead of time for --devices host '
                  'devices and print per-device memory and FLOPs (nothing is run).')
flags.DEFINE_integer('devices', 1, '--plan: devices of the data axis (host devices).')
flags.DEFINE_bool('demo_data', False, '--input: run the preset\'s input pipeline on the '
                  'embedded demo set (its FF++ selection dropped), e.g. a paper preset here.')
flags.DEFINE_list('tflops', ['125', '396', '110'], '--input: effective accelerator TFLOP/s '
                  '(peak x utilisation) to size host cores for (default: A100, H100 bf16 and '
                  'TPU v4 at 40 %% of peak).')
flags.DEFINE_string('suite', '', '`paper`: every paper preset\'s train step, float32 and '
                    'bfloat16, with and without remat, with its input pipeline beside it '
                    '(fjax/bench_suite.py).')
flags.DEFINE_bool('tiny', False, '--suite: the test presets\' sizes on the tiny demo set.')
flags.DEFINE_list('models', [], '--suite: presets (default: all).')
flags.DEFINE_list('variants', [], '--suite: of float32, bfloat16, float32+remat, '
                  'bfloat16+remat (default: all).')
flags.DEFINE_integer('workers', 0, '--suite: grain worker processes of the input pipeline.')
flags.DEFINE_list('peak_tflops', [], '--suite: the device\'s dense peak TFLOP/s, one value '
                  'or float32,bfloat16 (default: the table by device kind).')
flags.DEFINE_string('peer', '', '--suite: `torch` also times the authors\' PyTorch model.')
flags.DEFINE_string('peer_dir', '', '--peer=torch: a checkout of the authors\' repository.')
FLAGS = flags.FLAGS


def bench(config, steps: int) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  compiled, st, batch, compile_s = bench_step.compiled_step(config)
  st, out = compiled(st, batch)
  jax.block_until_ready(out)
  t0 = time.perf_counter()
  for _ in range(steps):
    st, out = compiled(st, batch)
  jax.block_until_ready(out)
  per_step = (time.perf_counter() - t0) / steps
  mem = compiled.memory_analysis()
  device_stats = jax.local_devices()[0].memory_stats() or {}
  return {
      'model': config.model.name, 'image_size': config.input.image_size,
      'global_batch': config.batch_size, 'devices': jax.device_count(),
      'platform': jax.devices()[0].platform, 'dtype': config.model.dtype,
      'images_per_s': round(config.batch_size * bench_step.images_per_example(config) / per_step, 2),
      'step_s': round(per_step, 4), 'compile_s': round(compile_s, 2),
      'xla_argument_mib': round(mem.argument_size_in_bytes / 2**20, 1) if mem else None,
      'xla_output_mib': round(mem.output_size_in_bytes / 2**20, 1) if mem else None,
      'xla_temp_mib': round(mem.temp_size_in_bytes / 2**20, 1) if mem else None,
      'device_peak_mib': round(device_stats['peak_bytes_in_use'] / 2**20, 1)
                         if 'peak_bytes_in_use' in device_stats else None,
      'host_peak_rss_mib': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
  }


GIB = 2 ** 30


def plan(config) -> dict:
  """XLA's memory analysis and cost of the train step compiled for the mesh of this
  process's devices (`--devices` host devices): per device, arguments (state and batch),
  outputs and temporaries; the state is donated, so the peak is about arguments +
  temporaries. Compiled by the CPU backend: accelerator compilers lay out and fuse
  otherwise, so read it as an estimate."""
  import jax  # pylint: disable=g-import-not-at-top
  from fjax.trainer import sharding  # pylint: disable=g-import-not-at-top
  lowered, mesh, abstract = bench_step.lowered_step(config)
  t0 = time.perf_counter()
  compiled = lowered.compile()
  mem, cost = compiled.memory_analysis(), compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else (cost or {})
  devices = mesh.shape[sharding.DATA_AXIS]
  peak = (mem.argument_size_in_bytes + mem.temp_size_in_bytes) / GIB
  return {
      'model': config.model.name, 'image_size': config.input.image_size,
      'global_batch': config.batch_size, 'devices': devices,
      'batch_per_device': config.batch_size // devices, 'accum_steps': config.accum_steps,
      'remat': bool(config.model.remat), 'dtype': config.model.dtype,
      'params_m': round(sum(x.size for x in jax.tree_util.tree_leaves(abstract['params'])) / 1e6, 2),
      'argument_gib': round(mem.argument_size_in_bytes / GIB, 3),
      'output_gib': round(mem.output_size_in_bytes / GIB, 3),
      'temp_gib': round(mem.temp_size_in_bytes / GIB, 3), 'peak_gib': round(peak, 3),
      # XLA counts a loop body once: the accumulation scan runs it accum_steps times.
      'tflops_per_step': round(float(cost.get('flops', 0.0)) * devices * config.accum_steps
                               / 1e12, 3),
      'fits': {f'{gb} GB': peak < gb * 1e9 / GIB * 0.9 for gb in (16, 40, 80)},
      'compile_s': round(time.perf_counter() - t0, 1),
  }


def main(argv):
  del argv
  from fjax.util.errors import UserError  # pylint: disable=g-import-not-at-top
  if FLAGS.plan:  # host devices must be set before JAX starts its backend
    os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                               f' --xla_force_host_platform_device_count={FLAGS.devices}')
    os.environ['JAX_PLATFORMS'] = 'cpu'
  try:
    if FLAGS.plan:
      if FLAGS.config is None:
        raise UserError('--plan needs --config')
      print(json.dumps(plan(FLAGS.config)))
      return
    if FLAGS.suite:
      from fjax import bench_suite  # pylint: disable=g-import-not-at-top
      bench_suite.suite(FLAGS.suite, FLAGS.models, FLAGS.variants, FLAGS.tiny, FLAGS.steps,
                        FLAGS.workers, FLAGS.peak_tflops, FLAGS.peer, FLAGS.peer_dir)
      return
    if FLAGS.backbones:
      from fjax import bench_backbones  # pylint: disable=g-import-not-at-top
      for arch in FLAGS.archs or bench_backbones.PAPER_SETTINGS:
        print(json.dumps(bench_backbones.bench(arch, FLAGS.batch, FLAGS.steps)), flush=True)
      return
    if FLAGS.depthwise:
      from fjax import bench_layers  # pylint: disable=g-import-not-at-top
      for row in bench_layers.bench_depthwise(FLAGS.steps):
        print(json.dumps(row), flush=True)
      return
    if FLAGS.llsm:
      from fjax import bench_layers  # pylint: disable=g-import-not-at-top
      for row in bench_layers.bench_llsm():
        print(json.dumps(row), flush=True)
      return
    if FLAGS.config is None:
      raise UserError('--config is required (or --backbones, --llsm, --depthwise)')
    if FLAGS.input:
      from fjax import bench_pipeline  # pylint: disable=g-import-not-at-top
      print(json.dumps(bench_pipeline.bench_input(
          FLAGS.config, FLAGS.steps, FLAGS.demo_data, [t for t in FLAGS.tflops if float(t) > 0])))
      return
    print(json.dumps(bench(FLAGS.config, FLAGS.steps)))
  except UserError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)


def entry():
  """`python -m fjax.bench` and the `fjax-bench` console script (fjax.util.cli)."""
  from fjax.util import cli  # pylint: disable=g-import-not-at-top
  config_flags.DEFINE_config_file('config', None, 'Config file[:preset].', lock_config=True)
  cli.run(main, __doc__, __name__, config_files=('config',))


if __name__ == '__main__':
  entry()
