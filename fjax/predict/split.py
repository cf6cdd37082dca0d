"""predict on --split: faces of the run's own data set drawn beside their ground truth
(face | predicted map | true mask | the model's own panels), one PNG row per face."""
from __future__ import annotations

import json
import os

import cv2
import numpy as np

from fjax.predict import outputs, pictures


def predict_split(workdir: str, split: str, output: str, limit: int = 16,
                  overwrite: bool = False, cam: str | None = None,
                  cam_batch: int = 64) -> list[dict]:
  """The first `limit` faces of a split of the run's data set, each as one PNG row of
  titled panels: face | predicted map (or `cam`) | ground-truth mask | the model's own
  panels (predicted and ground-truth pairs, e.g. the local-similarity maps of fig. 5),
  under the face's label and fake probability, with the colour bar on the right."""
  from fjax import inference  # pylint: disable=g-import-not-at-top
  from fjax.data import examples, sources  # pylint: disable=g-import-not-at-top
  earlier = outputs.earlier_results(output, overwrite)
  config, forward = inference.load_run(workdir, cam=cam, cam_batch=cam_batch)
  source = sources.data_source(config, split)
  listing = outputs.start(output, earlier, ('predictions.jsonl',))['predictions.jsonl']
  title, what, scale = pictures.map_title(forward.map_kind)
  rows, recipe, size = [], examples.Recipe.of(config), pictures.OVERLAY_SIZE
  for i in range(min(limit, len(source))):
    ex = examples.prepare(source[i], recipe, None)
    images, masks = ex['image'][None], ex['mask'][None]
    scores, maps = map(np.asarray, forward(images))
    extra = {k: np.asarray(v)[0] for k, v in forward.panels(images, masks).items()}
    face = cv2.resize(source[i]['image'], (size, size))
    label = int(ex['label'])
    picture = pictures.compose(
        [('face', face), (title, pictures.blend(face, maps[0])),
         ('mask', pictures.heat(ex['mask']))] +
        [(k, pictures.heat(v)) for k, v in extra.items()],
        f'{("real", "fake")[min(label, 1)]} face, fake probability {float(scores[0]):.3f}'
        f'  |  {what}', scale)
    name = f'{split}_{i:04d}.png'
    rows.append({'split': split, 'index': i, 'label': label,
                 'fake_probability': float(scores[0]), 'panels': ['face', 'map', 'mask',
                                                                  *extra], 'png': name})
    if forward.map_kind != 'model':
      rows[-1]['map'] = forward.map_kind
    listing.write(json.dumps(rows[-1]) + '\n')  # the row first: every PNG is listed
    listing.flush()
    outputs.write_picture(os.path.join(output, name), picture)
  listing.close()
  return rows
