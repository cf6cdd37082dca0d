"""Small building blocks shared by the models (one implementation each)."""
from __future__ import annotations

import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from fjax.util.errors import UserError

Dtype = Any
# model.dtype: the compute dtype of convolutions, dots and activations. Parameters,
# optimizer state, BatchNorm statistics, reductions, losses and outputs stay float32.
COMPUTE_DTYPES = ('float32', 'bfloat16')


def compute_dtype(config) -> jnp.dtype:
  """config.model.dtype as a dtype; anything but float32 or bfloat16 is one line (float16
  would need loss scaling, which fjax does not do)."""
  name = str(config.model.dtype)
  if name not in COMPUTE_DTYPES:
    raise UserError(f'model.dtype={name!r}: use float32 or bfloat16 (mixed precision: '
                    'bfloat16 compute, float32 parameters)')
  return jnp.dtype(name)


def batch_norm(train: bool, dtype: Dtype, name: str | None = None,
               epsilon: float = 1e-5) -> nn.BatchNorm:
  """BatchNorm with PyTorch's defaults (eps 1e-5, momentum 0.1) so timm weights load
  (the `tf_` ports of TensorFlow models use eps 1e-3).

  Under jit on a mesh the batch mean is taken over the global (sharded) batch, so the
  statistics are synchronised across devices and hosts without an explicit axis name.
  Two-pass variance (not E[x^2] - E[x]^2): the one-pass form loses digits to cancellation,
  enough for 1- and 8-device runs to drift apart.
  """
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=epsilon,
                      use_fast_variance=False, dtype=dtype, name=name)


