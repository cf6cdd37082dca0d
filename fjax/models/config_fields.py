"""A model's Flax module built from `config.model`, so that each hyperparameter is named
once as a module field and once as a config default (configs/common.py or the model's
configs/ file) and reaches the module without being listed again in its build."""
from __future__ import annotations

import dataclasses

import flax.linen as nn

from fjax.models.layers import compute_dtype
from fjax.util.errors import UserError

FLAX_FIELDS = ('parent', 'name')  # set by Flax on every module, not hyperparameters


def from_config(module_cls: type[nn.Module], config, **derived) -> nn.Module:
  """module_cls with each field taken from the `config.model` key of the same name.

  `dtype` comes from model.dtype through `compute_dtype`; `derived` gives the fields a
  model computes from several keys or from other sections of the config (they are not
  looked up). A field that is neither is one line (UserError) when config.model lacks its
  key. Lists (sequences read back from a workdir's config.json) become tuples: a Flax
  module's fields must hash.
  """
  fields = [f.name for f in dataclasses.fields(module_cls)
            if f.init and f.name not in FLAX_FIELDS]
  values = dict(derived)
  if 'dtype' in fields and 'dtype' not in values:
    values['dtype'] = compute_dtype(config)
  wanted = [f for f in fields if f not in values]
  missing = [f for f in wanted if f not in config.model]
  if missing:
    raise UserError(f'config.model lacks {", ".join(missing)}, needed by '
                    f'{module_cls.__module__}.{module_cls.__qualname__}: give each a default '
                    'in the model\'s file under configs/')
  for f in wanted:
    value = config.model[f]
    values[f] = tuple(value) if isinstance(value, list) else value
  return module_cls(**values)
