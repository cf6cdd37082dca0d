"""Converts weights into checkpoints fjax reads.

  python -m fjax.weights convert --arch resnet50 --input resnet50.safetensors --output DIR
      [--head] [--image_size 512]
  python -m fjax.weights import --model semantic_noise|msccnet --input CKPT --output DIR
      [--preset paper,official]

`convert`: a timm state dict -> {'params', 'model_state'} of the backbone alone; configs
load it into their backbone module(s) with `init_into` (see configs/common.py).
`import`: an authors' released checkpoint -> a workdir holding the whole model as step 0
(config.json and checkpoints/0), which `--mode=eval`, predict and
`--config.init_from=DIR --config.init_into=''` accept with the same config and preset.
"""
from __future__ import annotations

import argparse
import os
import sys

from fjax.util import errors


def parse(argv):
  from fjax import weights  # pylint: disable=g-import-not-at-top
  p = argparse.ArgumentParser(prog='python -m fjax.weights')
  sub = p.add_subparsers(dest='command', required=True)
  c = sub.add_parser('convert', help='timm state dict -> Orbax checkpoint')
  c.add_argument('--arch', required=True, choices=sorted(weights.ARCHS))
  c.add_argument('--input', required=True, help='.safetensors (or .pth, tensors only)')
  c.add_argument('--output', required=True, help='new checkpoint directory')
  c.add_argument('--head', action='store_true', help='keep the ImageNet classifier')
  c.add_argument('--image_size', type=int, default=None,
                 help='ViT: resample the position embeddings to this input size')
  i = sub.add_parser('import', help="an authors' released checkpoint -> an fjax workdir")
  i.add_argument('--model', required=True, choices=weights.RELEASED)
  i.add_argument('--input', required=True, help='.pth (tensors only) or .safetensors')
  i.add_argument('--output', required=True, help='new workdir')
  i.add_argument('--preset', default='paper,official',
                 help="the config preset(s) the weights are used with (default paper,official)")
  return p.parse_args(argv)


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


def main(argv=None):
  args = parse(sys.argv[1:] if argv is None else argv)
  try:
    print(import_released(args) if args.command == 'import' else convert(args))
  except errors.UserError as e:
    errors.fail(str(e))


if __name__ == '__main__':
  main()
