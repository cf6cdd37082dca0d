"""A trained run opened for inference, once for every entrance that runs one on images
(fjax.predict, fjax.focus_maps, and through them the CAMs of fjax.cam): its saved config,
a checkpoint's weights on the mesh, and one jitted function images -> (fake probability,
map)."""
from __future__ import annotations

import jax

from fjax import cam as cam_lib
from fjax import registry, run as run_lib
from fjax.trainer import evaluate, sharding


def load_run(workdir: str, step: int | None = None, cam: str | None = None,
             cam_batch: int = 64):
  """(config, predict function) of the given checkpoint, else the one the run's
  `test_checkpoint` names (the newest, or the best-validation one). The function maps
  images to (fake probability, map): the model's localisation map, or with `cam`
  ('gradcam' or 'scorecam', fjax.cam) that CAM at the input size, normalised per face
  (`cam_batch`: images per Score-CAM forward). Its `map_kind` names the map ('model' or
  the CAM), `panels` gives the model's extra maps, `model`, `model_lib` and
  `variables` what it runs."""
  config = run_lib.saved_config(workdir)
  r = run_lib.open_run(config)
  model_lib, model, mesh = r.model_lib, r.model, r.mesh
  st, _ = r.restore(workdir, step)
  variables = jax.device_put(evaluate.variables(st), sharding.replicated(mesh))

  if cam is None:
    @jax.jit
    def forward(images):
      out = model.apply(variables, images, train=False)
      return model_lib.score(out), model_lib.localization(out)
  else:
    maps = cam_lib.make(cam, config.model.name, model, model_lib, cam_batch)
    forward = jax.jit(lambda images: maps(variables, images))

  @jax.jit
  def panels(images, masks):
    """Named [B, h, w] maps a model adds to the data-set rows (e.g. similarity maps)."""
    out = model.apply(variables, images, train=False)
    hook = registry.hook(model_lib, 'panels')
    return hook(out, masks) if hook else {}
  forward.panels, forward.map_kind = panels, cam or 'model'
  forward.model, forward.model_lib, forward.variables = model, model_lib, variables
  return config, forward
