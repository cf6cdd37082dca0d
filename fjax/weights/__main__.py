"""Converts a timm state dict into an Orbax checkpoint that a config names as `init_from`.

  python -m fjax.weights convert --arch resnet50 --input resnet50.safetensors --output DIR
      [--head] [--image_size 512]

The checkpoint holds {'params': ..., 'model_state': {'batch_stats': ...}} of the backbone
alone; configs load it into their backbone module(s) with `init_into` (see configs/common.py).
"""
from __future__ import annotations

import argparse
import os
import sys

from fjax import errors


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


def main(argv=None):
  args = parse(sys.argv[1:] if argv is None else argv)
  try:
    print(convert(args))
  except errors.UserError as e:
    errors.fail(str(e))


if __name__ == '__main__':
  main()
