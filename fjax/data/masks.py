"""Mask sources (`dataset.mask_source`): which stored map is a fake's ground truth, and the
small language naming them (`diff@0.1`: the stored difference map thresholded at 0.1)."""
from __future__ import annotations

import os

import numpy as np

from fjax.data import labels
from fjax.util import files
from fjax.util.errors import UserError


MASK_SOURCES = ('mask', *labels.PAIR_MAPS, 'diff@0.1', 'focus')


def _parse(source: str) -> tuple[str, float | None]:
  """'diff@0.1' -> ('diff', 0.1): the stored map and the threshold that binarises it."""
  name, _, threshold = source.partition('@')
  return name, float(threshold) if threshold else None


def mask_feature(source: str) -> str:
  """The stored feature a `dataset.mask_source` reads."""
  return 'mask' if source == 'mask' else f'mask_{_parse(source)[0]}'


def as_source(mask: np.ndarray, source: str) -> np.ndarray:
  """A stored map in [0, 1] as the source names it (MG2: `diff@0.1`, diff > 0.1)."""
  threshold = _parse(source)[1]
  return mask if threshold is None else (mask > threshold).astype(np.float32)


def read_mask(example: dict, source: str) -> np.ndarray:
  return as_source(example[mask_feature(source)][..., 0].astype(np.float32) / 255.0, source)


def pair_map(source: str, real: np.ndarray, fake: np.ndarray) -> np.ndarray:
  """The map `source` names made from a real face and a fake of it (self-blended on the
  fly), as the builders make the stored ones."""
  return as_source(labels.PAIR_MAPS[_parse(source)[0]](real, fake), source)


def check_mask_source(config, features) -> None:
  """One clear line when the config asks for a map the data set does not hold."""
  name = config.dataset.mask_source
  if name not in MASK_SOURCES:
    raise UserError(f'dataset.mask_source={name!r} is not one of {", ".join(MASK_SOURCES)}')
  if name == 'focus':
    if config.input.self_blend_prob > 0:
      raise UserError('dataset.mask_source=focus has no map for faces self-blended on the '
                      'fly; set input.self_blend_prob=0')
    if not files.isfile(os.path.join(config.dataset.focus_maps, 'info.json')):
      raise UserError(f'dataset.focus_maps={config.dataset.focus_maps!r} holds no maps '
                      'written by python -m fjax.focus_maps')
    return
  if mask_feature(name) not in features:
    raise UserError(f'data set {config.dataset.name} holds no {mask_feature(name)!r} '
                    f'for dataset.mask_source={name!r}')
