"""MSCCNet's released state dict (miaoct/MSCCNet, models/msccnet, built by
configs/mscc/mscc_resnet_ff_all.py) -> the `msccnet` model's variables.

Keys: `backbone_net.` + the v1c ResNet (`weights.v1c_key`: `stem.0/1/3/4/6/7` = the three
stem convs and BNs, then timm's `layerN.M.convK` / `downsample.0/1` names), `classifer.fc` (sic), `bottleneck1-3`
and `bottleneck_fusion` (MFA: conv, BN), `mscc.decoder_map` (conv, BN, ReLU, Dropout2d,
conv: 0 1 4), `mscc.fuse` (1 x N x 1 x 1), `mscc.gcn.conv1` (N x N x 1 x 1, no bias),
`mscc.gcn.conv2` (Linear), `mscc.bottleneck`, `decoder` (0 1 4) and the fixed DCT filter
`mscc.frequency.weight`, checked against fjax's and not loaded.
"""
from __future__ import annotations

import numpy as np

from fjax.weights import timm as weights
from fjax.util.errors import UserError
from fjax.models import msccnet

TOP = {'cls_head': 'classifer.fc', 'mfa_layer2': 'bottleneck1', 'mfa_layer3': 'bottleneck2',
       'mfa_layer4': 'bottleneck3', 'mfa_fuse': 'bottleneck_fusion', 'decoder': 'decoder',
       'mscc/coarse_head': 'mscc.decoder_map', 'mscc/fuse_conv': 'mscc.bottleneck',
       'mscc/group_fuse': 'mscc.fuse', 'mscc/gcn/channel': 'mscc.gcn.conv2'}
CONV_BN = {'Conv_0': '0', 'BatchNorm_0': '1'}                   # conv, BN, ReLU
PIXEL_HEAD = {'ConvBNReLU_0/Conv_0': '0', 'ConvBNReLU_0/BatchNorm_0': '1',
              'Conv_0': '4'}                                     # ... Dropout2d, conv


def released_key(names: tuple[str, ...], deep_stem: bool = True) -> str:
  """('params', 'mscc', 'coarse_head', 'Conv_0', 'kernel') -> 'mscc.decoder_map.4.weight'."""
  modules, leaf = names[1:-1], names[-1]
  if modules[0] == 'backbone':
    path = ('params',) + modules[1:] + (leaf,)
    return 'backbone_net.' + (weights.v1c_key(path) if deep_stem else weights.timm_key(path))
  if leaf == 'node_mix':
    return 'mscc.gcn.conv1.weight'
  path = '/'.join(modules)
  top = max((t for t in TOP if path == t or path.startswith(t + '/')), key=len, default=None)
  if top is None:
    raise UserError(f'MSCCNet: {path} has no counterpart in the released model '
                    '(use the paper,official preset)')
  inner = path[len(top) + 1:]
  parts = PIXEL_HEAD if top in ('decoder', 'mscc/coarse_head') else CONV_BN
  return '.'.join(p for p in (TOP[top], parts.get(inner, '') if inner else '',
                              weights.LEAF.get(leaf, leaf)) if p)


def layout(names: tuple[str, ...], value: np.ndarray) -> np.ndarray:
  if names[-1] == 'node_mix':
    return value[:, :, 0, 0]           # 1x1 conv over the N nodes
  if names[-2] == 'group_fuse' and names[-1] == 'kernel':
    return value.reshape(-1, 1)        # (1, N, 1, 1) -> Dense (N, 1)
  return weights.to_flax_layout(value, names[-1])


def convert(state_dict: dict[str, np.ndarray], shapes, config) -> dict:
  m = config.model
  if not (m.official and m.mfa and m.mscc and m.dct and m.gcn and m.fuse == 'concat'):
    raise UserError('MSCCNet: released weights need the full released model '
                    '(preset paper,official)')
  key = 'mscc.frequency.weight'
  if key in state_dict:  # the released fixed filter (C, h, w) must be the one fjax computes
    c, h, w = state_dict[key].shape
    if not np.allclose(state_dict[key], msccnet.released_dct_filter(h, w, c).transpose(2, 0, 1),
                       atol=1e-6):
      raise UserError(f'MSCCNet: {key} is not the released DCT filter of {h}x{w}')
    side = config.input.image_size // m.output_stride
    if (h, w) != (side, side):
      raise UserError(f'MSCCNet: the checkpoint\'s DCT filter is {h}x{w}, the config makes '
                      f'{side}x{side} features (input.image_size {config.input.image_size})')
  return weights.fill(shapes, state_dict, lambda n: released_key(n, m.deep_stem), layout,
                      'MSCCNet', lambda k: k == key)
