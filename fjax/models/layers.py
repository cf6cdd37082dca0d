"""Small building blocks shared by the models (one implementation each)."""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

Dtype = Any


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


class SeparableConv2d(nn.Module):
  """Depthwise k x k conv (`conv1`) then pointwise 1x1 conv (`pointwise`), no bias."""
  features: int
  kernel_size: int = 3
  strides: int = 1
  dilation: int = 1
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    pad = self.dilation * (self.kernel_size // 2)
    x = nn.Conv(x.shape[-1], (self.kernel_size,) * 2, strides=self.strides,
                padding=[(pad, pad)] * 2, kernel_dilation=self.dilation,
                feature_group_count=x.shape[-1], use_bias=False, dtype=self.dtype,
                name='conv1')(x)
    return nn.Conv(self.features, (1, 1), use_bias=False, dtype=self.dtype,
                   name='pointwise')(x)

