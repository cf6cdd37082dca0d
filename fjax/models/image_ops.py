"""Fixed image operators that run on device inside the models (one implementation each)."""
from __future__ import annotations

import numpy as np


def dct_basis(h: int, w: int, u: int, v: int) -> np.ndarray:
  """The orthonormal 2-D DCT-II basis image of frequency (u, v) on an h x w grid:
  c_u c_v cos(pi u (i + 1/2) / h) cos(pi v (j + 1/2) / w), c_0 = sqrt(1/n), else sqrt(2/n)
  (MSCCNet eq. 6 with FcaNet's normalisation). float32 (h, w)."""
  def axis(n, f):
    scale = np.sqrt((1.0 if f == 0 else 2.0) / n)
    return scale * np.cos(np.pi * f * (np.arange(n) + 0.5) / n)
  return np.outer(axis(h, u), axis(w, v)).astype(np.float32)


def dct_bases(h: int, w: int, k: int) -> np.ndarray:
  """The k*k basis images with (u, v) in {0..k-1}^2, row-major in (u, v): (k*k, h, w)."""
  return np.stack([dct_basis(h, w, u, v) for u in range(k) for v in range(k)])


def _depthwise(x, kernels: np.ndarray):
  """Correlates every channel of NHWC x with each (k, k) kernel, symmetric borders
  (scipy.ndimage's 'reflect'): [B, H, W, C * len(kernels)] (kernel-major per channel)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  k = kernels.shape[-1]
  c = x.shape[-1]
  x = jnp.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)), mode='symmetric')
  rhs = jnp.asarray(np.tile(kernels.transpose(1, 2, 0)[:, :, None, :], (1, 1, 1, c))
                    .reshape(k, k, 1, c * len(kernels)), x.dtype)
  return jax.lax.conv_general_dilated(x, rhs, (1, 1), 'VALID', feature_group_count=c,
                                      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


SOBEL = np.array([[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],     # d/dx
                  [[-1, -2, -1], [0, 0, 0], [1, 2, 1]]], np.float32)  # d/dy


def sobel(x):
  """Per-channel Sobel gradient magnitude sqrt(gx^2 + gy^2) of NHWC images (FoCus's
  auxiliary modality: 3 channels in, 3 out)."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  g = _depthwise(x, SOBEL).reshape(*x.shape, 2)
  return jnp.sqrt(jnp.sum(g * g, -1) + 1e-12)


# The three SRM high-pass residual filters of Zhou et al. (RGB-N), applied to grey.
SRM = np.array([
    np.pad(np.array([[-1, 2, -1], [2, -4, 2], [-1, 2, -1]]) / 4.0, 1),
    np.array([[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2],
              [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]]) / 12.0,
    np.pad(np.array([[1, -2, 1]]) / 2.0, ((2, 2), (1, 1))),
], np.float32)


def srm(x):
  """The three SRM residuals of the grey image: [B, H, W, 3]."""
  grey = (x * np.array([0.299, 0.587, 0.114], np.float32)).sum(-1, keepdims=True)
  return _depthwise(grey, SRM)


def block_dct(x, block: int = 8):
  """JPEG-style orthonormal 2-D DCT-II of every non-overlapping block x block tile of
  every channel, coefficients in place: [B, H, W, C] (H, W multiples of `block`)."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  b, h, w, c = x.shape
  d = jnp.asarray(np.stack([dct_basis(block, 1, u, 0)[:, 0] for u in range(block)]),
                  x.dtype)  # rows: basis vectors
  tiles = x.reshape(b, h // block, block, w // block, block, c)
  coef = jnp.einsum('ui,bhiwjc,vj->bhuwvc', d, tiles, d)
  return coef.reshape(b, h, w, c)


def adaptive_avg_pool(x, out_hw: tuple[int, int]):
  """PyTorch's adaptive_avg_pool2d on NHWC x: output cell i averages rows
  floor(i H / h) .. ceil((i + 1) H / h) - 1 (bins overlap when H is not a multiple of h),
  likewise columns; as two fixed averaging matrices."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  def bins(n, m):
    a = np.zeros((m, n), np.float32)
    for i in range(m):
      lo, hi = (i * n) // m, -((-(i + 1) * n) // m)
      a[i, lo:hi] = 1.0 / (hi - lo)
    return a
  rows, cols = bins(x.shape[1], out_hw[0]), bins(x.shape[2], out_hw[1])
  return jnp.einsum('ih,bhwc,jw->bijc', jnp.asarray(rows, x.dtype), x, jnp.asarray(cols, x.dtype))
