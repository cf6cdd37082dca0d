"""The batch schema, declared once: every key a batch may hold, its dtype and its shape
per example. The input pipeline packs examples by it (`examples.prepare`), the registry
derives what travels to the device from it (`fjax.registry.batch_keys`), evaluation what
its step reads and bench its synthetic batches (`arrays`)."""
from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Key:
  """One batch entry: `dtype`, and `channels`: None for one value per example, 0 for an
  [s, s] map, c for an [s, s, c] map (s: `input.image_size`)."""
  dtype: type
  channels: int | None = None
  fixed: tuple[int, ...] | None = None  # a shape of its own, whatever the image size

  def shape(self, size: int) -> tuple[int, ...]:
    if self.fixed is not None:
      return self.fixed
    if self.channels is None:
      return ()
    return (size, size) if self.channels == 0 else (size, size, self.channels)


# In every example read from a data set.
STORED = {'image': Key(np.float32, 3), 'label': Key(np.int32), 'mask': Key(np.float32, 0)}
# In every batch besides what the model reads: `valid` (0 on evaluation's padding rows)
# and `row`, the example's index in its split's metadata table (`sources.table`; -1 for
# an example from no table), from which evaluation names videos and methods.
BOOKKEEPING = {'valid': Key(np.float32), 'row': Key(np.int32)}
# Labels a config may add (`input.labels`): per-pixel maps made on the fly from the final
# image and landmarks, and 'method_label', the class of a five-way detector.
LABELS = {'noise': Key(np.float32, 3), 'au_maps': Key(np.float32, 15),
          'method_label': Key(np.int32)}
# What the pipeline ships instead of the AU maps with `input.au_maps_on=device`: the
# final landmarks (x, y at the input size) and whether the example was flipped after.
AU_INPUTS = {'landmarks': Key(np.float32, fixed=(68, 2)), 'flipped': Key(np.int32)}
KEYS = {**STORED, **BOOKKEEPING, **LABELS, **AU_INPUTS}
# The switch of each label the train step can make on device (`input.<switch>`).
SWITCHES = {'noise': 'noise_on', 'au_maps': 'au_maps_on'}


def on_device(config) -> tuple[str, ...]:
  """Labels of `input.labels` the train step makes on device instead of the input
  pipeline: the noise residual from the images with `input.noise_on=device`, the AU maps
  from the shipped landmarks with `input.au_maps_on=device`."""
  return tuple(k for k, switch in SWITCHES.items() if k in config.input.labels
               and config.input.get(switch, 'host') == 'device')


def made(config) -> tuple[str, ...]:
  """The keys the input pipeline makes under `config`."""
  device = on_device(config)
  return (*STORED, *BOOKKEEPING, *(k for k in LABELS if k in config.input.labels
                                   and k not in device),
          *(AU_INPUTS if 'au_maps' in device else ()))


def evaluated(config) -> tuple[str, ...]:
  """The keys the eval step reads (a model's extra training labels stay on the host)."""
  return tuple(k for k in made(config) if k not in LABELS and k not in AU_INPUTS
               or k == 'method_label')


def cast(values: dict) -> dict:
  """One packed example: each value as its key's dtype, in `KEYS` order."""
  return {k: np.ascontiguousarray(values[k], key.dtype)
          if key.channels is not None or key.fixed
          else key.dtype(values[k]) for k, key in KEYS.items() if k in values}


def arrays(config, lead: tuple[int, ...], rng: np.random.Generator) -> dict:
  """Random arrays of every key the pipeline makes under `config`, with leading axes
  `lead`: labels 0/1, valid 1, rows 0, maps in [0, 1), images standard normal."""
  size, out = config.input.image_size, {}
  for k in made(config):
    key = KEYS[k]
    shape = (*lead, *key.shape(size))
    if k in ('image', 'noise', 'au_maps'):
      out[k] = rng.standard_normal(shape, np.float32)
    elif k == 'landmarks':
      out[k] = (rng.random(shape) * size).astype(np.float32)
    elif k == 'mask':
      out[k] = (rng.random(shape) > 0.5).astype(np.float32)
    elif k in ('label', 'method_label'):
      out[k] = rng.integers(0, 2 if k == 'label' else 5, shape).astype(key.dtype)
    else:
      out[k] = (np.ones if k == 'valid' else np.zeros)(shape, key.dtype)
  return out
