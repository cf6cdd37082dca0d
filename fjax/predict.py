"""Runs a trained model of any kind on images and videos.

  python -m fjax.predict --workdir=DIR --input face.jpg clip.mp4 --output OUT [--frames 8]
  python -m fjax.predict --workdir=DIR --split test --output OUT [--limit 16]

Faces are detected and cropped as the data builders crop them (dlib, square box x1.3).
Writes OUT/predictions.jsonl, one row per face (path, frame, face index, box, fake
probability, overlay file) or per frame without a face (status "no face"), OUT/inputs.jsonl,
one row per input (the mean fake probability of its faces: a video's video-level score),
and for every face a PNG: the face crop beside its localisation map overlaid as a heat map.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import sys

import cv2
import numpy as np
from absl import logging

from fjax.errors import UserError, fail

OVERLAY_SIZE = 256


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
  """The defaults of the config file whose model is `model_name` (the base config's if
  none is): what a workdir written before a key existed gets for that key."""
  import configs  # pylint: disable=g-import-not-at-top
  from configs import common  # pylint: disable=g-import-not-at-top
  for info in pkgutil.iter_modules(configs.__path__):
    module = importlib.import_module(f'configs.{info.name}')
    if hasattr(module, 'get_config') and module.get_config().model.name == model_name:
      return module.get_config().to_dict()
  return common.get_base_config().to_dict()


def load_run(workdir: str, step: int | None = None):
  """(config, model module, predict function) of the newest (or given) checkpoint."""
  import jax  # pylint: disable=g-import-not-at-top
  import ml_collections  # pylint: disable=g-import-not-at-top
  from fjax import checkpoint, evaluate, registry, sharding, state  # pylint: disable=g-import-not-at-top
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    raise UserError(f'{workdir} is not an fjax workdir (no config.json)')
  with open(path) as f:
    saved = json.load(f)
  config = ml_collections.ConfigDict(with_defaults(
      saved, defaults_of(saved.get('model', {}).get('name', ''))))
  config.mesh.axes, config.mesh.shape, config.mesh.param_rules = ['data'], [-1], []
  model_lib = registry.model_module(config.model.name)
  model = model_lib.build(config)
  mesh = sharding.make_mesh(config)
  mgr = checkpoint.manager(workdir, read_only=True)
  if mgr.latest_step() is None:
    raise UserError(f'{workdir} holds no checkpoint')
  abstract, _ = state.abstract_state(config, model, mesh)
  st, _ = checkpoint.restore(mgr, abstract, step=step)
  variables = jax.device_put(evaluate.variables(st), sharding.replicated(mesh))

  @jax.jit
  def forward(images):
    out = model.apply(variables, images, train=False)
    return model_lib.score(out), model_lib.localization(out)

  @jax.jit
  def panels(images, masks):
    """Named [B, h, w] maps a model adds to the data-set rows (e.g. similarity maps)."""
    out = model.apply(variables, images, train=False)
    return model_lib.panels(out, masks) if hasattr(model_lib, 'panels') else {}
  forward.panels = panels
  return config, forward


def frames_of(path: str, num_frames: int):
  """[(frame index, RGB frame)] of an image or evenly spaced frames of a video."""
  from fjax.preprocess import faces  # pylint: disable=g-import-not-at-top
  if not os.path.isfile(path):
    raise UserError(f'{path}: no such file')
  if os.path.getsize(path) == 0:
    raise UserError(f'{path} is empty')
  if path.lower().endswith(faces.VIDEO_EXTENSIONS):
    try:
      frames = list(faces.read_video_frames(path, num_frames))
    except ValueError as e:
      raise UserError(str(e)) from e
    if not frames:
      raise UserError(f'{path}: no frame could be decoded')
    return frames
  try:
    return [(0, faces.read_image(path))]
  except ValueError as e:
    raise UserError(str(e)) from e


def overlay(face_rgb: np.ndarray, heat: np.ndarray) -> np.ndarray:
  """Face crop | face with the [0, 1] map as a JET heat map on top (RGB uint8)."""
  heat = cv2.resize(heat.astype(np.float32), face_rgb.shape[1::-1],
                    interpolation=cv2.INTER_LINEAR)
  colour = cv2.applyColorMap(np.uint8(np.clip(heat, 0, 1) * 255), cv2.COLORMAP_JET)
  blend = cv2.addWeighted(face_rgb, 0.55, cv2.cvtColor(colour, cv2.COLOR_BGR2RGB), 0.45, 0)
  return np.concatenate([face_rgb, blend], axis=1)


def batched(fn, x: np.ndarray, size: int):
  """fn over x in chunks of exactly `size` rows (the last padded with copies of the first
  row), concatenated and cut back to len(x): one compiled shape for any number of faces."""
  outs = []
  for start in range(0, len(x), size):
    chunk = x[start:start + size]
    pad = np.repeat(chunk[:1], size - len(chunk), axis=0)
    outs.append([np.asarray(o)[:len(chunk)] for o in fn(np.concatenate([chunk, pad]))])
  return [np.concatenate(parts) for parts in zip(*outs)]


def predict(workdir: str, inputs: list[str], output: str, num_frames: int = 8,
            batch_size: int = 16) -> tuple[list[dict], list[dict]]:
  """Per-face rows (predictions.jsonl) and per-input rows (inputs.jsonl: the mean fake
  probability over every face found, the video-level score for a video)."""
  from fjax import input_pipeline  # pylint: disable=g-import-not-at-top
  from fjax.preprocess import faces  # pylint: disable=g-import-not-at-top
  all_frames = [(path, frames_of(path, num_frames)) for path in inputs]  # validate first
  config, forward = load_run(workdir)
  size = config.input.image_size
  os.makedirs(output, exist_ok=True)
  rows, per_input = [], []
  for path, frames in all_frames:
    stem = os.path.splitext(os.path.basename(path))[0]
    found = []  # (row index, frame, box)
    for frame_index, frame in frames:
      boxes = [faces.square_box(f.box) for f in faces.detect_faces(frame)]
      if not boxes:
        rows.append({'path': path, 'frame': frame_index, 'face': None, 'box': None,
                     'fake_probability': None, 'status': 'no face'})
      for k, box in enumerate(boxes):
        rows.append({'path': path, 'frame': frame_index, 'face': k,
                     'box': [round(float(v), 1) for v in box],
                     'overlay': f'{stem}_f{frame_index:05d}_face{k}.png', 'status': 'ok'})
        found.append((len(rows) - 1, frame, box))
    scores = np.zeros(0)
    if found:
      crops = np.stack([input_pipeline.normalize(faces.crop(frame, box, size), config)
                        for _, frame, box in found])
      scores, maps = batched(forward, crops, batch_size)
      for (row, frame, box), prob, heat_map in zip(found, scores, maps):
        picture = overlay(faces.crop(frame, box, OVERLAY_SIZE), heat_map)
        cv2.imwrite(os.path.join(output, rows[row]['overlay']),
                    cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
        rows[row]['fake_probability'] = float(prob)
    per_input.append({'path': path, 'frames': len(frames), 'faces': len(found),
                      'fake_probability': float(np.mean(scores)) if found else None})
  for name, table in (('predictions.jsonl', rows), ('inputs.jsonl', per_input)):
    with open(os.path.join(output, name), 'w') as f:
      f.writelines(json.dumps(r) + '\n' for r in table)
  return rows, per_input


def heat(m: np.ndarray, size: int = OVERLAY_SIZE) -> np.ndarray:
  """A [0, 1] map as a size x size RGB heat map (nearest: pair maps keep their cells)."""
  m = cv2.resize(np.clip(m, 0, 1).astype(np.float32), (size, size),
                 interpolation=cv2.INTER_NEAREST)
  return cv2.cvtColor(cv2.applyColorMap(np.uint8(m * 255), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def predict_split(workdir: str, split: str, output: str, limit: int = 16) -> list[dict]:
  """The first `limit` faces of a split of the run's data set, each as one PNG row:
  face | predicted map | ground-truth mask | the model's own panels (predicted and
  ground-truth pairs, e.g. the local-similarity maps of fig. 5)."""
  from fjax import input_pipeline  # pylint: disable=g-import-not-at-top
  config, forward = load_run(workdir)
  source = input_pipeline.data_source(config, split)
  os.makedirs(output, exist_ok=True)
  rows = []
  for i in range(min(limit, len(source))):
    ex = input_pipeline.prepare(source[i], config, None)
    images, masks = ex['image'][None], ex['mask'][None]
    scores, maps = map(np.asarray, forward(images))
    extra = {k: np.asarray(v)[0] for k, v in forward.panels(images, masks).items()}
    face = cv2.resize(source[i]['image'], (OVERLAY_SIZE,) * 2)
    picture = np.concatenate([overlay(face, maps[0]), heat(ex['mask'])] +
                             [heat(v) for v in extra.values()], axis=1)
    name = f'{split}_{i:04d}.png'
    cv2.imwrite(os.path.join(output, name), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    rows.append({'split': split, 'index': i, 'label': int(ex['label']),
                 'fake_probability': float(scores[0]), 'panels': ['face', 'map', 'mask',
                                                                  *extra], 'png': name})
  with open(os.path.join(output, 'predictions.jsonl'), 'w') as f:
    f.writelines(json.dumps(r) + '\n' for r in rows)
  return rows


def main(argv=None):
  parser = argparse.ArgumentParser(prog='python -m fjax.predict', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--workdir', required=True)
  parser.add_argument('--input', nargs='+', help='images and/or videos')
  parser.add_argument('--split', help='instead of --input: faces of this split of the '
                      "run's data set, with their ground truth beside the predictions")
  parser.add_argument('--limit', type=int, default=16, help='faces of --split to draw')
  parser.add_argument('--output', required=True)
  parser.add_argument('--frames', type=int, default=8, help='frames sampled per video')
  parser.add_argument('--batch_size', type=int, default=16, help='faces per forward pass')
  args = parser.parse_args(argv)
  logging.set_verbosity(logging.ERROR)
  if bool(args.input) == bool(args.split):
    fail('give either --input PATH... or --split NAME')
  for name in ('frames', 'batch_size', 'limit'):
    if getattr(args, name) < 1:
      fail(f'--{name} must be at least 1, not {getattr(args, name)}')
  try:
    if args.split:
      rows = predict_split(args.workdir, args.split, args.output, args.limit)
      print(f'{len(rows)} faces of split {args.split} -> {args.output}')
      return
    rows, per_input = predict(args.workdir, args.input, args.output, args.frames,
                              args.batch_size)
  except UserError as e:
    fail(str(e))
  for r in per_input:
    score = 'no face' if r['fake_probability'] is None else (
        f'fake probability {r["fake_probability"]:.4f} (mean of {r["faces"]} faces)')
    print(f'{r["path"]}: {score}')
  faces_found = sum(r['status'] == 'ok' for r in rows)
  print(f'{faces_found} faces in {len(rows)} rows -> {args.output}/predictions.jsonl')


if __name__ == '__main__':
  main()
