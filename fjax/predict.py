"""Runs a trained model of any kind on images and videos.

  python -m fjax.predict --workdir=DIR --input face.jpg clip.mp4 --output OUT [--frames 8]
  python -m fjax.predict --workdir=DIR --split test --output OUT [--limit 16]
  ... [--cam gradcam|scorecam]   (a CAM of the fake logit instead of the model's map)

Installed (`pip install -e .`), `fjax-predict ...` is the same command. --input takes
several paths after one flag, up to the next flag (or repeated: --input=a --input=b).

Faces are detected and cropped as the data builders crop them (dlib, square box x1.3).
Writes OUT/predictions.jsonl, one row per face (path, frame, face index: 0 = the largest
box, as the data sets number faces; box, fake probability, overlay file) or per frame
without a face (status "no face"), OUT/inputs.jsonl, one row per input (its fake
probability: a video's video-level score; status "ok" or "no face"), and for every face a
PNG: the face crop beside its localisation map overlaid as a heat map.

Pictures: a header line with the face's fake probability and what the map is, a title over
each panel, and a colour bar on the right whose label says the scale. The model's own map is
a fake probability per pixel and is drawn absolute (0 blue, 1 red: a map of 0.14 and one of
0.70 differ in colour); a CAM (--cam, fjax.cam) is normalised per face (1 = that face's
peak), its bar labelled so, and its rows carry "map": "gradcam" or "scorecam".

An input's score follows the run's evaluation rule (config.json `evaluation`, defaults
filled in for older workdirs), named in its row ("rule", "faceless"), so that a photo or a
video is scored as the test sets are. video_score 'mean_frame_max' (SBI's rule): a frame's
score is its highest face score, the input's the mean over its frames; a false detection
beside a real face (the mission patch on skimage's astronaut) cannot pull the frame's score
below that of its true face, and one fake face makes the frame fake. 'mean_faces': the mean
over every face. Frames without a face: faceless 'skip' leaves them out, and an input in
which no face was found at all gets status "no face" and fake probability null (evaluation
scores such a video 0.5); 'half' counts each as a frame (with 'mean_faces': a row) scored
0.5, so an input without any face scores 0.5.

Overlay names: <stem>-<tag>_f<frame>_face<k>.png, where <tag> is the first 8 hex digits of
the SHA-1 of the input's absolute path (all 40 where two inputs of one call share the
first 8) and <stem> its file name without extension (cut to 80 characters). Names are thus
unique within a call (real/0001.png and fake/0001.png keep apart) and the same from call
to call. An input named twice (same absolute path) is predicted once.

Inputs are streamed: read one at a time, their faces queued into forward passes of exactly
--batch_size faces (the last one padded: one compiled shape; a batch may hold faces of
consecutive inputs), rows written as soon as their scores are known, in input order. At
most one input's frames and one batch of face crops are held at once.

A bad input (missing, empty, an unreadable image, an undecodable video) gets one row in each
file with status "skipped: <why>", and the other inputs go on. The exit status is 0 when
at least one input could be read (with or without faces); when none could, one error line,
exit status 1 and no result files are left behind.

Predictions of two calls are never mixed: predict refuses an OUT that already holds
predictions.jsonl, inputs.jsonl or overlay PNGs unless --overwrite is given, which first
deletes exactly those two files and the PNGs that OUT/predictions.jsonl lists, nothing
else (it refuses if overlay-named PNGs that no listing names remain).
"""
from __future__ import annotations

import collections
import hashlib
import json
import os
import re

import cv2
import numpy as np
from absl import flags, logging

from fjax.trainer import metrics
from fjax.util import cli
from fjax.util.errors import UserError, fail
from fjax.util.paths import check_dir_path

OVERLAY_SIZE = 256
RESULT_FILES = ('predictions.jsonl', 'inputs.jsonl')
OVERLAY_NAME = re.compile(r'_f\d{5}_face\d+\.png$')  # overlays of --input, every version
PENDING_ROWS = 1024  # rows waiting behind a partial batch before it runs anyway


