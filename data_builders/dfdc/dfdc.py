"""DFDC's public test set (5,000 videos): `labels.csv` (columns `filename,label`, label 1 =
fake, 0 = real) beside a `videos/` folder holding those files, at the root of manual_dir
or under its `test/` folder. That is the released test archive's layout and how SBI
(mapooon/SelfBlendedImages, src/inference/datasets.py `init_dfdc`: labels.csv, videos/)
and DeepfakeBench (preprocessing/rearrange.py: test/labels.csv) read it; AUNet follows
SBI's protocol. The training parts (`dfdc_train_part_*/metadata.json`) are never read:
a tree that holds only them is refused with one line, since they are training data.

Every face of each sampled frame is stored (`face` index per frame). The papers'
single-subject subset (videos showing one person) is an evaluation-time filter,
`config.dataset.single_subject`: it keeps the videos whose every stored example has face
index 0."""
from __future__ import annotations

import csv
import os

from data_builders import video_test_set as vts


class Dfdc(vts.VideoTestSet):
  """Deepfake Detection Challenge public test videos, every face."""
  BUILDER_CONFIGS = vts.configs()
  HOMEPAGE = 'https://ai.meta.com/datasets/dfdc/'
  MANUAL_DOWNLOAD_INSTRUCTIONS = ('Extract the DFDC public test set: labels.csv and videos/ '
                                  '(at manual_dir or manual_dir/test).')

  def _list(self, root):
    folder = next((d for d in (root, os.path.join(root, 'test'))
                   if os.path.isfile(os.path.join(d, 'labels.csv'))), None)
    if folder is None:
      parts = any('metadata.json' in files for _, _, files in os.walk(root))
      raise FileNotFoundError(
          f'no labels.csv in {root} or {os.path.join(root, "test")} (DFDC public test set: '
          'labels.csv + videos/)' + ('; the metadata.json folders found are DFDC training '
                                     'parts, never read as test' if parts else ''))
    path = os.path.join(folder, 'labels.csv')
    with open(path, newline='') as f:
      rows = list(csv.DictReader(f))
    media = []
    for n, row in enumerate(rows, 2):
      name, label = (row.get('filename') or '').strip(), (row.get('label') or '').strip()
      if not name or label not in ('0', '1'):
        raise ValueError(f'malformed line {n} of {path}: expected filename,label with label '
                         f'0 (real) or 1 (fake), got {row}')
      media.append(vts.Media(os.path.join(folder, 'videos', name),
                             'fake' if label == '1' else 'real', os.path.splitext(name)[0]))
    missing = [m.path for m in media if not os.path.isfile(m.path)]
    if missing:
      raise FileNotFoundError(f'{len(missing)} videos listed in {path} are missing, e.g. '
                              f'{missing[0]}')
    return media
