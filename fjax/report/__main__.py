"""The command line of fjax.report (`python -m fjax.report`, the `fjax-report` console
script); its --help is the package's usage text."""
from __future__ import annotations

from absl import flags, logging

from fjax import report as package
from fjax.util import cli
from fjax.util.errors import UserError, fail


def _define_flags():
  flags.DEFINE_multi_string('workdir', None, 'A run (its config.json, metrics.jsonl, '
                            'scores/, checkpoints); repeat the flag for several.',
                            required=True)
  flags.DEFINE_string('output', None, 'The folder for index.html and its PNGs.',
                      required=True)
  flags.DEFINE_integer('faces', 3, 'Gallery faces of each kind (correct, wrong) per run; '
                       '0: no gallery (no checkpoint is opened).')
  flags.DEFINE_enum('cam', None, ['gradcam', 'scorecam'], "The gallery's map: this class "
                    "activation map (fjax.cam) instead of the model's own.")
  flags.DEFINE_string('title', 'fjax report', 'The page title.')


def main(argv):
  cli.reject_arguments(argv, 'python -m fjax.report --workdir=DIR [--workdir=DIR2 ...] '
                       '--output=OUT')
  args = flags.FLAGS
  logging.set_verbosity(logging.ERROR)
  if args.faces < 0:
    fail(f'--faces must be at least 0, not {args.faces}')
  try:
    from fjax.report import build  # pylint: disable=g-import-not-at-top
    path = build.build(args.workdir, args.output, args.faces, args.cam, args.title)
  except UserError as e:
    fail(str(e))
  print(f'{len(args.workdir)} runs -> {path}')


def entry():
  """`python -m fjax.report` and the `fjax-report` console script (fjax.util.cli)."""
  _define_flags()
  cli.run(main, package.__doc__, __name__)


if __name__ == '__main__':
  entry()
