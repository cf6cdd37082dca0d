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
