"""Looks models up by name: `config.model.name` is a module of `fjax.models`.

A model module provides `build(config) -> flax.linen.Module`, `loss_fn(outputs, batch,
config) -> (loss, {term: value})`, `score(outputs) -> [B]` fake probability,
`localization(outputs) -> [B, h, w]` in [0, 1], `BATCH_KEYS` and `RNGS` (the PRNG streams
its training call needs). The trainer, evaluator and predictor know nothing else.
"""
from __future__ import annotations

import importlib
import pkgutil
import types

from fjax import models
from fjax.errors import UserError

REQUIRED = ('build', 'loss_fn', 'score', 'localization', 'BATCH_KEYS', 'RNGS')


def available() -> list[str]:
  return sorted(m.name for m in pkgutil.iter_modules(models.__path__)
                if not m.ispkg and hasattr(importlib.import_module(f'fjax.models.{m.name}'),
                                           'build'))


def model_module(name: str) -> types.ModuleType:
  try:
    module = importlib.import_module(f'fjax.models.{name}')
  except ModuleNotFoundError as e:
    raise UserError(f'unknown model {name!r}; models: {", ".join(available())}') from e
  missing = [r for r in REQUIRED if not hasattr(module, r)]
  if missing:
    raise UserError(f'fjax.models.{name} is not a model (lacks {", ".join(missing)})')
  return module
