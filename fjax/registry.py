"""Looks models up by name (`config.model.name` is a module of `fjax.models`) and holds
the contract between a model and the shared code. The trainer, evaluator, predictor and
input pipeline know a model only through it.

Required of a model module:
  build(config) -> flax.linen.Module, called as module(images, train=...).
  loss_fn(outputs, batch, config) -> (loss, {term: value}).
  score(outputs) -> [B] fake probability.
  localization(outputs) -> [B, h, w] map in [0, 1].
  BATCH_KEYS: the batch entries its loss and training call read (keys of the batch
    schema, `fjax.data.schema`). They are what travels to the device (with the
    bookkeeping keys every batch has: valid, row); labels among them (`noise`,
    `au_maps`, `method_label`) must be made by the input pipeline, i.e. be named in the
    config's `input.labels`.
  RNGS: the PRNG streams its calls draw from; initialisation and every training step
    get exactly these (besides 'params').
  CONFIG: the name of its config file under configs/ (defaults of old workdirs).

Optional hooks (looked up with `hook`, nowhere else):
  train_inputs(batch) -> extra keyword arguments of the training call (AUNet's tampering
    mask).
  class_predictions(outputs) -> [B] predicted class of an n-way head, scored against the
    batch's `method_label` by evaluation (Detect and Locate's five-way variant).
  panels(outputs, masks) -> {name: [B, h, w]} extra maps predict shows next to the
    localisation map (FoCus's CARP, local similarity's similarity maps).
Optional declaration:
  SKIPS_IGNORE = True: its losses skip mask pixels labelled `examples.IGNORE` (-1), so
    that it may train on the padded crops of `input.augment=msccnet` (MSCCNet's).
"""
from __future__ import annotations

import importlib
import pkgutil
import types
from typing import Callable

from fjax import models
from fjax.data import examples, schema
from fjax.util.errors import UserError

REQUIRED = ('build', 'loss_fn', 'score', 'localization', 'BATCH_KEYS', 'RNGS', 'CONFIG')
HOOKS = ('train_inputs', 'class_predictions', 'panels')


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
  unknown = set(module.BATCH_KEYS) - set(schema.STORED) - set(schema.LABELS)
  if unknown:
    raise UserError(f'fjax.models.{name}.BATCH_KEYS: no input makes {sorted(unknown)}')
  return module


def hook(model_lib: types.ModuleType, name: str) -> Callable | None:
  """An optional hook of the contract (`HOOKS`), or None where the model has none."""
  if name not in HOOKS:
    raise KeyError(f'{name} is not a hook of the model contract ({", ".join(HOOKS)})')
  return getattr(model_lib, name, None)


def check_config(model_lib: types.ModuleType, config) -> None:
  """One line when the config's input pipeline does not make a batch key the model reads
  or is asked for a label it cannot make."""
  unknown = set(config.input.labels) - set(schema.LABELS)
  if unknown:
    raise UserError(f'input.labels: unknown {sorted(unknown)}; known: {list(schema.LABELS)}')
  for switch in schema.SWITCHES.values():
    if config.input.get(switch, 'host') not in ('host', 'device'):
      raise UserError(f'input.{switch}={config.input[switch]!r}: use host or device')
  if 'au_maps' in schema.on_device(config) and config.input.augment == 'msccnet':
    raise UserError('input.au_maps_on=device ships landmarks, which input.augment=msccnet '
                    'pads away: use input.au_maps_on=host')
  if config.input.augment == 'msccnet' and not getattr(model_lib, 'SKIPS_IGNORE', False):
    raise UserError(f'input.augment=msccnet pads crops with mask {examples.IGNORE} (MSCCNet\'s '
                    f'released pipeline), which the losses of {config.model.name} do not skip')
  needed = set(model_lib.BATCH_KEYS) - set(schema.STORED) - set(config.input.labels)
  if needed:
    raise UserError(f'model {config.model.name} reads {", ".join(sorted(needed))}: add '
                    f'{"them" if len(needed) > 1 else "it"} to input.labels')


def batch_keys(model_lib: types.ModuleType, config) -> tuple[str, ...]:
  """What travels to the device, in the schema's order: the bookkeeping keys every batch
  has, the model's `BATCH_KEYS` and the config's extra `input.labels` (e.g. Detect and
  Locate's five-way `method_label`, read by its loss when the variant is on), and the
  landmarks the train step makes AU maps from (`input.au_maps_on=device`)."""
  return tuple(k for k in schema.made(config)
               if k in schema.BOOKKEEPING or k in model_lib.BATCH_KEYS
               or k in config.input.labels or k in schema.AU_INPUTS)
