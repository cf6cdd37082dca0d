"""Backbone throughput, JAX (jit) next to timm's PyTorch in the same process and on the
same inputs: forward (eval) and forward+backward (train-mode BatchNorm) images/s, and on an
accelerator the achieved FLOP/s from XLA's cost analysis. Run through `fjax.bench`:

  python -m fjax.bench --backbones [--archs=resnet50] [--batch=8] [--steps=5]
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from fjax import bench_suite, weights

# arch -> (input size, batch) as the papers use them (MSCCNet: dilated ResNet at 512).
PAPER_SETTINGS = {
    'vit_small_patch16_224': (224, 128), 'legacy_xception': (299, 32),
    'resnet50': (512, 8), 'efficientnet_b4': (380, 32), 'tf_efficientnet_b4': (380, 32),
}


def _rate(fn, steps: int, batch: int) -> float:
  fn()  # warm-up (compiles under jit)
  t0 = time.perf_counter()
  for _ in range(steps):
    fn()
  return round(batch * steps / (time.perf_counter() - t0), 2)


def _jax(arch: str, size: int, batch: int, steps: int, images: np.ndarray) -> dict:
  kwargs = {'output_stride': 8} if arch.startswith('resnet') else {}
  module = weights.build(arch, head=True, **({'img_size': size} if 'vit' in arch else kwargs))
  variables = jax.jit(lambda: module.init(jax.random.key(0), jnp.zeros((1, size, size, 3))))()
  x = jnp.asarray(images)

  @jax.jit
  def forward(v, x):
    return module.apply(v, x, train=False)['logits']

  @jax.jit
  def grads(v, x):
    def loss(params):
      out, _ = module.apply({**v, 'params': params}, x, train=True, mutable=['batch_stats'])
      return jnp.mean(out['logits'] ** 2)
    return jax.grad(loss)(v['params'])

  out = {'jax_fwd_img_s': _rate(lambda: forward(variables, x).block_until_ready(), steps, batch),
         'jax_fwd_bwd_img_s': _rate(lambda: jax.block_until_ready(grads(variables, x)),
                                    steps, batch)}
  cost = grads.lower(variables, x).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  flops = (cost or {}).get('flops')
  if flops:
    achieved = flops * out['jax_fwd_bwd_img_s'] / batch
    out['jax_fwd_bwd_tflop_s'] = round(achieved / 1e12, 3)
    peak = bench_suite.peak_tflops(jax.devices()[0].device_kind, 'float32')
    if peak:
      out['mfu_vs_fp32_peak'] = round(achieved / (peak * 1e12), 3)
  return out


def _torch(arch: str, batch: int, steps: int, images: np.ndarray) -> dict:
  try:
    import timm  # pylint: disable=g-import-not-at-top
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return {'timm': 'not installed (pip install -r requirements-test.txt)'}
  size = images.shape[1]
  kwargs = {'output_stride': 8} if arch.startswith('resnet') else {}
  if 'vit' in arch:
    kwargs['img_size'] = size
  device = 'cuda' if torch.cuda.is_available() else 'cpu'
  model = timm.create_model(arch, pretrained=False, **kwargs).to(device)
  x = torch.from_numpy(images.transpose(0, 3, 1, 2)).to(device)
  sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)

  def forward():
    with torch.no_grad():
      model.eval()(x)
    sync()

  def fwd_bwd():
    model.train().zero_grad()
    model(x).square().mean().backward()
    sync()
  return {'torch_fwd_img_s': _rate(forward, steps, batch),
          'torch_fwd_bwd_img_s': _rate(fwd_bwd, steps, batch), 'torch_device': device}


def bench(arch: str, batch: int = 0, steps: int = 5) -> dict:
  size, paper_batch = PAPER_SETTINGS[arch]
  batch = batch or paper_batch
  images = np.random.default_rng(0).standard_normal((batch, size, size, 3)).astype(np.float32)
  out = {'arch': arch, 'image_size': size, 'batch': batch,
         'platform': jax.devices()[0].platform, 'device': jax.devices()[0].device_kind}
  out.update(_jax(arch, size, batch, steps, images))
  out.update(_torch(arch, batch, steps, images))
  for kind in ('fwd', 'fwd_bwd'):
    if f'torch_{kind}_img_s' in out:
      out[f'{kind}_jax_over_torch'] = round(out[f'jax_{kind}_img_s'] /
                                            out[f'torch_{kind}_img_s'], 2)
  return out
