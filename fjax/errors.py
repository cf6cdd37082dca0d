"""The one exception type that reaches users as a single line and a non-zero exit."""


class UserError(Exception):
  """Bad input from the user (config, data, checkpoint, image): message says what."""
