"""The model contract (fjax.registry): every model satisfies it, and the registry refuses
modules and configs that do not."""
from __future__ import annotations

import importlib
import types
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from configs import focus_eval, xception
from fjax import bench_step, registry
from fjax import run as run_lib
from fjax.models import config_fields
from fjax.util.errors import UserError

PRESETS = [(name, 'test') for name in registry.available()] + [('semantic_noise',
                                                                 'test,five_way')]


@pytest.mark.parametrize('name,preset', PRESETS)
def test_every_model_keeps_the_contract(name, preset):
  """Its config file names it; it initialises and takes a training step's forward and
  loss drawing only from its declared RNGS, reading only its declared batch keys (the
  batch holds nothing else); its optional hooks are the contract's."""
  model_lib = registry.model_module(name)
  config = importlib.import_module(f'configs.{model_lib.CONFIG}').get_config(preset)
  assert config.model.name == name
  registry.check_config(model_lib, config)
  r = run_lib.open_run(config)
  keys = registry.batch_keys(model_lib, config)
  assert set(model_lib.BATCH_KEYS) <= set(keys)
  batch = {k: v for k, v in bench_step.synthetic_batch(config, 2).items() if k in keys}
  abstract, _ = r.abstract_state()  # init with 'params' and RNGS only
  rngs = {n: jax.random.key(i) for i, n in enumerate(model_lib.RNGS)}
  train_inputs = registry.hook(model_lib, 'train_inputs')

  def loss(st, batch):
    out, _ = r.model.apply({'params': st['params'], **st['model_state']}, batch['image'],
                           train=True, rngs=rngs, mutable=list(st['model_state']),
                           **(train_inputs(batch) if train_inputs else {}))
    return model_lib.loss_fn(out, batch, config)[0]
  assert jax.eval_shape(loss, abstract, batch).shape == ()
  public = {n for n, v in vars(model_lib).items()
            if isinstance(v, types.FunctionType) and v.__module__ == model_lib.__name__}
  for hook in registry.HOOKS:
    assert (hook in public) == (registry.hook(model_lib, hook) is not None)


def test_modules_and_configs_that_break_the_contract_are_one_line(monkeypatch):
  module = types.ModuleType('fjax.models.broken')
  monkeypatch.setitem(__import__('sys').modules, 'fjax.models.broken', module)
  with pytest.raises(UserError, match=r'is not a model \(lacks build, loss_fn'):
    registry.model_module('broken')
  for attr in registry.REQUIRED:
    setattr(module, attr, None)
  module.BATCH_KEYS = ('image', 'label', 'depth')
  with pytest.raises(UserError, match=r"BATCH_KEYS: no input makes \['depth'\]"):
    registry.model_module('broken')
  with pytest.raises(UserError, match='unknown model'):
    registry.model_module('no_such_model')
  with pytest.raises(KeyError):
    registry.hook(registry.model_module('focus'), 'no_such_hook')
  from configs import semantic_noise  # pylint: disable=g-import-not-at-top
  config = semantic_noise.get_config('test')
  config.input.labels = ()
  with pytest.raises(UserError, match='reads noise: add it to input.labels'):
    run_lib.open_run(config)
  config.input.labels, config.input.augment = ('noise',), 'msccnet'
  with pytest.raises(UserError, match='which the losses of semantic_noise do not skip'):
    run_lib.open_run(config)
  config.input.labels, config.input.augment = ('noise', 'depth'), ''
  with pytest.raises(UserError, match=r"input.labels: unknown \['depth'\]"):
    run_lib.open_run(config)
  from configs import aunet  # pylint: disable=g-import-not-at-top
  config = aunet.get_config('test')
  config.input.au_maps_on = 'gpu'
  with pytest.raises(UserError, match="input.au_maps_on='gpu': use host or device"):
    registry.check_config(registry.model_module('aunet'), config)
  config.input.au_maps_on = 'device'
  config.input.augment = 'msccnet'
  with pytest.raises(UserError, match='ships landmarks, which input.augment=msccnet'):
    registry.check_config(registry.model_module('aunet'), config)


class _Toy(nn.Module):
  sharpness: float = 1.0
  taps: tuple = ()
  size: int = 0
  dtype: Any = jnp.float32
  remat: bool = False


def test_models_take_their_fields_from_config_model_keys_of_the_same_name():
  """A key added to config.model reaches the module field of its name (lists as tuples,
  dtype through compute_dtype, derived fields as given); a missing key is one line."""
  config = xception.get_config('test')
  with pytest.raises(UserError, match=r'^config.model lacks sharpness, taps, needed by '
                     r'\S*_Toy: give each a default') as e:
    config_fields.from_config(_Toy, config, size=1)
  assert '\n' not in str(e.value)
  config.model.sharpness, config.model.taps, config.model.dtype = 2.5, [1, 3], 'bfloat16'
  toy = config_fields.from_config(_Toy, config, size=config.input.image_size)
  assert (toy.sharpness, toy.taps, toy.size, toy.dtype) == (2.5, (1, 3), 32, jnp.bfloat16)
  config = focus_eval.get_config('test')  # a renamed field: model.fpn_width
  assert registry.model_module('focus_eval').build(config).fpn_width == 16
