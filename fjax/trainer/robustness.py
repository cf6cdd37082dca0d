"""--mode=robustness: a checkpoint's AUC under the seven DeeperForensics-1.0 perturbations
(colour saturation, colour contrast, block-wise occlusion, white Gaussian noise, Gaussian
blur, pixelation (DF-1.0's "JPEG"), video compression) at their five released levels
(FoCus table IV), done as `fjax/data/corruptions.py` says. Writes metrics.jsonl rows
(split `<split>/<kind>/<level>`), DIR/robustness.json (AUC per level and the mean per kind)
and DIR/robustness.png (AUC vs level, one line per perturbation). Video compression runs
the ffmpeg binary of imageio-ffmpeg; without one the mode stops with one line before
evaluating anything.

Where the perturbation acts (`evaluation.robustness`): 'frame' evaluates each level on the
data set built with every whole frame perturbed before face cropping
(`<data set>_<kind>_<level>`, e.g. faceforensics/c23_gaussian_blur_3: DF-1.0's order and
sizes; every level must be built, checked before anything is evaluated); 'crop' (the
cheap option) perturbs the stored face crops at evaluation, so sizes act at crop scale
(block occlusion covers ~5 % of a 320 px crop at level 5 against ~1 % of a 1080p frame)."""
from __future__ import annotations

import json
import os

import cv2
import numpy as np

from fjax.util import files
from fjax.util.errors import UserError
from fjax.data import corruptions, sources

MODES = ('crop', 'frame')

COLOURS = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230))


def run(config, evaluate_split, split: str, workdir: str, writer, step: int) -> dict:
  """`evaluate_split(config, split) -> metrics` is called once per perturbation level."""
  if 'video_compression' in corruptions.LEVELS:
    corruptions.ffmpeg_exe()  # a UserError now rather than in a data worker later
  base = config.dataset.name
  levels = [(kind, level) for kind in corruptions.LEVELS for level in range(1, 6)]
  if config.evaluation.robustness == 'frame':
    missing = [c.dataset.name for c in (at_level(config, k, v, base) for k, v in levels)
               if not sources.is_built(c)]
    if missing:
      raise UserError(f'evaluation.robustness=frame needs the frame-perturbed builds of '
                      f'{base}: {len(missing)} not built, e.g. {missing[0]} (python -m '
                      f'data_builders.build {missing[0].replace("/", " --config=")} ...); '
                      'or evaluation.robustness=crop')
  table = {}
  for kind in corruptions.LEVELS:
    aucs = []
    for level in range(1, 6):
      result = evaluate_split(at_level(config, kind, level, base), split)
      writer.write(step, f'{split}/{kind}/{level}', result)
      aucs.append(result['auc'])
    table[kind] = {'auc_per_level': aucs, 'mean_auc': float(np.mean(aucs))}
  files.write_text(os.path.join(workdir, 'robustness.json'), json.dumps(table, indent=2))
  files.write_bytes(os.path.join(workdir, 'robustness.png'),
                    cv2.imencode('.png', plot(table))[1].tobytes())
  return table


def at_level(config, kind: str, level: int, base: str):
  """A copy of `config` evaluating `kind` at `level`: the frame-perturbed build of the data
  set `base` ('frame'), or the clean build with its crops perturbed ('crop')."""
  mode = config.evaluation.robustness
  if mode not in MODES:
    raise UserError(f'evaluation.robustness={mode!r}: use {" | ".join(MODES)}')
  config = config.copy_and_resolve_references()
  if mode == 'frame':
    root, _, name = base.partition('/')
    if not name:
      raise UserError(f'evaluation.robustness=frame needs a builder config in dataset.name '
                      f'({base!r}, e.g. faceforensics/c23)')
    config.dataset.name = f'{root}/{corruptions.perturbed_name(name, kind, level)}'
    config.input.corruption = ''
  else:
    config.dataset.name, config.input.corruption = base, f'{kind}:{level}'
  return config


def plot(table: dict, size: int = 480) -> np.ndarray:
  """AUC (0.4 .. 1.0) against level 1..5, a line and a legend entry per perturbation."""
  img = np.full((size, size + 220, 3), 255, np.uint8)
  x = lambda level: int(60 + (level - 1) * (size - 100) / 4)
  y = lambda auc: int(size - 40 - (np.clip(auc, 0.4, 1.0) - 0.4) / 0.6 * (size - 80))
  cv2.line(img, (60, y(0.4)), (x(5), y(0.4)), (0, 0, 0), 1)
  cv2.line(img, (60, y(0.4)), (60, y(1.0)), (0, 0, 0), 1)
  for t in (0.4, 0.6, 0.8, 1.0):
    cv2.putText(img, f'{t:.1f}', (15, y(t) + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
  for level in range(1, 6):
    cv2.putText(img, str(level), (x(level) - 5, size - 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (0, 0, 0), 1)
  for k, (kind, row) in enumerate(table.items()):
    colour = COLOURS[k % len(COLOURS)][::-1]  # BGR for OpenCV
    pts = np.array([(x(i + 1), y(a if np.isfinite(a) else 0.4))
                    for i, a in enumerate(row['auc_per_level'])], np.int32)
    cv2.polylines(img, [pts], False, colour, 2)
    cv2.putText(img, f'{kind} {row["mean_auc"]:.3f}', (size + 10, 40 + 25 * k),
                cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1)
  cv2.putText(img, 'AUC vs perturbation level', (60, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
              (0, 0, 0), 1)
  return img
