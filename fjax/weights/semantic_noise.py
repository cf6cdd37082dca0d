"""Detect and Locate's released state dict (ChenqiKONG/Detect_and_Locate, arch/xcep_fusion.py)
-> the `semantic_noise` model's variables.

The backbone keys are timm's legacy_xception names at the top level (`conv1`, `block1.rep.0`,
...). The heads are nn.Sequential stacks: `seg1`/`noise1` hold conv, conv, pool, conv, conv,
pool, up, up (indices 0 1 3 4 6 7), `seg2`/`noise2` conv, conv, pool, up (0 1 3), the deep
heads `seg3_in` (3x3 then 1x1) and `seg3_out` (two ups); then `blockcq_fusion`, `conv_cls`
(conv, conv, BN, ReLU, pool, conv, conv, BN: 0 1 2 5 6 7) and `fc` (0, 1).

Layouts: transposed convs (in, out, k, k) -> HWIO with the kernel flipped (PyTorch's
transposed conv correlates with the flipped kernel, Flax's does not); `fc.0` reads the
flattened classifier features in (C, H, W) order, fjax's in (H, W, C); the semantic heads'
last layer swaps its two output channels (released: channel 0 manipulated; fjax: 1).
"""
from __future__ import annotations

import numpy as np

from fjax.weights import timm as weights

CLS = {'cls_conv0a': 'conv_cls.0', 'cls_conv0b': 'conv_cls.1', 'cls_bn0': 'conv_cls.2',
       'cls_conv1a': 'conv_cls.5', 'cls_conv1b': 'conv_cls.6', 'cls_bn1': 'conv_cls.7',
       'fc0': 'fc.0', 'fc1': 'fc.1'}
LAST_UP = {'seg1': 'ConvTranspose_1', 'seg2': 'ConvTranspose_0', 'seg3': 'ConvTranspose_1'}


def _head(top: str, layer: str) -> str:
  kind, i = layer.rsplit('_', 1)
  i = int(i)
  if top.endswith('3'):  # DeepHead: Conv_0 is the 1x1 (created first), Conv_1 the 3x3
    part = {('Conv', 0): 'in.1', ('Conv', 1): 'in.0'}.get((kind, i), f'out.{i}')
    return f'{top}_{part}'
  stages = 2 if top.endswith('1') else 1
  return f'{top}.{3 * (i // 2) + i % 2 if kind == "Conv" else 3 * stages + i}'


def released_key(names: tuple[str, ...]) -> str:
  """('params', 'seg1', 'Conv_2', 'kernel') -> 'seg1.3.weight'."""
  top, rest, leaf = names[1], names[2:-1], weights.LEAF.get(names[-1], names[-1])
  if top == 'backbone':
    return weights.timm_key(names[:1] + names[2:])
  if top == 'fusion_block':
    return 'blockcq_fusion.' + weights.timm_key(names[:1] + names[2:])
  if top in CLS:
    return f'{CLS[top]}.{leaf}'
  return f'{_head(top, rest[0])}.{leaf}'


def layout(names: tuple[str, ...], value: np.ndarray, fc0_hwc: tuple[int, int, int]) -> np.ndarray:
  top, layer, leaf = names[1], names[-2], names[-1]
  if layer.startswith('ConvTranspose') and leaf == 'kernel':
    value = value.transpose(2, 3, 0, 1)[::-1, ::-1]  # (in, out, k, k) -> flipped HWIO
  elif top == 'fc0' and leaf == 'kernel':
    h, w, c = fc0_hwc  # (out, C*H*W) -> (H*W*C, out)
    value = value.reshape(-1, c, h, w).transpose(2, 3, 1, 0).reshape(h * w * c, -1)
  else:
    value = weights.to_flax_layout(value, leaf)
  if LAST_UP.get(top) == layer:
    value = value[..., ::-1]  # output channels [manipulated, real] -> [real, manipulated]
  return np.ascontiguousarray(value)


def convert(state_dict: dict[str, np.ndarray], shapes, config) -> dict:
  del config  # the classifier tail always sees 19 x 19 -> 2 x 2 x 728
  return weights.fill(shapes, state_dict, released_key,
                      lambda names, v: layout(names, v, (2, 2, 728)), 'Detect and Locate')
