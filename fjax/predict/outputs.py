"""predict's files in --output: predictions.jsonl and inputs.jsonl written row by row, the
overlay PNGs, and the refusal to mix two calls (--overwrite deletes exactly what an earlier
call listed)."""
from __future__ import annotations

import collections
import json
import os
import re

import cv2

from fjax.util.errors import UserError
from fjax.util.paths import check_dir_path

RESULT_FILES = ('predictions.jsonl', 'inputs.jsonl')
OVERLAY_NAME = re.compile(r'_f\d{5}_face\d+\.png$')  # overlays of --input, every version


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


def discard(output: str, created: bool):
  """Deletes the result files of a call that read no input, and `output` itself when the
  call created it and it is left empty."""
  clear([os.path.join(output, n) for n in RESULT_FILES])
  if created and not os.listdir(output):
    os.rmdir(output)


def start(output: str, earlier: list[str], names) -> dict:
  """Creates `output`, deletes the `earlier` results (`earlier_results`) and opens the
  files `names` there for writing: name -> file; UserError when it cannot."""
  try:
    os.makedirs(output, exist_ok=True)
    clear(earlier)
    return {name: open(os.path.join(output, name), 'w') for name in names}
  except OSError as e:
    raise UserError(f'cannot write in --output {output}: {e.strerror or e}') from e


def write_picture(path: str, rgb) -> None:
  """An RGB uint8 picture as a PNG; UserError when it cannot be written."""
  if not cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
    raise UserError(f'cannot write {path}')


class Rows:
  """predictions.jsonl and inputs.jsonl of one call in `output`, written in the order
  given and flushed; `on_input(row)` is called with every inputs.jsonl row once written.
  `counts`: inputs read and skipped, rows and faces."""

  def __init__(self, output: str, earlier: list[str], on_input=None):
    self.files = start(output, earlier, RESULT_FILES)
    self.on_input = on_input
    self.counts = collections.Counter()

  def write(self, rows):
    """[(file name, row)] in order."""
    for name, row in rows:
      if name == 'inputs.jsonl':
        self.counts['skipped' if row['status'].startswith('skipped') else 'read'] += 1
      else:
        self.counts['rows'] += 1
        self.counts['faces'] += row['status'] == 'ok'
      self.files[name].write(json.dumps(row) + '\n')
    for f in self.files.values():
      f.flush()
    for name, row in rows if self.on_input is not None else ():
      if name == 'inputs.jsonl':
        self.on_input(row)

  def close(self):
    for f in self.files.values():
      f.close()
