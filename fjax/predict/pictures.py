"""The pictures predict draws: a face beside its map as a JET heat map, titled panels under
a header line, and a colour bar whose label says the map's scale (absolute probability, or
normalised per face for a CAM)."""
from __future__ import annotations

import cv2
import numpy as np

OVERLAY_SIZE = 256

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


def heat(m: np.ndarray, size: int = OVERLAY_SIZE) -> np.ndarray:
  """A [0, 1] map as a size x size RGB heat map, absolute (nearest: pair maps keep their
  cells)."""
  return jet(cv2.resize(np.clip(m, 0, 1).astype(np.float32), (size, size),
                        interpolation=cv2.INTER_NEAREST))


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
