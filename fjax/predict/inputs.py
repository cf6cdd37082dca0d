"""predict's inputs: images and videos read one at a time (an image as one frame, a video
as evenly spaced frames), a bad input named with why, and the tag in each input's overlay
names."""
from __future__ import annotations

import collections
import hashlib
import os

import cv2


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


def unique(paths) -> dict[str, str]:
  """Absolute path -> the path as given, first time each: an input named twice is
  predicted once."""
  out = {}
  for path in paths:
    out.setdefault(os.path.abspath(path), path)
  return out


def input_tags(abs_paths) -> dict[str, str]:
  """Absolute path -> the tag in its overlay names: 8 hex digits of the path's SHA-1, or
  all 40 for paths whose first 8 collide within this call."""
  digests = {p: hashlib.sha1(os.fsencode(p)).hexdigest() for p in abs_paths}
  counts = collections.Counter(d[:8] for d in digests.values())
  return {p: d[:8] if counts[d[:8]] == 1 else d for p, d in digests.items()}


def overlay_prefix(path: str, tag: str) -> str:
  """<stem>-<tag>: the start of the input's overlay names (stem cut to 80 characters)."""
  return f'{os.path.splitext(os.path.basename(path))[0][:80]}-{tag}'
