"""Advisory file locks (`fcntl.flock`) for a live run's workdir and a data set being built.

The kernel drops a flock when its process dies, so a killed run never leaves a workdir or
a data set locked. The lock file names its holder (pid and host) for the refusal message.
On a shared filesystem the lock works where the filesystem passes flock on (NFSv4,
Lustre and GPFS with their lock options, Filestore); elsewhere it guards one host only.
An object store (a gs:// workdir or data directory) has no such lock: there nothing is
locked, and one warning line says that concurrent runs are not guarded.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys

from absl import logging

from fjax.util import files
from fjax.util.errors import UserError


def _holder(fd: int) -> str:
  return os.pread(fd, 200, 0).decode(errors='replace').strip() or 'unknown process'


@contextlib.contextmanager
def exclusive(path: str, what: str, wait: bool):
  """Holds the lock file `path` for the `with` block. wait=False: refuses with one line
  naming `what` and its holder when a live process holds it; wait=True: waits for it.
  A path that is not local (gs://...) cannot be locked: one warning, no lock."""
  if not files.is_local(path):
    logging.warning('%s is not on a local filesystem: it cannot be locked, concurrent runs '
                    'on it are not guarded', what)
    yield
    return
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      if not wait:
        raise UserError(f'{what} is in use by a live run ({_holder(fd)}); wait for it to '
                        'end or use another one') from None
      print(f'waiting for {_holder(fd)}, which holds {what}', file=sys.stderr, flush=True)
      fcntl.flock(fd, fcntl.LOCK_EX)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f'pid {os.getpid()} on {socket.gethostname()}\n'.encode(), 0)
    yield
  finally:
    os.close(fd)  # closing the only descriptor releases the lock


def prepared(make_builder, **prepare_kwargs):
  """A TFDS builder whose data set is built: the first caller builds it while holding a
  lock beside it, concurrent callers (two first runs side by side, two build commands)
  wait and then read what it built."""
  builder = make_builder()
  if builder.is_prepared():
    return builder
  version_dir = os.fspath(builder.data_dir).rstrip('/')
  lock = os.path.join(os.path.dirname(version_dir), f'.{os.path.basename(version_dir)}.lock')
  with exclusive(lock, f'the data set {builder.info.full_name} being built', wait=True):
    builder = make_builder()  # another process may have built it while we waited
    if not builder.is_prepared():
      builder.download_and_prepare(**prepare_kwargs)
  return make_builder()  # reads the finished data set's info
