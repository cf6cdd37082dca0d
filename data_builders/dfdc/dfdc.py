"""DFDC: videos next to `metadata.json` files ({name: {"label": "REAL"|"FAKE", ...}}) in
any folder of manual_dir; every test video, every face of each sampled frame (`face`
index per frame). The papers' single-subject subset (videos showing one person) is an
evaluation-time filter, `config.dataset.single_subject`: it keeps the videos whose every
stored example has face index 0."""
from __future__ import annotations

import json
import os

from data_builders import video_test_set as vts


class Dfdc(vts.VideoTestSet):
  """Deepfake Detection Challenge test videos, every face."""
  BUILDER_CONFIGS = vts.configs()
  HOMEPAGE = 'https://ai.meta.com/datasets/dfdc/'
  MANUAL_DOWNLOAD_INSTRUCTIONS = 'Extract the DFDC test videos with their metadata.json.'

  def _list(self, root):
    media = []
    for folder, _, files in sorted(os.walk(root)):
      if 'metadata.json' not in files:
        continue
      path = os.path.join(folder, 'metadata.json')
      try:
        with open(path) as f:
          meta = json.load(f)
        entries = [(name, str(info['label']).upper()) for name, info in sorted(meta.items())]
      except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f'malformed {path}: expected {{video: {{"label": ...}}}}') from e
      for name, label in entries:
        if label not in ('REAL', 'FAKE'):
          raise ValueError(f'{path}: label {label!r} of {name} is not REAL or FAKE')
        media.append(vts.Media(os.path.join(folder, name), label.lower(),
                               os.path.splitext(name)[0]))
    if not media:
      raise FileNotFoundError(f'no metadata.json under {root} (DFDC layout)')
    return media
