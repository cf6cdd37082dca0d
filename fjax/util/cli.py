"""The one command-line convention of every entry point (`python -m fjax.main`,
fjax.predict, fjax.bench, fjax.focus_maps, fjax.compare_maps, fjax.weights,
data_builders.build, and their console scripts fjax, fjax-predict, ...):

- absl flags, `--name=value` or `--name value`;
- `--help` (also -h, --helpshort; --helpfull adds every library's flags) prints the
  module's usage text (its docstring) and its flags on stdout and exits 0 (absl's own
  --help exits 1 and, under a console script, shows the wrapper's empty docstring);
- a bad flag, flag value, config key or preset is one line on stderr and exit status 1,
  never a traceback;
- the INFO and WARNING chatter of TFDS, grain and orbax, and JAX's backend probe
  ("Unable to initialize backend 'tpu': ... libtpu.so ...", logged at INFO when no TPU is
  there), stay out of the log; errors, and JAX's warnings, still show.
"""
from __future__ import annotations

import os
import re
import sys
from typing import Callable, Sequence

from absl import app, flags, logging

HELP = ('--help', '-help', '-h', '-?', '--helpshort', '--helpfull')
_NOISY = ('/orbax/', '/grain/', '/tensorflow_datasets/')


class QuietLibraries:
  """An absl log filter: drops the INFO and WARNING records of orbax, grain and tfds, and
  JAX's INFO records of backends it could not start because they are not there."""

  def filter(self, record) -> bool:
    if record.levelno >= 40:
      return True
    path = record.pathname.replace(os.sep, '/')
    if any(n in path for n in _NOISY):
      return False
    if record.levelno < 30 and path.endswith('/jax/_src/xla_bridge.py'):
      try:
        return not record.getMessage().startswith('Unable to initialize backend')
      except Exception:  # pylint: disable=broad-except
        return True
    return True


_QUIET = QuietLibraries()


def quiet_libraries() -> None:
  """Installs the filter on absl's handler (idempotent)."""
  handler = logging.get_absl_handler()
  if _QUIET not in handler.filters:
    handler.addFilter(_QUIET)


def last_line(e: BaseException) -> str:
  """The informative line of a (possibly nested, traceback-carrying) error message."""
  lines = [l.strip() for l in str(e).splitlines() if l.strip()]
  return (lines[-1] if lines else type(e).__name__)[:300]


def _unknown_config_key(e: Exception, argv: Sequence[str]) -> str | None:
  """'unknown config key 'a.b' (did you mean 'a.c'?)' for ml_collections' KeyError of an
  override naming a key the config lacks (raised bare, or inside an AttributeError, with
  the key's repr and a "Did you mean" line in its message); None for other errors."""
  inner = e
  while isinstance(inner, AttributeError) and inner.args and isinstance(inner.args[0],
                                                                         KeyError):
    inner = inner.args[0]
  if not isinstance(inner, KeyError) or not inner.args:
    return None
  text = str(inner.args[0])
  found = re.match(r'\s*[\'"]?([^\'"\n]+)', text)
  if not found:
    return None
  key = found.group(1)
  hint = re.search(r'Did you mean "([^"]+)"', text)
  path, better = key, hint.group(1) if hint else None
  for arg in argv[1:]:  # the override that names it: --config.a.key.b=value
    override = re.match(r'--?[\w-]+\.([\w.]+)', arg)
    parts = override.group(1).split('.') if override else []
    if key in parts:
      i = parts.index(key)
      path = '.'.join(parts[:i + 1])
      better = better and '.'.join(parts[:i] + [better])
      break
  return f'unknown config key {path!r}' + (f' (did you mean {better!r}?)' if better else '')


def parse_flags(argv: Sequence[str]) -> list[str]:
  """absl's parser, but a bad flag, flag value, config key or preset is one line on
  stderr and exit status 1, not a traceback or absl's usage dump."""
  try:
    return flags.FLAGS(list(argv))
  except Exception as e:  # pylint: disable=broad-except
    message = _unknown_config_key(e, argv) or f'bad command line: {last_line(e)}'
  print(f'error: {message}', file=sys.stderr, flush=True)
  sys.exit(1)


def print_help(doc: str, module_name: str, full: bool = False) -> None:
  """The module's docstring, then its flags (with `full`: every defined flag)."""
  key = sys.argv[0] if module_name == '__main__' else module_name  # absl's module key
  listing = flags.FLAGS.get_help() if full else flags.FLAGS.module_help(key)
  text = (doc or '').strip('\n') + '\n'
  if listing:
    text += '\nflags:\n' + listing + '\n'
  if not full:
    text += '\n--helpfull lists the flags of the libraries too.\n'
  try:
    sys.stdout.write(text)
    sys.stdout.flush()
  except BrokenPipeError:  # `... --help | head`
    pass


def resolve_config_paths(argv: Sequence[str], names: Sequence[str] = ('config',)) -> list[str]:
  """`--config=configs/<file>.py[:preset]` works from any directory: when the path does not
  exist there but names a file of the installed `configs` package, that file is used
  (a checkout's own configs/ wins where it exists)."""
  out = list(argv)
  for i, arg in enumerate(out):
    for name in names:
      for prefix in (f'--{name}=', f'-{name}='):
        if arg.startswith(prefix):
          out[i] = prefix + _config_path(arg[len(prefix):])
      if arg in (f'--{name}', f'-{name}') and i + 1 < len(out):
        out[i + 1] = _config_path(out[i + 1])
  return out


def _config_path(value: str) -> str:
  path, colon, preset = value.partition(':')
  if not path.startswith('configs/') or not path.endswith('.py') or os.path.exists(path):
    return value
  try:
    import configs  # pylint: disable=g-import-not-at-top
  except ImportError:
    return value
  installed = os.path.join(os.path.dirname(os.path.abspath(configs.__file__)),
                           path[len('configs/'):])
  return installed + colon + preset if os.path.exists(installed) else value


def run(main: Callable[[list[str]], None], doc: str, module_name: str,
        argv: Sequence[str] | None = None,
        rewrite: Callable[[list[str]], list[str]] | None = None,
        config_files: Sequence[str] = ()) -> None:
  """Runs `main(remaining argv)` under absl with this module's conventions. `doc` and
  `module_name` (the caller's __doc__ and __name__) make its --help; `rewrite` turns a
  form absl cannot read into flags it can (fjax.predict's `--input a b c`);
  `config_files` names the flags holding config files (see resolve_config_paths)."""
  argv = list(sys.argv if argv is None else argv)
  args = argv[1:argv.index('--')] if '--' in argv else argv[1:]
  if any(a in HELP for a in args):
    print_help(doc, module_name, full='--helpfull' in args)
    sys.exit(0)
  if rewrite:
    argv = rewrite(argv)
  if config_files:
    argv = resolve_config_paths(argv, config_files)
  quiet_libraries()
  app.run(main, argv=argv, flags_parser=parse_flags)


def reject_arguments(argv: Sequence[str], usage: str) -> None:
  """One error line if positional arguments are left after the flags."""
  if len(argv) > 1:
    print(f'error: unexpected arguments {list(argv[1:])}; usage: {usage}', file=sys.stderr)
    sys.exit(1)
