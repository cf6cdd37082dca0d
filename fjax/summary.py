"""`--mode=summary`: parameter counts per module and output shapes, without training."""
from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from fjax.util import files


def write_summary(config, model_lib, model, workdir: str) -> dict:
  size = config.input.image_size
  images = jax.ShapeDtypeStruct((config.batch_size, size, size, 3), jnp.float32)
  rngs = {name: jax.random.key(i) for i, name in enumerate(('params', *model_lib.RNGS))}
  variables = jax.eval_shape(lambda x: model.init(rngs, x, train=False), images)
  outputs = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, images)
  per_module = {name: int(sum(np.prod(x.shape) for x in jax.tree.leaves(sub)))
                for name, sub in variables['params'].items()}
  total = sum(per_module.values())
  result = {'total_params': int(total), 'params_per_module': per_module,
            'outputs': {k: list(v.shape) for k, v in outputs.items()},
            'score': 'score(outputs) -> [B]', 'input': [config.batch_size, size, size, 3]}
  if jax.process_index() == 0:
    width = max(map(len, per_module)) + 2
    for name, count in per_module.items():
      print(f'{name:<{width}}{count:>14,}')
    print(f'{"total":<{width}}{total:>14,}')
    for name, shape in result['outputs'].items():
      print(f'output {name}: {tuple(shape)}')
    files.write_text(os.path.join(workdir, 'summary.json'), json.dumps(result, indent=2))
  return result