def load_run(workdir: str, step: int | None = None, cam: str | None = None,
             cam_batch: int = 64):
  """(config, predict function) of the given checkpoint, else the one the run's
  `test_checkpoint` names (the newest, or the best-validation one). The function maps
  images to (fake probability, map): the model's localisation map, or with `cam`
  ('gradcam' or 'scorecam', fjax.cam) that CAM at the input size, normalised per face
  (`cam_batch`: images per Score-CAM forward). Its `map_kind` names the map ('model' or
  the CAM), `panels` gives the model's extra maps, `model`, `model_lib` and
  `variables` what it runs."""
  import jax  # pylint: disable=g-import-not-at-top
  from fjax import registry, run as run_lib  # pylint: disable=g-import-not-at-top
  from fjax.trainer import evaluate, sharding  # pylint: disable=g-import-not-at-top
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
    from fjax import cam as cam_lib  # pylint: disable=g-import-not-at-top
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


def input_score(frames, scores, faceless_frames: int, video_score: str,
                faceless: str) -> float | None:
  """An input's fake probability from its faces' (frame index, score) and its number of
  frames without a face, by the evaluation rule (`fjax.trainer.metrics.detection_metrics` on one
  video): None when it has no face and faceless frames are skipped."""
  if video_score not in metrics.VIDEO_SCORES or faceless not in metrics.FACELESS:
    raise UserError(f'evaluation.video_score {video_score!r} / evaluation.faceless '
                    f'{faceless!r}: use one of {metrics.VIDEO_SCORES} / {metrics.FACELESS}')
  scores = np.asarray(scores, np.float64)
  if video_score == 'mean_frame_max' and len(scores):  # one row per frame: its best face
    one = np.zeros(len(scores), np.int64)
    scores = metrics.frame_level(one, frames, one, scores)[3]
  if faceless == 'half':
    scores = np.r_[scores, np.full(faceless_frames, 0.5)]
  return float(scores.mean()) if len(scores) else None


class BadInput(Exception):
  """An input that cannot be used; the message says why (without the path)."""


def frames_of(path: str, num_frames: int):
  """[(frame index, RGB frame)] of an image or evenly spaced frames of a video; BadInput."""
  from fjax.data import faces  # pylint: disable=g-import-not-at-top
  if not os.path.exists(path):
    raise BadInput('no such file')
  if not os.path.isfile(path):
    raise BadInput('not a file')
  try:
    if os.path.getsize(path) == 0:
      raise BadInput('file is empty')
    if path.lower().endswith(faces.VIDEO_EXTENSIONS):
      try:
        frames = list(faces.read_video_frames(path, num_frames))
      except (ValueError, cv2.error) as e:
        raise BadInput('cannot decode the video') from e
      if not frames:
        raise BadInput('no frame could be decoded')
      return frames
    try:
      return [(0, faces.read_image(path))]
    except (ValueError, cv2.error) as e:
      raise BadInput('not a readable image') from e
  except OSError as e:
    raise BadInput(f'cannot read it: {e.strerror or e}') from e


def read_inputs(paths, num_frames: int):
  """Yields (path, frames, None) or (path, None, why) for one input at a time."""
  for path in paths:
    try:
      yield path, frames_of(path, num_frames), None
    except BadInput as e:
      yield path, None, str(e)


def find_faces(frames) -> list[tuple[int, np.ndarray, list[np.ndarray]]]:
  """[(frame index, frame, square face boxes)] of one input's frames; BadInput."""
  from fjax.data import faces  # pylint: disable=g-import-not-at-top
  try:
    return [(i, frame, [faces.square_box(f.box) for f in faces.detect_faces(frame)])
            for i, frame in frames]
  except (RuntimeError, ValueError, cv2.error) as e:
    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    raise BadInput(f'face detection failed: {first}') from e


def input_tags(abs_paths) -> dict[str, str]:
  """Absolute path -> the tag in its overlay names: 8 hex digits of the path's SHA-1, or
  all 40 for paths whose first 8 collide within this call."""
  digests = {p: hashlib.sha1(os.fsencode(p)).hexdigest() for p in abs_paths}
  counts = collections.Counter(d[:8] for d in digests.values())
  return {p: d[:8] if counts[d[:8]] == 1 else d for p, d in digests.items()}


def overlay_prefix(path: str, tag: str) -> str:
  return f'{os.path.splitext(os.path.basename(path))[0][:80]}-{tag}'


