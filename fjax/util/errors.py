"""The one exception type that reaches users as a single line and a non-zero exit."""
import multiprocessing
import os
import sys

from absl import logging


REAL_STDERR = None  # set when stderr was silenced while a failing library thread died


class UserError(Exception):
  """Bad input from the user (config, data, checkpoint, image): message says what.
  Subclasses may set another exit status and line prefix (a run stopped by a signal)."""
  exit_code = 1
  prefix = 'error'


def fail(message: str, exit_code: int = 1, prefix: str = 'error'):
  """One line on stderr and exit, skipping interpreter teardown: Orbax's background
  threads would otherwise print tracebacks while the interpreter shuts down. Callers have
  already waited for any checkpoint write."""
  for child in multiprocessing.active_children():  # grain's workers die with their parent
    child.terminate()
  logging.flush()
  sys.stdout.flush()
  sys.stderr.flush()
  stderr = REAL_STDERR if REAL_STDERR is not None else os.dup(2)
  devnull = os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, 2)  # background threads' last words go nowhere
  os.write(stderr, f'{prefix}: {message}\n'.encode())
  os._exit(exit_code)
