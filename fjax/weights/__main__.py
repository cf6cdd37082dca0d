"""Converts weights into checkpoints fjax reads.

  python -m fjax.weights convert --arch resnet50 --input resnet50.safetensors --output DIR
      [--head] [--image_size 512]
  python -m fjax.weights import --model semantic_noise|msccnet --input CKPT --output DIR
      [--preset paper,official]
  (installed: `fjax-weights convert ...`, `fjax-weights import ...`, the same commands)

`convert`: a timm state dict -> {'params', 'model_state'} of the backbone alone; configs
load it into their backbone module(s) with `init_into` (see configs/common.py).
`import`: an authors' released checkpoint -> a workdir holding the whole model as step 0
(config.json and checkpoints/0), which `--mode=eval`, predict and
`--config.init_from=DIR --config.init_into=''` accept with the same config and preset.
"""
from __future__ import annotations

import os
import types

from absl import flags

from fjax.util import cli, errors


# Each sub-command (the first positional argument) and the flags it reads.
COMMANDS = {'convert': ('arch', 'input', 'output', 'head', 'image_size'),
            'import': ('model', 'input', 'output', 'preset')}
REQUIRED = {'convert': ('arch', 'input', 'output'), 'import': ('model', 'input', 'output')}


def _define_flags():
  from fjax import weights  # pylint: disable=g-import-not-at-top
  flags.DEFINE_enum('arch', None, sorted(weights.ARCHS), 'convert: the timm architecture.')
  flags.DEFINE_enum('model', None, list(weights.RELEASED),
                    "import: the model whose authors' checkpoint --input is.")
  flags.DEFINE_string('input', None, 'convert: .safetensors (or .pth, tensors only); '
                      'import: .pth (tensors only) or .safetensors.')
  flags.DEFINE_string('output', None, 'convert: a new checkpoint directory; import: a new '
                      'workdir.')
  flags.DEFINE_bool('head', False, 'convert: keep the ImageNet classifier.')
  flags.DEFINE_integer('image_size', None, 'convert: ViT: resample the position embeddings '
                       'to this input size.')
  flags.DEFINE_string('preset', 'paper,official', 'import: the config preset(s) the weights '
                      'are used with.')


def parse(argv):
  """The sub-command and its flag values (after absl parsed the flags); exits with one
  line for a missing or unknown sub-command, a missing flag or another command's flag."""
  if len(argv) != 2 or argv[1] not in COMMANDS:
    got = f' (got {" ".join(argv[1:])!r})' if len(argv) > 1 else ''
    errors.fail(f'give a sub-command: convert or import{got}; '
                'see python -m fjax.weights --help')
  command = argv[1]
  values = flags.FLAGS
  for name in REQUIRED[command]:
    if values[name].value is None:
      errors.fail(f'{command} needs --{name}')
  for name in set().union(*COMMANDS.values()) - set(COMMANDS[command]):
    if values[name].present:
      errors.fail(f'--{name} is not a flag of {command}')
  return types.SimpleNamespace(command=command,
                               **{n: values[n].value for n in COMMANDS[command]})


def convert(args) -> str:
  import jax  # pylint: disable=g-import-not-at-top
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  from fjax import weights  # pylint: disable=g-import-not-at-top
  output = os.path.abspath(args.output)
  if os.path.exists(output):
    raise errors.UserError(f'{output} exists; choose a new --output directory')
  _, variables = weights.load(args.arch, args.input, head=args.head,
                              image_size=args.image_size)
  variables = dict(variables)
  tree = {'params': variables.pop('params'), 'model_state': variables}
  ckpt = ocp.StandardCheckpointer()
  ckpt.save(output, tree)  # written to a temporary directory, renamed when complete
  ckpt.wait_until_finished()
  count = sum(x.size for x in jax.tree_util.tree_leaves(tree['params']))
  return f'{args.arch}: {count:,} parameters -> {output}'


def import_released(args) -> str:
  """Writes the imported model as step 0 of a new workdir (fresh optimizer state)."""
  import jax  # pylint: disable=g-import-not-at-top
  from fjax import run as run_lib, weights  # pylint: disable=g-import-not-at-top
  from fjax.trainer import checkpoint, optim, state  # pylint: disable=g-import-not-at-top
  from fjax.trainer.train import write_config  # pylint: disable=g-import-not-at-top
  output = os.path.abspath(args.output)
  if os.path.exists(output):
    raise errors.UserError(f'{output} exists; choose a new --output directory')
  config = weights.released_config(args.model, args.preset)
  _, variables = weights.from_state_dict(args.model, weights.read_state_dict(args.input),
                                              config)
  variables = dict(variables)
  st, shardings = run_lib.open_run(config).fresh_state()
  loaded = {'params': variables.pop('params'), 'model_state': variables}
  st = state.with_weights(st, shardings, loaded, optim.optimizer(config), args.input)
  os.makedirs(output)
  write_config(config, output)
  mgr = checkpoint.manager(output, config)
  checkpoint.save(mgr, 0, st)
  mgr.wait_until_finished()
  count = sum(x.size for x in jax.tree_util.tree_leaves(loaded['params']))
  return (f'{args.model} ({args.preset}): {count:,} parameters -> {output} (step 0); '
          f'evaluate with --config=configs/{args.model}.py:{args.preset} --workdir={output} '
          '--mode=eval')


def main(argv):
  args = parse(argv)
  try:
    print(import_released(args) if args.command == 'import' else convert(args))
  except errors.UserError as e:
    errors.fail(str(e))


def entry():
  """`python -m fjax.weights` and the `fjax-weights` console script (fjax.util.cli)."""
  _define_flags()
  cli.run(main, __doc__, __name__)


if __name__ == '__main__':
  entry()
