"""Layer benchmarks run through `fjax.bench`: memory of the local-similarity map
(`--llsm`) and the two depthwise-convolution implementations (`--depthwise`)."""
from __future__ import annotations

import time


def bench_llsm(sizes=(7, 14, 21, 28), channels: int = 728, hidden: int = 64,
               batch: int = 8) -> list[dict]:
  """XLA's temporary memory for forward+backward of the similarity map: the decomposed
  LLSM ((hw)^2 x hidden) next to the explicit pair tensor ((hw)^2 x 2C)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from fjax.models import local_similarity as ls  # pylint: disable=g-import-not-at-top
  rows = []
  for side in sizes:
    feat = jnp.zeros((batch, side, side, channels))
    module = ls.LLSM(hidden)
    params = jax.eval_shape(lambda f: module.init(jax.random.key(0), f), feat)['params']
    p = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), params)

    def decomposed(f, p):
      return module.apply({'params': p}, f).sum()

    def naive(f, p):
      return ls.naive_pairs(f, p['kernel_p'], p['kernel_q'], p['bias'], p['out_kernel'],
                            p['out_bias']).sum()
    row = {'feature': f'{side}x{side}x{channels}', 'pairs': (side * side) ** 2,
           'batch': batch, 'hidden': hidden}
    for name, fn in (('decomposed', decomposed), ('naive', naive)):
      mem = jax.jit(jax.grad(fn, argnums=(0, 1))).lower(feat, p).compile().memory_analysis()
      row[f'{name}_temp_mib'] = round(mem.temp_size_in_bytes / 2**20, 1) if mem else None
    rows.append(row)
  return rows


# (name, input [B, H, W, C], kernel, stride): Xception's middle flow at 299 px, its entry
# flow, EfficientNet-B4's stride-2 5x5 and a late 3x3 layer at 380 px; batch 8.
DEPTHWISE_LAYERS = (('xception_middle', (8, 19, 19, 728), 3, 1),
                    ('xception_entry', (8, 74, 74, 256), 3, 1),
                    ('effnet_b4_5x5_s2', (8, 48, 48, 336), 5, 2),
                    ('effnet_b4_3x3', (8, 12, 12, 1632), 3, 1))


def bench_depthwise(steps: int) -> list[dict]:
  """Seconds per forward and per forward+backward of `layers.depthwise_conv` with
  impl='conv' (XLA's grouped convolution) and 'shifts', on the default backend."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from fjax.models.layers import depthwise_conv  # pylint: disable=g-import-not-at-top
  rows = []
  for name, shape, k, stride in DEPTHWISE_LAYERS:
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    w = jnp.asarray(rng.standard_normal((k, k, 1, shape[-1])), jnp.float32)
    row = {'layer': name, 'input': list(shape), 'kernel': k, 'stride': stride,
           'backend': jax.default_backend()}
    for impl in ('conv', 'shifts'):
      fwd = jax.jit(lambda x, w, impl=impl: depthwise_conv(x, w, stride, 'SAME', 1, impl))
      grad = jax.jit(jax.grad(lambda x, w, impl=impl: jnp.sum(
          depthwise_conv(x, w, stride, 'SAME', 1, impl) ** 2), (0, 1)))
      for kind, fn in (('fwd', fwd), ('fwd_bwd', grad)):
        jax.block_until_ready(fn(x, w))  # compile
        start = time.perf_counter()
        for _ in range(steps):
          jax.block_until_ready(fn(x, w))
        row[f'{impl}_{kind}_ms'] = round((time.perf_counter() - start) / steps * 1e3, 2)
    row['speedup_fwd_bwd'] = round(row['conv_fwd_bwd_ms'] / row['shifts_fwd_bwd_ms'], 2)
    rows.append(row)
  return rows
