"""predict on --input: faces found in each input's frames (fjax.data.faces), scored in
forward passes of exactly --batch_size faces, each input scored by the run's evaluation
rule (`fjax.trainer.metrics.video_scores`), rows and overlays written as scores arrive."""
from __future__ import annotations

import os

import cv2
import numpy as np

from fjax.predict import inputs, outputs, pictures
from fjax.trainer import metrics
from fjax.util.errors import UserError

PENDING_ROWS = 1024  # rows waiting behind a partial batch before it runs anyway


def find_faces(frames) -> list[tuple[int, np.ndarray, list[np.ndarray]]]:
  """[(frame index, frame, square face boxes)] of one input's frames; BadInput."""
  from fjax.data import faces  # pylint: disable=g-import-not-at-top
  try:
    return [(i, frame, [faces.square_box(f.box) for f in faces.detect_faces(frame)])
            for i, frame in frames]
  except (RuntimeError, ValueError, cv2.error) as e:
    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    raise inputs.BadInput(f'face detection failed: {first}') from e


def batched(fn, x: np.ndarray, size: int):
  """fn over x in chunks of exactly `size` rows (the last padded with copies of the first
  row), concatenated and cut back to len(x): one compiled shape for any number of faces."""
  outs = []
  for start in range(0, len(x), size):
    chunk = x[start:start + size]
    pad = np.repeat(chunk[:1], size - len(chunk), axis=0)
    outs.append([np.asarray(o)[:len(chunk)] for o in fn(np.concatenate([chunk, pad]))])
  return [np.concatenate(parts) for parts in zip(*outs)]


def input_score(frames, scores, faceless_frames: int, video_score: str,
                faceless: str) -> float | None:
  """An input's fake probability from its faces' (frame index, score) and its number of
  frames without a face: its video score by the evaluation rule (`metrics.video_scores`
  of one video); None when it has no face and faceless frames are skipped (evaluation
  scores such a video 0.5)."""
  one = np.zeros(len(scores), np.int64)
  none = np.zeros(faceless_frames, np.int64)
  score = metrics.video_scores(one, frames, one, scores, video_score, faceless,
                               (none, none, none), no_face=None)[1]
  return float(score[0]) if len(score) else None


def input_row(entry: dict, rule: tuple[str, str]) -> dict:
  """An input's inputs.jsonl row from its entry (faces' scores, counts, status)."""
  frames, scores = [f for f, _ in entry['scores']], [p for _, p in entry['scores']]
  return {'path': entry['path'], 'frames': entry['frames'], 'faces': entry['faces'],
          'faceless_frames': entry['faceless'],
          'fake_probability': input_score(frames, scores, entry['faceless'], *rule),
          'status': entry['status'], 'rule': rule[0], 'faceless': rule[1]}


class Stream:
  """Rows written in input order as soon as they are complete, and the faces waiting for
  a forward pass: at most `size` crops (model input + overlay picture) at a time."""

  def __init__(self, forward, size: int, output: str, rows: outputs.Rows,
               rule=('mean_faces', 'skip')):
    self.forward, self.size, self.output, self.rows = forward, size, output, rows
    self.rule = rule  # (evaluation.video_score, evaluation.faceless)
    self.crops, self.faces = [], []  # model inputs; (row, overlay crop, input entry)
    self.pending = []  # (file name, row or input entry) waiting behind self.crops

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
      self._flush()
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
        if self.rule[0] != 'mean_faces' or row['face'] == 0:  # mean_faces: the subject
          entry['scores'].append((row['frame'], prob))
    self._flush()
    kind = getattr(self.forward, 'map_kind', 'model')
    for (row, picture, _), heat_map in zip(self.faces, maps):
      outputs.write_picture(os.path.join(self.output, row['overlay']),
                            pictures.overlay(picture, heat_map, row['fake_probability'],
                                             kind))
    self.crops, self.faces = [], []

  def _flush(self):
    self.rows.write([(name, input_row(row, self.rule) if name == 'inputs.jsonl' else row)
                     for name, row in self.pending])
    self.pending = []

  def close(self):
    self.run()
    self.rows.close()


def queue_input(stream: Stream, config, path: str, frames, why: str | None,
                prefix: str) -> str | None:
  """Queues one input's faces and rows on `stream`; returns why it was skipped, or None."""
  from fjax.data import examples  # pylint: disable=g-import-not-at-top
  from fjax.data import faces  # pylint: disable=g-import-not-at-top
  entry = {'path': path, 'frames': len(frames or ()), 'faces': 0, 'faceless': 0,
           'scores': []}
  try:
    found = find_faces(frames) if why is None else []
  except inputs.BadInput as e:
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
                  faces.crop(frame, box, pictures.OVERLAY_SIZE), row, entry)
  entry['status'] = 'ok' if entry['faces'] else 'no face'
  stream.row('inputs.jsonl', entry)
  return None


def predict(workdir: str, paths: list[str], output: str, num_frames: int = 8,
            batch_size: int = 16, overwrite: bool = False, on_input=None,
            cam: str | None = None, cam_batch: int = 64) -> dict:
  """Streams the inputs `paths` through the model: per-face rows -> predictions.jsonl,
  per-input rows -> inputs.jsonl (the input's score by the run's `evaluation` rule, the
  video-level score for a video; see fjax.predict), each written as soon as it is
  complete; `on_input(row)` is called with every inputs.jsonl row once written; `cam`
  draws that CAM (fjax.cam) instead of the model's map. Returns counts (read, skipped,
  faces, rows); UserError when no input could be read."""
  from fjax import inference  # pylint: disable=g-import-not-at-top
  earlier = outputs.earlier_results(output, overwrite)
  config, forward = inference.load_run(workdir, cam=cam, cam_batch=cam_batch)
  rule = (config.evaluation.video_score, config.evaluation.faceless)
  unique = inputs.unique(paths)
  tags = inputs.input_tags(unique)
  created = not os.path.isdir(output)
  stream = Stream(forward, batch_size, output, outputs.Rows(output, earlier, on_input), rule)
  first_bad = None
  for path, frames, why in inputs.read_inputs(unique.values(), num_frames):
    why = queue_input(stream, config, path, frames, why,
                      inputs.overlay_prefix(path, tags[os.path.abspath(path)]))
    frames = None  # the next input is read without this one's frames
    if why is not None and first_bad is None:
      first_bad = f'{path}: {why}'
  stream.close()
  counts = dict(stream.rows.counts)
  if not counts.get('read'):
    outputs.discard(output, created)
    raise UserError(first_bad if len(unique) == 1 else
                    f'none of the {len(unique)} inputs could be read (first: {first_bad})')
  return counts
