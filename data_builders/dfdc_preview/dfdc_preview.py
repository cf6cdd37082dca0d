"""DFDC preview: `dataset.json` at the root maps relative video paths to
{"label": "real"|"fake", "set": "train"|"test"}; the test set is built."""
from __future__ import annotations

import json
import os

from data_builders import video_test_set as vts


class DfdcPreview(vts.VideoTestSet):
  """The DFDC preview release, its test videos."""
  BUILDER_CONFIGS = vts.configs()
  HOMEPAGE = 'https://ai.meta.com/datasets/dfdc/'
  MANUAL_DOWNLOAD_INSTRUCTIONS = 'Extract the DFDC preview with its dataset.json.'

  def _list(self, root):
    path = vts.require(os.path.join(root, 'dataset.json'), 'DFDC preview index')
    try:
      with open(path) as f:
        index = json.load(f)
      items = [(rel, str(v['label']).lower(), v['set']) for rel, v in sorted(index.items())]
    except (ValueError, KeyError, TypeError, AttributeError) as e:
      raise ValueError(f'malformed {path}: expected {{path: {{"label", "set"}}}}') from e
    return [vts.Media(os.path.join(root, rel), label, os.path.splitext(rel)[0],
                      rel.split('/')[0] if label == 'fake' else 'real')
            for rel, label, split in items if split == 'test']
