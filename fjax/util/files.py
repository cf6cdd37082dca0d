"""Files of a run and of its data on any filesystem `etils.epath` reaches: local paths,
`gs://` (through gcsfs, or TensorFlow's gfile where TensorFlow is installed), `s3://`...

Every file fjax writes in a workdir or beside a data set goes through these helpers, so
one rule holds everywhere:
- local paths behave as POSIX files always did: a whole file is written to a temporary
  name and renamed (`os.replace`), so a reader never sees half of it; a growing file
  (metrics.jsonl) is appended to;
- elsewhere (object stores) one write is one object upload, which is atomic by itself: a
  reader sees the old object or the new one. Objects cannot be appended to, so a growing
  file keeps its lines in memory and is rewritten whole on each addition (`Lines`).
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile

from etils import epath

_URI = re.compile(r'^[A-Za-z][A-Za-z0-9+.-]*://')


def is_local(path) -> bool:
  """False for a URI (gs://, s3://, ...), which only epath can reach."""
  return not _URI.match(os.fspath(path))


def absolute(path) -> str:
  """A local path made absolute; a URI as given (os.path.abspath would mangle it)."""
  path = os.fspath(path)
  return os.path.abspath(path) if is_local(path) else path.rstrip('/')


def path(p) -> epath.Path:
  return epath.Path(p)


def exists(p) -> bool:
  return epath.Path(p).exists()


def isfile(p) -> bool:
  return epath.Path(p).is_file()


def isdir(p) -> bool:
  return epath.Path(p).is_dir()


def listdir(p) -> list[str]:
  return [c.name for c in epath.Path(p).iterdir()]


def makedirs(p) -> None:
  epath.Path(p).mkdir(parents=True, exist_ok=True)


def rename(src, dst) -> None:
  """os.rename locally; elsewhere epath's rename (an object store copies every object of
  a directory and deletes the originals: not atomic)."""
  if is_local(src):
    os.rename(src, dst)
  else:
    epath.Path(src).rename(dst)


def size_and_mtime(p) -> tuple[int, float]:
  if is_local(p):
    return os.path.getsize(p), os.path.getmtime(p)
  stat = epath.Path(p).stat()
  return stat.length, float(stat.mtime)


def read_text(p) -> str:
  return epath.Path(p).read_text()


def read_bytes(p) -> bytes:
  return epath.Path(p).read_bytes()


def write_text(p, text: str) -> None:
  write_bytes(p, text.encode())


def write_bytes(p, data: bytes) -> None:
  """The whole file at once: locally to `<name>.<pid>.tmp` then renamed, elsewhere one
  object upload; a reader never sees part of it. The parent directory must exist."""
  p = os.fspath(p)
  if not is_local(p):
    epath.Path(p).write_bytes(data)
    return
  tmp = f'{p}.{os.getpid()}.tmp'
  try:
    with open(tmp, 'wb') as f:
      f.write(data)
    os.replace(tmp, p)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


class Lines:
  """A text file that grows by whole lines (metrics.jsonl). Locally each line is
  appended (`open(path, 'a')`). Elsewhere the object's lines (read when first added to)
  are kept in memory and the object is rewritten whole on each `add`: one upload, atomic,
  so a reader sees every line written so far or the previous version; the cost grows with
  the file (a run's metrics are some hundred kB). Two processes adding to one remote file
  would overwrite each other's lines: fjax writes it from process 0 only, and one run per
  workdir."""

  def __init__(self, p):
    self.path = os.fspath(p)
    self._text = None  # remote: the object's content so far

  def add(self, line: str) -> None:
    line = line if line.endswith('\n') else line + '\n'
    if is_local(self.path):
      with open(self.path, 'a') as f:
        f.write(line)
      return
    if self._text is None:
      target = epath.Path(self.path)
      self._text = target.read_text() if target.exists() else ''
      if self._text and not self._text.endswith('\n'):
        self._text += '\n'
    self._text += line
    epath.Path(self.path).write_text(self._text)


class Mirror:
  """A local directory standing in for a remote one, for writers that only write local
  files (tensorboardX's event files): `sync()` uploads each file that is new or has grown
  since the last sync, whole (one object each). For a local `target` the target itself
  is used and nothing is copied."""

  def __init__(self, target):
    self.target = os.fspath(target)
    self.local = is_local(self.target)
    self.directory = self.target if self.local else tempfile.mkdtemp(prefix='fjax-mirror-')
    self._sizes: dict[str, int] = {}

  def sync(self) -> None:
    if self.local:
      return
    for root, _, names in os.walk(self.directory):
      for name in names:
        src = os.path.join(root, name)
        size = os.path.getsize(src)
        if self._sizes.get(src) == size:
          continue
        rel = os.path.relpath(src, self.directory)
        dst = epath.Path(self.target) / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        with open(src, 'rb') as f:
          dst.write_bytes(f.read())
        self._sizes[src] = size

  def close(self) -> None:
    """Last sync, then the local copy is removed."""
    if self.local:
      return
    self.sync()
    shutil.rmtree(self.directory, ignore_errors=True)
