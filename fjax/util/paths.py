"""Checks of directory flags (--workdir, --output) before anything is created in them."""
import os

from fjax.util import files
from fjax.util.errors import UserError


def check_dir_path(path: str, what: str) -> None:
  """UserError when `path` (a directory to use or create) or the nearest of its parents
  that exists is not a directory, where os.makedirs would end in a FileExistsError or
  NotADirectoryError traceback. `what` names the flag, e.g. '--workdir'. A URI (gs://...)
  is refused only when it names an existing file: object stores have no other clash."""
  if not files.is_local(path):
    if files.isfile(path):
      raise UserError(f'{what} {path} is a file, not a directory')
    return
  full = os.path.abspath(path)
  probe = full
  while not os.path.lexists(probe):
    parent = os.path.dirname(probe)
    if parent == probe:
      return
    probe = parent
  if os.path.isdir(probe):
    return
  problem = 'is a file, not a directory' if os.path.isfile(probe) else 'is not a directory'
  raise UserError(f'{what} {path} {problem}' if probe == full
                  else f'{what} {path}: {probe} {problem}')
