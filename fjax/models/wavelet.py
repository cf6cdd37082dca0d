"""Detect and Locate's noise label on device (`input.noise_on=device`): the wavelet Wiener
residual of `fjax.data.labels.noise_residual`, batched in JAX inside the train step.

PyWavelets' periodized DWT of a length-n signal is, after padding an odd n with its last
sample to 2m, a "circulant by two" matrix: a[k] = sum_t f[t] x[(2k + t) mod 2m] (detail
filter g alike), and its inverse is the transpose (an orthogonal wavelet). The taps f, g
are read once from PyWavelets itself (the row of its transform of a unit vector), so the
device transform is the host's, written as rolls and strided slices; `tests/test_labels.py`
checks the residual against the host's on real faces.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


@functools.lru_cache(maxsize=None)
def _taps(n: int, wavelet: str) -> tuple[tuple[tuple[int, float], ...], ...]:
  """The (offset o, f[o]) and (o, g[o]) nonzero taps of the level transform of a length-n
  signal (padded to N = 2m), offsets in (-N/2, N/2]."""
  import pywt  # pylint: disable=g-import-not-at-top
  size = n + n % 2
  # Row 0 of a circulant-by-two matrix: f[t] = L[0, t], coefficient 0 of the transform of
  # the unit vector e_t (g alike).
  rows = [np.array([pywt.dwt(e, wavelet, mode='periodization')[i][0]
                    for e in np.eye(size)]) for i in (0, 1)]
  return tuple(tuple((t if 2 * t <= size else t - size, float(v))
                     for t, v in enumerate(r) if v != 0) for r in rows)


def _wrap(x, axis: int, before: int, after: int):
  """x extended periodically along `axis` by `before` and `after` samples."""
  pad = [(0, 0)] * x.ndim
  pad[axis] = (before, after)
  return jnp.pad(x, pad, mode='wrap')


def _analysis(x, axis: int, wavelet: str):
  """One periodized DWT level along `axis`: (approximation, detail),
  a[k] = sum_o f[o] x[(2k + o) mod N]."""
  n = x.shape[axis]
  if n % 2:  # PyWavelets' periodization extends an odd signal by its last sample
    x = jnp.concatenate([x, lax.slice_in_dim(x, n - 1, n, axis=axis)], axis)
  size, out = x.shape[axis], []
  for taps in _taps(n, wavelet):
    before = max(0, -min(o for o, _ in taps))
    xp = _wrap(x, axis, before, max(0, max(o for o, _ in taps)))
    out.append(sum(v * lax.slice_in_dim(xp, before + o, before + o + size, 2, axis)
                   for o, v in taps))
  return out


def _synthesis(a, d, n: int, axis: int, wavelet: str):
  """The inverse level (the transpose), its first n samples: by parity p of the output,
  x[2i + p] = sum_{o = p mod 2} f[o] a[i + (p - o) / 2] + g[o] d[i + (p - o) / 2]."""
  m, phases = a.shape[axis], []
  for p in (0, 1):
    total = 0
    for c, taps in zip((a, d), _taps(n, wavelet)):
      shifts = [((p - o) // 2, v) for o, v in taps if (o - p) % 2 == 0]
      before = max(0, -min(s for s, _ in shifts))
      cp = _wrap(c, axis, before, max(0, max(s for s, _ in shifts)))
      total = total + sum(v * lax.slice_in_dim(cp, before + s, before + s + m, axis=axis)
                          for s, v in shifts)
    phases.append(total)
  x = jnp.stack(phases, axis + 1)
  x = x.reshape(*a.shape[:axis], 2 * m, *a.shape[axis + 1:])
  return lax.slice_in_dim(x, 0, n, axis=axis)


def _box_mean(x, w: int):
  """scipy.ndimage.uniform_filter(x, w, mode='reflect') over axes 1, 2 (odd w)."""
  r = w // 2
  x = jnp.pad(x, ((0, 0), (r, r), (r, r)), mode='symmetric')
  return lax.reduce_window(x, 0.0, lax.add, (1, w, w), (1, 1, 1), 'VALID') / (w * w)


def _wiener_gain(c, sigma: float, windows=(3, 5, 7, 9)):
  """sigma^2 / (var + sigma^2), var the local Wiener variance of `labels`."""
  var = jnp.min(jnp.stack([jnp.maximum(_box_mean(c * c, w) - sigma ** 2, 0.0)
                           for w in windows]), 0)
  return sigma ** 2 / (var + sigma ** 2)


def noise_residual(images, sigma: float, wavelet: str = 'db4', levels: int = 4):
  """[..., H, W, C] images on the [0, 255] scale -> the residual, float32, per channel
  (`labels.noise_residual` of each image)."""
  import pywt  # pylint: disable=g-import-not-at-top
  lead, (h, w, c) = images.shape[:-3], images.shape[-3:]
  x = jnp.moveaxis(images.reshape(-1, h, w, c).astype(jnp.float32), 3, 1)
  x = x.reshape(-1, h, w)  # one plane per image and channel
  depth = min(levels, pywt.dwt_max_level(min(h, w), pywt.Wavelet(wavelet).dec_len))
  details, shapes = [], []
  for _ in range(depth):
    shapes.append(x.shape[1:])
    lo, hi = _analysis(x, 1, wavelet)
    (ll, lh), (hl, hh) = (_analysis(lo, 2, wavelet), _analysis(hi, 2, wavelet))
    details.append([b * _wiener_gain(b, sigma) for b in (lh, hl, hh)])
    x = ll
  rec = jnp.zeros_like(x)  # the approximation is zeroed
  for (lh, hl, hh), (n0, n1) in zip(details[::-1], shapes[::-1]):
    rec = rec[:, :lh.shape[1], :lh.shape[2]]  # PyWavelets trims to the detail's shape
    lo = _synthesis(rec, lh, n1, 2, wavelet)
    hi = _synthesis(hl, hh, n1, 2, wavelet)
    rec = _synthesis(lo, hi, n0, 1, wavelet)
  out = jnp.moveaxis(rec.reshape(-1, c, h, w), 1, 3)
  return out.reshape(*lead, h, w, c)


def noise_label(image, mean, std, sigma: float):
  """The noise label of normalised model inputs [..., H, W, 3]: their [0, 255] image
  ((x * std + mean) * 255, `examples.normalize` undone) through `noise_residual`."""
  pixels = (image * jnp.asarray(std, jnp.float32) + jnp.asarray(mean, jnp.float32)) * 255.0
  return jax.lax.stop_gradient(noise_residual(pixels, sigma))
