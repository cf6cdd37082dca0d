"""The gallery of a run: the most confident correct and the most confident wrong faces of
its own test split (by the scores file), each drawn beside its map (the model's own, or a
CAM, through fjax.inference.load_run) and its true mask, with the face's own IoU and F1 at
0.5 (fakes) or the area it calls fake (reals)."""
from __future__ import annotations

import os

import cv2
import numpy as np

from fjax.predict import outputs, pictures
from fjax.trainer import metrics


def pick(rows: list[dict], k: int) -> tuple[list[int], list[int]]:
  """Indices of the k most confident correct and the k most confident wrong rows (decision
  at 0.5, confidence |score - 0.5|), most confident first."""
  score = np.asarray([r['score'] for r in rows], np.float64)
  label = np.asarray([r['label'] for r in rows]) > 0
  correct = (score > 0.5) == label
  order = np.argsort(-np.abs(score - 0.5), kind='stable')
  return ([int(i) for i in order if correct[i]][:k], [int(i) for i in order if not correct[i]][:k])


def face_figures(pred_map: np.ndarray, mask: np.ndarray | None, label: int) -> dict:
  """A fake face's IoU and F1 of the fake class at 0.5 (metrics.per_image_pixel_metrics),
  a real face's share of pixels called fake; {} without a mask."""
  if mask is None:
    return {}
  m = cv2.resize(np.asarray(pred_map, np.float32), mask.shape[::-1],
                 interpolation=cv2.INTER_LINEAR)
  p, t = m > 0.5, mask > 0.5
  if label > 0:
    counts = np.asarray([[(p & t).sum(), (p & ~t).sum(), (~p & t).sum()]])
    return metrics.per_image_pixel_metrics(counts, [1])
  return {'area_called_fake': float(p.mean())}


def _rows_of(table: dict, rows: list[dict]) -> list[int]:
  """The split table's row of each scores row (method, video id, frame, face)."""
  keys = {(str(m), str(v), int(f), int(k)): i for i, (m, v, f, k) in enumerate(zip(
      table['method'], table['video_id'], table['frame'], table['face']))}
  return [keys[(r['method'], str(r['video_id']), int(r['frame']), int(r['face']))]
          for r in rows]


def draw(run, rows: list[dict], output: str, prefix: str, k: int = 3,
         cam: str | None = None) -> dict:
  """PNGs of the picked faces in `output`; returns {'correct': [...], 'wrong': [...],
  'map': kind} with each face's file, scores row and figures."""
  from fjax import inference  # pylint: disable=g-import-not-at-top
  from fjax.data import examples, sources  # pylint: disable=g-import-not-at-top
  correct, wrong = pick(rows, k)
  if not correct + wrong:
    return {'correct': [], 'wrong': [], 'map': cam or 'model'}
  config, forward = inference.load_run(run.workdir, cam=cam)
  split = config.dataset.split_test
  table = sources.table(config, split)
  source, recipe = sources.data_source(config, split), examples.Recipe.of(config)
  chosen = [rows[i] for i in correct + wrong]
  prepared = [examples.prepare(source[t], recipe, None) for t in _rows_of(table, chosen)]
  raws = [source[t] for t in _rows_of(table, chosen)]
  _, maps = map(np.asarray, forward(np.stack([p['image'] for p in prepared])))
  title, what, scale = pictures.map_title(forward.map_kind)
  size = pictures.OVERLAY_SIZE
  out = {'correct': [], 'wrong': [], 'map': forward.map_kind}
  for j, (row, ex, raw) in enumerate(zip(chosen, prepared, raws)):
    face = cv2.resize(raw['image'], (size, size))
    mask = np.asarray(ex['mask'], np.float32) if 'mask' in ex else None
    panels = [('face', face), (title, pictures.blend(face, maps[j]))]
    if mask is not None:
      panels.append(('true mask', pictures.heat(mask)))
    kind = ('real', 'fake')[int(row['label'] > 0)]
    header = (f'{kind} ({row["method"]}), fake probability {row["score"]:.4f}  |  {what}')
    name = f'{prefix}_{"correct" if j < len(correct) else "wrong"}_{j}.png'
    outputs.write_picture(os.path.join(output, name), pictures.compose(panels, header, scale))
    out['correct' if j < len(correct) else 'wrong'].append(
        {'png': name, 'row': row, 'figures': face_figures(maps[j], mask, row['label'])})
  return out
