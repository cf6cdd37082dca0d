"""Loss terms and label resizing shared by the models. Losses are float32 whatever
model.dtype: logits are cast before the log-sigmoid and the means."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def masked_mean(values, weight):
  """Mean of per-example `values` [B, ...] over examples with weight 1 (padding 0)."""
  values = values.astype(jnp.float32).reshape(values.shape[0], -1).mean(axis=1)
  return jnp.sum(values * weight) / jnp.maximum(jnp.sum(weight), 1.0)


def bce(logits, targets, weight):
  """Binary cross entropy with logits, averaged over valid examples."""
  return masked_mean(optax.sigmoid_binary_cross_entropy(logits.astype(jnp.float32), targets),
                     weight)


def resize_map(m, hw: tuple[int, int]):
  """Bilinear (antialiased when shrinking) resize of [B, H, W] maps to [B, h, w]."""
  return jax.image.resize(m, (m.shape[0], *hw), method='linear', antialias=True)
