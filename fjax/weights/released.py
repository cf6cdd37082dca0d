"""The authors' released checkpoints of Detect and Locate and MSCCNet -> whole fjax models.
Each model's key map lives in `fjax/weights/<model>.py`."""
from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
import numpy as np

from fjax.util.errors import UserError
from fjax.weights.timm import read_state_dict


RELEASED = ('semantic_noise', 'msccnet')  # models whose authors' checkpoints import


def load_model(model: str, path: str, preset: str = 'paper,official'):
  """(module, variables) of an authors' released checkpoint: the module is the fjax model
  built from `configs/<model>.py:<preset>`."""
  if model not in RELEASED:
    raise UserError(f'no released weights are known for {model!r}; one of {", ".join(RELEASED)}')
  return from_state_dict(model, read_state_dict(path), released_config(model, preset))


def released_config(model: str, preset: str):
  """configs/<model>.py:<preset>, an unknown preset as one line."""
  try:
    return importlib.import_module(f'configs.{model}').get_config(preset)
  except ValueError as e:
    raise UserError(f'--preset {preset}: {e}') from e


def from_state_dict(model: str, state_dict: dict[str, np.ndarray], config):
  """(module, variables) of a released state dict for `config` (its key map:
  `fjax/weights/<model>.py`)."""
  from fjax import registry  # pylint: disable=g-import-not-at-top
  module = registry.model_module(model).build(config)
  size, key = config.input.image_size, jax.random.key(0)
  rngs = {name: key for name in ('params', *registry.model_module(model).RNGS)}
  shapes = jax.eval_shape(lambda: module.init(rngs, jnp.zeros((1, size, size, 3)),
                                              train=False))
  converter = importlib.import_module(f'fjax.weights.{model}')
  return module, converter.convert(state_dict, shapes, config)
