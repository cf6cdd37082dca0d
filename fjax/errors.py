"""The one exception type that reaches users as a single line and a non-zero exit."""
import os
import sys

from absl import logging


class UserError(Exception):
  """Bad input from the user (config, data, checkpoint, image): message says what."""


def fail(message: str):
  """One line on stderr and exit 1, skipping interpreter teardown: Orbax's background
  threads would otherwise print tracebacks while the interpreter shuts down. Callers have
  already waited for any checkpoint write."""
  logging.flush()
  sys.stdout.flush()
  print(f'error: {message}', file=sys.stderr, flush=True)
  os._exit(1)