def _listed_pictures(output: str) -> set[str]:
  """PNG names (no folders) that OUT/predictions.jsonl lists ('overlay' or 'png')."""
  names = set()
  path = os.path.join(output, 'predictions.jsonl')
  if not os.path.isfile(path):
    return names
  with open(path, errors='replace') as f:
    for line in f:
      try:
        row = json.loads(line)
      except ValueError:
        continue
      for key in ('overlay', 'png'):
        name = row.get(key) if isinstance(row, dict) else None
        if (isinstance(name, str) and name.endswith('.png')
            and name == os.path.basename(name) and name not in ('.', '..')):
          names.add(name)
  return names


def earlier_results(output: str, overwrite: bool) -> list[str]:
  """The files of an earlier predict in `output` that --overwrite deletes: the jsonl
  files and the PNGs its predictions.jsonl lists. UserError when there are any and not
  `overwrite`, or when PNGs named like overlays are there that no listing names."""
  check_dir_path(output, '--output')
  if not os.path.isdir(output):
    return []
  names = {n for n in os.listdir(output) if os.path.isfile(os.path.join(output, n))}
  listed = _listed_pictures(output) & names
  strays = sorted(n for n in names - listed if OVERLAY_NAME.search(n))
  files = [n for n in RESULT_FILES if n in names] + sorted(listed)
  if not files and not strays:
    return []
  if not overwrite:
    held = [n for n in RESULT_FILES if n in names]
    if listed or strays:
      held.append(f'{len(listed) + len(strays)} overlay PNGs')
    raise UserError(f'--output {output} already holds an earlier prediction '
                    f'({", ".join(held)}); pass --overwrite to replace it or choose '
                    'another --output')
  if strays:
    raise UserError(f'--output {output} holds {len(strays)} overlay PNGs that no '
                    f'predictions.jsonl lists (e.g. {strays[0]}); --overwrite deletes only '
                    'what predict listed: remove them or choose another --output')
  return [os.path.join(output, n) for n in files]


def clear(files: list[str]):
  for path in files:
    try:
      os.remove(path)
    except FileNotFoundError:
      pass


