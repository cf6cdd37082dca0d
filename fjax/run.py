"""Opening a run, once for every entrance (train, eval, summary, robustness, predict, map
export, bench, weight import, the tests): the config's model (its module, checked against
the contract by the registry, and the built network), the device mesh, and the train state
(fresh, abstract, or restored from a workdir's checkpoint)."""
from __future__ import annotations

import dataclasses
import importlib
import json
import os
import types
from typing import Any

import jax

from fjax import registry
from fjax.trainer import checkpoint, metrics, sharding, state
from fjax.util import files
from fjax.util.errors import UserError
from fjax.util.paths import check_dir_path


@dataclasses.dataclass(frozen=True)
class Run:
  config: Any
  model_lib: types.ModuleType
  model: Any
  mesh: jax.sharding.Mesh

  def abstract_state(self):
    """(ShapeDtypeStructs with shardings, shardings) of the train state, no compute."""
    return state.abstract_state(self.config, self.model, self.mesh, self.model_lib.RNGS)

  def fresh_state(self):
    """(a new train state on the mesh with `init_from` weights merged in, shardings)."""
    return state.create(self.config, self.model, self.mesh, self.model_lib.RNGS)

  def restore(self, workdir: str, step: int | None = None):
    """(state, step) of a checkpoint of `workdir`, read only: `step`, else the one the
    config's `test_checkpoint` names (the newest, or the best-validation one)."""
    mgr = checkpoint.manager(workdir, read_only=True)
    if mgr.latest_step() is None:
      raise UserError(f'{workdir} holds no checkpoint; train first')
    abstract, _ = self.abstract_state()
    step = checkpoint.test_step(mgr, self.config) if step is None else step
    return checkpoint.restore(mgr, abstract, step=step)


def open_run(config) -> Run:
  """The config's model and mesh (the mesh needs `jax.distributed` set up first)."""
  model_lib = registry.model_module(config.model.name)
  registry.check_config(model_lib, config)
  metrics.check_rules(config.evaluation.video_score, config.evaluation.faceless)
  return Run(config, model_lib, model_lib.build(config), sharding.make_mesh(config))


def saved_config(workdir: str):
  """The config a workdir was trained with (its config.json), keys added to fjax since
  then at their defaults, on a data-parallel mesh of this machine's devices."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  check_dir_path(workdir, '--workdir')
  path = os.path.join(workdir, 'config.json')
  if not files.isfile(path):
    raise UserError(f'{workdir} is not an fjax workdir (no config.json)')
  saved = json.loads(files.read_text(path))
  tamper = saved.get('input', {}).get('tamper', {})
  if 'artefact' in tamper:  # written before input.tamper.artefact became input.artefact
    saved['input'].setdefault('artefact', tamper.pop('artefact'))
  config = ml_collections.ConfigDict(with_defaults(
      saved, defaults_of(saved.get('model', {}).get('name', ''))))
  config.mesh.axes, config.mesh.shape, config.mesh.param_rules = ['data'], [-1], []
  return config


def with_defaults(saved: dict, defaults: dict) -> dict:
  """A workdir's saved config with keys added since it was written set to their defaults."""
  out = dict(saved)
  for key, value in defaults.items():
    if key not in out:
      out[key] = value
    elif isinstance(value, dict) and isinstance(out[key], dict):
      out[key] = with_defaults(out[key], value)
  return out


def defaults_of(model_name: str) -> dict:
  """The defaults of the model's own config file (its module's `CONFIG`; the base
  config's for an unknown model): what a workdir written before a key existed gets."""
  try:
    module = registry.model_module(model_name)
  except UserError:
    from configs import common  # pylint: disable=g-import-not-at-top
    return common.get_base_config().to_dict()
  return importlib.import_module(f'configs.{module.CONFIG}').get_config().to_dict()