def depthwise_conv(x, kernel, strides: int = 1, padding='SAME', dilation: int = 1,
                   impl: str = 'auto'):
  """Correlates each channel of NHWC x with its own (k, k) filter, kernel (k, k, 1, C).

  padding: 'SAME' (TF's) or ((top, bottom), (left, right)). impl 'conv' is XLA's grouped
  convolution; 'shifts' sums k*k strided slices of the padded input times per-channel
  weights: the same numbers, 9-50x faster per layer forward and backward on CPU, where
  XLA's grouped convolution is slow (`python -m fjax.bench --depthwise`); 'auto' takes
  'shifts' on CPU only.
  """
  k, c = kernel.shape[0], x.shape[-1]
  reach = (k - 1) * dilation + 1  # the dilated window
  if isinstance(padding, str):
    padding = lax.padtype_to_pads(x.shape[1:3], (reach, reach), (strides, strides), padding)
  if impl == 'auto':
    impl = 'shifts' if jax.default_backend() == 'cpu' else 'conv'
  if impl == 'conv':
    return lax.conv_general_dilated(x, kernel, (strides, strides), padding,
                                    rhs_dilation=(dilation, dilation), feature_group_count=c,
                                    dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return _shifted_sum(x, kernel, strides, tuple(map(tuple, padding)), dilation)


def _taps(x, k: int, strides: int, dilation: int, out_hw):
  """The k*k strided windows of padded x, (i, j, x[:, s*y + d*i, s*x + d*j, :])."""
  b, c = x.shape[0], x.shape[-1]
  for i in range(k):
    for j in range(k):
      yield i, j, lax.slice(x, (0, i * dilation, j * dilation, 0),
                            (b, i * dilation + (out_hw[0] - 1) * strides + 1,
                             j * dilation + (out_hw[1] - 1) * strides + 1, c),
                            (1, strides, strides, 1))


def _correlate(xp, kernel, strides: int, dilation: int):
  """y[b, y, x, c] = sum_ij xp[b, s*y + d*i, s*x + d*j, c] w[i, j, 0, c] (no padding).
  The k*k products are summed in float32 (at least) and the sum rounded once to xp's
  dtype, as XLA's convolutions accumulate bf16; one fused loop, no float32 copy."""
  k = kernel.shape[0]
  reach = (k - 1) * dilation + 1
  out_hw = [(n - reach) // strides + 1 for n in xp.shape[1:3]]
  acc = jnp.promote_types(xp.dtype, jnp.float32)
  kernel = kernel.astype(acc)
  return sum(tap.astype(acc) * kernel[i, j, 0]
             for i, j, tap in _taps(xp, k, strides, dilation, out_hw)).astype(xp.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _shifted_sum(x, kernel, strides: int, padding, dilation: int):
  return _correlate(jnp.pad(x, ((0, 0), *padding, (0, 0))), kernel, strides, dilation)


def _shifted_sum_fwd(x, kernel, strides, padding, dilation):
  return _shifted_sum(x, kernel, strides, padding, dilation), (x, kernel)


def _shifted_sum_bwd(strides, padding, dilation, residuals, g):
  """The VJP by hand, as slices and sums again: XLA on CPU would keep all k*k
  input-sized taps of autodiff's version in memory at once (10x the activation)."""
  x, kernel = residuals
  k = kernel.shape[0]
  reach = (k - 1) * dilation + 1
  xp = jnp.pad(x, ((0, 0), *padding, (0, 0)))
  # dx_p[p] = sum_i g[o] w[i] over s*o + d*i = p: g spread s apart, padded by the window,
  # correlated with the flipped kernel, then the input's own padding cut away.
  spread = [(0, 0, 0)] + [(reach - 1, n - (m - 1) * strides - 1, strides - 1)
                          for n, m in zip(xp.shape[1:3], g.shape[1:3])] + [(0, 0, 0)]
  dxp = _correlate(lax.pad(g, jnp.zeros((), g.dtype), spread), kernel[::-1, ::-1], 1, dilation)
  (top, _), (left, _) = padding
  dx = dxp[:, top:top + x.shape[1], left:left + x.shape[2]]
  # dw[i, j] = sum over batch and positions of tap_ij * g, one tap at a time in a loop
  # (unrolled, XLA on CPU would hold all k*k taps in memory at once).
  # The sums over batch and positions run in float32 (at least) whatever the dtype.
  window = [(m - 1) * strides + 1 for m in g.shape[1:3]]
  acc = jnp.promote_types(g.dtype, jnp.float32)

  def tap_grad(t, dw):
    i, j = t // k, t % k
    tap = lax.dynamic_slice(xp, (0, i * dilation, j * dilation, 0),
                            (xp.shape[0], *window, xp.shape[-1]))[:, ::strides, ::strides]
    return dw.at[t].set(jnp.sum(tap.astype(acc) * g.astype(acc), axis=(0, 1, 2)))
  dw = lax.fori_loop(0, k * k, tap_grad, jnp.zeros((k * k, x.shape[-1]), acc))
  return dx, dw.reshape(kernel.shape).astype(kernel.dtype)


_shifted_sum.defvjp(_shifted_sum_fwd, _shifted_sum_bwd)


class DepthwiseConv(nn.Module):
  """A depthwise conv with nn.Conv(feature_group_count=C)'s parameter (`kernel`, same
  shape and initialiser), so weights and checkpoints are interchangeable with it."""
  kernel_size: int
  strides: int = 1
  padding: Any = 'SAME'
  dilation: int = 1
  dtype: Dtype = jnp.float32
  kernel_init: Callable = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x):
    kernel = self.param('kernel', self.kernel_init,
                        (self.kernel_size, self.kernel_size, 1, x.shape[-1]), jnp.float32)
    x, kernel = nn.dtypes.promote_dtype(x, kernel, dtype=self.dtype)
    return depthwise_conv(x, kernel, self.strides, self.padding, self.dilation)


class SeparableConv2d(nn.Module):
  """Depthwise k x k conv (`conv1`) then pointwise 1x1 conv (`pointwise`), no bias."""
  features: int
  kernel_size: int = 3
  strides: int = 1
  dilation: int = 1
  dtype: Dtype = jnp.float32
  kernel_init: Callable = nn.initializers.lecun_normal()

  @nn.compact
  def __call__(self, x):
    pad = self.dilation * (self.kernel_size // 2)
    x = DepthwiseConv(self.kernel_size, self.strides, ((pad, pad),) * 2, self.dilation,
                      self.dtype, self.kernel_init, name='conv1')(x)
    return nn.Conv(self.features, (1, 1), use_bias=False, dtype=self.dtype,
                   kernel_init=self.kernel_init, name='pointwise')(x)