def jet(values: np.ndarray) -> np.ndarray:
  """Map values in [0, 1] (clipped, never rescaled) -> RGB uint8 of the JET colour map."""
  levels = np.uint8(np.round(np.clip(values, 0, 1) * 255))
  return cv2.cvtColor(cv2.applyColorMap(levels, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def blend(face_rgb: np.ndarray, heat_map: np.ndarray) -> np.ndarray:
  """The face with a [0, 1] map on top as a JET heat map, drawn absolute: a map of 0.14
  is blue, one of 0.70 orange, whatever the face's other values."""
  heat_map = cv2.resize(heat_map.astype(np.float32), face_rgb.shape[1::-1],
                        interpolation=cv2.INTER_LINEAR)
  return cv2.addWeighted(face_rgb, 0.55, jet(heat_map), 0.45, 0)


# Picture layout: a header line (the face's score and what the map is), a line of panel
# titles, the panels (OVERLAY_SIZE high), and on the right a colour bar with its scale.
HEADER_H, TITLE_H = 24, 20
TOP = HEADER_H + TITLE_H           # first row of the panels
BAR_W, BAR_X, BAR_STRIPE, BAR_PAD = 84, 8, 14, 10
SCALES = {  # map kind -> (tick labels top, middle, bottom; the label along the bar)
    'probability': (('1', '0.5', '0'), 'probability'),
    'per_face': (('max', '', '0'), 'norm. per face'),
}
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BACKGROUND = (32, 32, 32)


def _strip(height: int, width: int) -> np.ndarray:
  return np.full((height, width, 3), _BACKGROUND, np.uint8)


def _write(img: np.ndarray, text: str, x: int, baseline: int, size: float = 0.45):
  cv2.putText(img, text, (x, baseline), _FONT, size, (255, 255, 255), 1, cv2.LINE_AA)


def colour_bar(height: int, scale: str) -> np.ndarray:
  """[height, BAR_W] RGB: the JET bar from 1 (top) to 0 (bottom), its tick labels and,
  along it, what the values are ('probability' or 'norm. per face')."""
  ticks, label = SCALES[scale]
  panel = _strip(height, BAR_W)
  n = height - 2 * BAR_PAD
  panel[BAR_PAD:BAR_PAD + n, BAR_X:BAR_X + BAR_STRIPE] = jet(
      np.linspace(1, 0, n, dtype=np.float32)[:, None].repeat(BAR_STRIPE, 1))
  for text, y in zip(ticks, (BAR_PAD + 8, BAR_PAD + n // 2 + 4, BAR_PAD + n - 1)):
    _write(panel, text, BAR_X + BAR_STRIPE + 4, y, 0.4)
  along = _strip(16, n)  # written horizontally, turned to read bottom-up
  _write(along, label, 4, 12, 0.42)
  panel[BAR_PAD:BAR_PAD + n, BAR_W - 18:BAR_W - 2] = np.rot90(along)
  return panel


def bar_position(shape) -> tuple[int, int, int]:
  """(column, top row, bottom row) of the colour bar's centre line in a picture of
  `shape`: the top row is the colour of 1, the bottom one that of 0."""
  x = shape[1] - BAR_W + BAR_X + BAR_STRIPE // 2
  return x, TOP + BAR_PAD, shape[0] - BAR_PAD - 1


def compose(panels, header: str, scale: str = 'probability') -> np.ndarray:
  """[(title, RGB panel)] side by side under their titles, a header line above, and the
  colour bar of `scale` on the right."""
  row = np.concatenate([p for _, p in panels], axis=1)
  titles = _strip(TITLE_H, row.shape[1] + BAR_W)
  x = 0
  for title, p in panels:
    _write(titles, title, x + 6, TITLE_H - 6)
    x += p.shape[1]
  head = _strip(HEADER_H, titles.shape[1])
  _write(head, header, 6, HEADER_H - 7, 0.5)
  body = np.concatenate([row, colour_bar(row.shape[0], scale)], axis=1)
  return np.concatenate([head, titles, body], axis=0)


def map_title(kind: str) -> tuple[str, str, str]:
  """(panel title, header text, scale) of a map kind: 'model' (the model's own map, a
  probability per pixel) or a CAM method (normalised per face)."""
  from fjax import cam  # pylint: disable=g-import-not-at-top
  if kind in cam.TITLES:
    return cam.TITLES[kind], f'{cam.TITLES[kind]} of the fake logit', 'per_face'
  return 'map', 'map: fake probability per pixel', 'probability'


def overlay(face_rgb: np.ndarray, heat_map: np.ndarray, score: float | None = None,
            kind: str = 'model') -> np.ndarray:
  """Face crop | face with the map as a JET heat map on top, titled, under a header with
  the face's fake probability, and the map's colour bar (RGB uint8)."""
  title, what, scale = map_title(kind)
  head = (f'fake probability {score:.3f}  |  ' if score is not None else '') + what
  return compose([('face', face_rgb), (title, blend(face_rgb, heat_map))], head, scale)


def batched(fn, x: np.ndarray, size: int):
  """fn over x in chunks of exactly `size` rows (the last padded with copies of the first
  row), concatenated and cut back to len(x): one compiled shape for any number of faces."""
  outs = []
  for start in range(0, len(x), size):
    chunk = x[start:start + size]
    pad = np.repeat(chunk[:1], size - len(chunk), axis=0)
    outs.append([np.asarray(o)[:len(chunk)] for o in fn(np.concatenate([chunk, pad]))])
  return [np.concatenate(parts) for parts in zip(*outs)]


class _Stream:
  """Rows written in input order as soon as they are complete, and the faces waiting for
  a forward pass: at most `size` crops (model input + overlay picture) at a time."""

  def __init__(self, forward, size: int, output: str, on_input=None,
               rule=('mean_faces', 'skip')):
    self.forward, self.size, self.output, self.on_input = forward, size, output, on_input
    self.rule = rule  # (evaluation.video_score, evaluation.faceless)
    self.files = {name: open(os.path.join(output, name), 'w') for name in RESULT_FILES}
    self.crops, self.faces = [], []  # model inputs; (row, overlay crop, input entry)
    self.pending = []  # (file name, row or input entry) waiting behind self.crops
    self.counts = collections.Counter()

  def face(self, crop: np.ndarray, picture: np.ndarray, row: dict, entry: dict):
    self.crops.append(crop)
    self.faces.append((row, picture, entry))
    self.row('predictions.jsonl', row)
    if len(self.crops) == self.size:
      self.run()

  def row(self, name: str, row: dict):
    """Queues a row (or an input entry, written as its inputs.jsonl row) in order."""
    self.pending.append((name, row))
    if not self.crops:
      self._write()
    elif len(self.pending) >= PENDING_ROWS:
      self.run()

  def run(self):
    """One padded forward pass over the queued faces, then their rows, then their PNGs
    (so that every PNG on disk is listed: --overwrite deletes by the listing)."""
    maps = []
    if self.crops:
      scores, maps = batched(self.forward, np.stack(self.crops), self.size)
      for (row, _, entry), prob in zip(self.faces, scores):
        row['fake_probability'] = float(prob)
        entry['scores'].append((row['frame'], prob))
    self._write()
    kind = getattr(self.forward, 'map_kind', 'model')
    for (row, picture, _), heat_map in zip(self.faces, maps):
      path = os.path.join(self.output, row['overlay'])
      drawn = overlay(picture, heat_map, row['fake_probability'], kind)
      if not cv2.imwrite(path, cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR)):
        raise UserError(f'cannot write {path}')
    self.crops, self.faces = [], []

  def _write(self):
    done = []
    for name, row in self.pending:
      if name == 'inputs.jsonl':  # the input's score by the run's evaluation rule
        frames = [f for f, _ in row['scores']]
        score = input_score(frames, [p for _, p in row['scores']], row['faceless'],
                            *self.rule)
        row = {'path': row['path'], 'frames': row['frames'], 'faces': row['faces'],
               'faceless_frames': row['faceless'], 'fake_probability': score,
               'status': row['status'], 'rule': self.rule[0], 'faceless': self.rule[1]}
        self.counts['skipped' if row['status'].startswith('skipped') else 'read'] += 1
        done.append(row)
      else:
        self.counts['rows'] += 1
        self.counts['faces'] += row['status'] == 'ok'
      self.files[name].write(json.dumps(row) + '\n')
    for f in self.files.values():
      f.flush()
    self.pending = []
    for row in done if self.on_input is not None else ():
      self.on_input(row)

  def close(self):
    self.run()
    for f in self.files.values():
      f.close()


def _predict_input(stream: _Stream, config, path: str, frames, why: str | None,
                   prefix: str) -> str | None:
  """Queues one input's faces and rows on `stream`; returns why it was skipped, or None."""
  from fjax.data import examples  # pylint: disable=g-import-not-at-top
  from fjax.data import faces  # pylint: disable=g-import-not-at-top
  entry = {'path': path, 'frames': len(frames or ()), 'faces': 0, 'faceless': 0,
           'scores': []}
  try:
    found = find_faces(frames) if why is None else []
  except BadInput as e:
    why = str(e)
  if why is not None:
    entry['status'] = f'skipped: {why}'
    stream.row('predictions.jsonl', {'path': path, 'frame': None, 'face': None, 'box': None,
                                     'fake_probability': None, 'status': entry['status']})
    stream.row('inputs.jsonl', entry)
    return why
  size = config.input.image_size
  for frame_index, frame, boxes in found:
    if not boxes:
      entry['faceless'] += 1
      stream.row('predictions.jsonl', {'path': path, 'frame': frame_index, 'face': None,
                                       'box': None, 'fake_probability': None,
                                       'status': 'no face'})
    for k, box in enumerate(boxes):
      row = {'path': path, 'frame': frame_index, 'face': k,
             'box': [round(float(v), 1) for v in box],
             'overlay': f'{prefix}_f{frame_index:05d}_face{k}.png', 'status': 'ok'}
      if stream.forward.map_kind != 'model':
        row['map'] = stream.forward.map_kind
      entry['faces'] += 1
      stream.face(examples.normalize(faces.crop(frame, box, size), config.input.mean,
                                     config.input.std),
                  faces.crop(frame, box, OVERLAY_SIZE), row, entry)
  entry['status'] = 'ok' if entry['faces'] else 'no face'
  stream.row('inputs.jsonl', entry)
  return None


def predict(workdir: str, inputs: list[str], output: str, num_frames: int = 8,
            batch_size: int = 16, overwrite: bool = False, on_input=None,
            cam: str | None = None, cam_batch: int = 64) -> dict:
  """Streams `inputs` through the model: per-face rows -> predictions.jsonl, per-input
  rows -> inputs.jsonl (the input's score by the run's `evaluation` rule, the video-level
  score for a video; see the module doc), each written as soon as it is complete;
  `on_input(row)` is called with every inputs.jsonl row once written; `cam` draws that
  CAM (fjax.cam) instead of the model's map. Returns counts (read, skipped, faces, rows);
  UserError when no input could be read."""
  earlier = earlier_results(output, overwrite)
  config, forward = load_run(workdir, cam=cam, cam_batch=cam_batch)
  rule = (config.evaluation.video_score, config.evaluation.faceless)
  input_score([], [], 0, *rule)  # an unknown rule: one error line before any output
  unique = {}
  for path in inputs:
    unique.setdefault(os.path.abspath(path), path)
  tags = input_tags(unique)
  created = not os.path.isdir(output)
  try:
    os.makedirs(output, exist_ok=True)
    clear(earlier)
    stream = _Stream(forward, batch_size, output, on_input, rule)
  except OSError as e:
    raise UserError(f'cannot write in --output {output}: {e.strerror or e}') from e
  first_bad = None
  for path, frames, why in read_inputs(unique.values(), num_frames):
    why = _predict_input(stream, config, path, frames, why,
                         overlay_prefix(path, tags[os.path.abspath(path)]))
    frames = None  # the next input is read without this one's frames
    if why is not None and first_bad is None:
      first_bad = f'{path}: {why}'
  stream.close()
  counts = dict(stream.counts)
  if not counts.get('read'):
    clear([os.path.join(output, n) for n in RESULT_FILES])
    if created and not os.listdir(output):
      os.rmdir(output)
    raise UserError(first_bad if len(unique) == 1 else
                    f'none of the {len(unique)} inputs could be read (first: {first_bad})')
  return counts


def heat(m: np.ndarray, size: int = OVERLAY_SIZE) -> np.ndarray:
  """A [0, 1] map as a size x size RGB heat map, absolute (nearest: pair maps keep their
  cells)."""
  return jet(cv2.resize(np.clip(m, 0, 1).astype(np.float32), (size, size),
                        interpolation=cv2.INTER_NEAREST))


def predict_split(workdir: str, split: str, output: str, limit: int = 16,
                  overwrite: bool = False, cam: str | None = None,
                  cam_batch: int = 64) -> list[dict]:
  """The first `limit` faces of a split of the run's data set, each as one PNG row of
  titled panels: face | predicted map (or `cam`) | ground-truth mask | the model's own
  panels (predicted and ground-truth pairs, e.g. the local-similarity maps of fig. 5),
  under the face's label and fake probability, with the colour bar on the right."""
  from fjax.data import examples, sources  # pylint: disable=g-import-not-at-top
  earlier = earlier_results(output, overwrite)
  config, forward = load_run(workdir, cam=cam, cam_batch=cam_batch)
  source = sources.data_source(config, split)
  try:
    os.makedirs(output, exist_ok=True)
    clear(earlier)
    listing = open(os.path.join(output, 'predictions.jsonl'), 'w')
  except OSError as e:
    raise UserError(f'cannot write in --output {output}: {e.strerror or e}') from e
  title, what, scale = map_title(forward.map_kind)
  rows, recipe = [], examples.Recipe.of(config)
  for i in range(min(limit, len(source))):
    ex = examples.prepare(source[i], recipe, None)
    images, masks = ex['image'][None], ex['mask'][None]
    scores, maps = map(np.asarray, forward(images))
    extra = {k: np.asarray(v)[0] for k, v in forward.panels(images, masks).items()}
    face = cv2.resize(source[i]['image'], (OVERLAY_SIZE,) * 2)
    label = int(ex['label'])
    picture = compose(
        [('face', face), (title, blend(face, maps[0])), ('mask', heat(ex['mask']))] +
        [(k, heat(v)) for k, v in extra.items()],
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
    cv2.imwrite(os.path.join(output, name), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
  listing.close()
  return rows


def _define_flags():
  flags.DEFINE_string('workdir', None, 'A trained run (its config.json and checkpoints).',
                      required=True)
  flags.DEFINE_multi_string('input', [], 'Images and/or videos: --input a.jpg b.mp4 ... '
                            '(or --input=a.jpg --input=b.mp4).')
  flags.DEFINE_string('split', None, "Instead of --input: faces of this split of the run's "
                      'data set, with their ground truth beside the predictions.')
  flags.DEFINE_integer('limit', 16, 'Faces of --split to draw.')
  flags.DEFINE_string('output', None, 'Where the results go.', required=True)
  flags.DEFINE_integer('frames', 8, 'Frames sampled per video.')
  flags.DEFINE_integer('batch_size', 16, 'Faces per forward pass.')
  flags.DEFINE_bool('overwrite', False, 'Replace the results of an earlier predict in '
                    '--output (only the files it listed).')
  flags.DEFINE_enum('cam', None, ['gradcam', 'scorecam'], 'Draw this class activation map '
                    "of the fake logit (fjax.cam; normalised per face) instead of the model's "
                    'own map.')
  flags.DEFINE_integer('cam_batch', 64, 'Images per Score-CAM forward pass (channels x '
                       'faces).')


def gather_inputs(argv: list[str]) -> list[str]:
  """`--input a b c` (several paths after one flag, as users and the docs write it) ->
  `--input=a --input=b --input=c`: absl reads one value per flag. The paths run up to the
  next argument that starts with '-'."""
  out, i = [argv[0]], 1
  while i < len(argv):
    arg = argv[i]
    i += 1
    if arg == '--':
      out += argv[i - 1:]
      break
    if arg not in ('--input', '-input') and not arg.startswith(('--input=', '-input=')):
      out.append(arg)
      continue
    values = [arg.split('=', 1)[1]] if '=' in arg else []
    while i < len(argv) and not argv[i].startswith('-'):
      values.append(argv[i])
      i += 1
    out += [f'--input={v}' for v in values] if values else [arg]
  return out


def main(argv):
  cli.reject_arguments(argv, 'python -m fjax.predict --workdir=DIR --input PATH... '
                       '--output=OUT')
  args = flags.FLAGS
  logging.set_verbosity(logging.ERROR)
  if bool(args.input) == bool(args.split):
    fail('give either --input PATH... or --split NAME')
  for name in ('frames', 'batch_size', 'limit', 'cam_batch'):
    if getattr(args, name) < 1:
      fail(f'--{name} must be at least 1, not {getattr(args, name)}')
  try:
    if args.split:
      rows = predict_split(args.workdir, args.split, args.output, args.limit,
                           args.overwrite, args.cam, args.cam_batch)
      print(f'{len(rows)} faces of split {args.split} -> {args.output}')
      return
    counts = predict(args.workdir, args.input, args.output, args.frames, args.batch_size,
                     args.overwrite, on_input=print_input, cam=args.cam,
                     cam_batch=args.cam_batch)
  except UserError as e:
    fail(str(e))
  if counts.get('skipped'):
    print(f'{counts["skipped"]} of {counts["skipped"] + counts["read"]} inputs skipped '
          f'(status in {args.output}/inputs.jsonl)')
  print(f'{counts.get("faces", 0)} faces in {counts.get("rows", 0)} rows -> '
        f'{args.output}/predictions.jsonl')


def print_input(row: dict):
  if row['fake_probability'] is None:
    print(f'{row["path"]}: {row["status"]}', flush=True)
  else:
    with_face = row['frames'] - row['faceless_frames']
    how = [] if not row['faces'] else [
        f'mean over {with_face} frames of their highest face score'
        if row['rule'] == 'mean_frame_max' else f'mean of {row["faces"]} faces']
    if row['faceless'] == 'half' and row['faceless_frames']:
      how.append(f'{row["faceless_frames"]} frames without a face at 0.5')
    how = ', '.join(how)
    print(f'{row["path"]}: fake probability {row["fake_probability"]:.4f} ({how})',
          flush=True)


def entry():
  """`python -m fjax.predict` and the `fjax-predict` console script (fjax.util.cli)."""
  _define_flags()
  cli.run(main, __doc__, __name__, rewrite=gather_inputs)


if __name__ == '__main__':
  entry()
