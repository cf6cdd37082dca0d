"""AUNet's AU maps on device (`input.au_maps_on=device`): `fjax.data.labels.au_maps` made
in the train step from the landmarks the input pipeline ships (`landmarks`, at the input
size, and `flipped`, the example's horizontal flip), instead of 15 maps per face.

The ellipses are `labels.au_ellipses` itself, run with jax.numpy; the blur is OpenCV's
`GaussianBlur(ellipses, (0, 0), sigma)` on float32 written out: its kernel (read once from
`cv2.getGaussianKernel`, size round(8 sigma + 1) | 1) applied along rows and columns with
its default border, BORDER_REFLECT_101, as two matmuls by a banded matrix. `tests/
test_labels.py` checks the maps against the host's on real faces.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from fjax.data import labels


@functools.lru_cache(maxsize=None)
def _kernel(sigma: float) -> tuple[float, ...]:
  """OpenCV's Gaussian taps for a float32 image: ksize = round(sigma * 4 * 2 + 1) | 1."""
  import cv2  # pylint: disable=g-import-not-at-top
  size = int(np.round(sigma * 8 + 1)) | 1
  return tuple(float(t) for t in cv2.getGaussianKernel(size, sigma, cv2.CV_32F).ravel())


@functools.lru_cache(maxsize=None)
def _blur_matrix(size: int, sigma: float) -> np.ndarray:
  """[size, size] B with (B @ x)[i] = sum_t taps[t] x[reflect101(i + t - r)]: the 1-D blur
  along one axis, borders folded in, applied as a matmul (the MXU's or tensor cores'
  work, one read of the maps, instead of a pass per tap)."""
  taps = _kernel(sigma)
  r, out = len(taps) // 2, np.zeros((size, size), np.float64)
  for i in range(size):
    for t, w in enumerate(taps):
      j = abs(i + t - r)  # reflect-101 (the edge sample not repeated), as often as needed
      while j >= size or j < 0:
        j = abs(2 * (size - 1) - j)
      out[i, j] += w
  return out.astype(np.float32)


def au_maps(landmarks, flipped, size: int, sigma: float = 3.0):
  """[..., 68, 2] landmarks (x, y in input pixels) and [...] flips -> [..., size, size,
  15] AU maps Y_att: the ellipses blurred, each scaled to max 1, then flipped where the
  example was (the host flips its maps after making them)."""
  lead = landmarks.shape[:-2]
  lm = landmarks.reshape(-1, *landmarks.shape[-2:])
  maps = jax.vmap(lambda l: labels.au_ellipses(l, size, xp=jnp))(lm)  # [N, s, s, 15]
  b = jnp.asarray(_blur_matrix(size, float(sigma)))
  high = jax.lax.Precision.HIGHEST  # float32 products (not TF32 / bf16 passes)
  maps = jnp.einsum('ij,njxc->nixc', b, maps, precision=high)  # down the columns
  maps = jnp.einsum('ij,nyjc->nyic', b, maps, precision=high)  # along the rows
  maps = maps / jnp.maximum(maps.max((1, 2), keepdims=True), 1e-12)
  flip = flipped.reshape(-1)[:, None, None, None] != 0
  maps = jnp.where(flip, maps[:, :, ::-1], maps)
  return maps.reshape(*lead, size, size, maps.shape[-1])
