"""timm ImageNet state dicts -> Flax variables of the fjax backbones, by one naming rule.

One rule maps every Flax variable to its timm key, because the backbones are named as
timm names its modules: module names join with '.', a `_<n>` suffix is a Sequential index
(`layer1_0` -> `layer1.0`, `rep_1` -> `rep.1`), and leaves map kernel/scale -> weight,
mean/var -> running_mean/running_var. Tensors change layout on the way (conv OIHW -> HWIO,
depthwise (C,1,k,k) -> (k,k,1,C), linear (out,in) -> (in,out)). Any missing, unexpected or
mis-shaped key stops the conversion with a message naming it.
"""
from __future__ import annotations

import os
import re
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from fjax.util.errors import UserError
from fjax.models.backbones.efficientnet import EfficientNet
from fjax.models.backbones.resnet import ResNet
from fjax.models.backbones.vit import ViT, resample_pos_embed
from fjax.models.backbones.xception import Xception

# timm name -> (constructor(num_classes, **kw), classifier key prefix, ImageNet input size)
ARCHS: dict[str, tuple[Callable[..., nn.Module], str, int]] = {
    'vit_small_patch16_224': (lambda n, **kw: ViT(num_classes=n, **kw), 'head', 224),
    # DeiT-S (Touvron et al. 2021, FoCus's backbone [68]): ViT-S/16's layout, other weights
    # (trained on ImageNet-1k with ImageNet's mean/std).
    'deit_small_patch16_224': (lambda n, **kw: ViT(num_classes=n, **kw), 'head', 224),
    'legacy_xception': (lambda n, **kw: Xception(num_classes=n, **kw), 'fc', 299),
    'resnet50': (lambda n, **kw: ResNet(num_classes=n, **kw), 'fc', 224),
    'resnet50c': (lambda n, **kw: ResNet(deep_stem=True, num_classes=n, **kw), 'fc', 224),
    # mmseg's resnet50_v1c (MSCCNet's released backbone): resnet50c's tensors, `stem.N` names.
    'resnet50_v1c': (lambda n, **kw: ResNet(deep_stem=True, num_classes=n, **kw), 'fc', 224),
    'efficientnet_b4': (lambda n, **kw: EfficientNet(num_classes=n, **kw), 'classifier', 380),
    'tf_efficientnet_b4': (lambda n, **kw: EfficientNet(tf_same=True, num_classes=n, **kw),
                           'classifier', 380),
}
IGNORED = re.compile(r'(^|\.)num_batches_tracked$')
LEAF = {'kernel': 'weight', 'scale': 'weight', 'bias': 'bias', 'mean': 'running_mean',
        'var': 'running_var'}


def build(arch: str, head: bool = False, num_classes: int = 1000, **kwargs) -> nn.Module:
  if arch not in ARCHS:
    raise UserError(f'unknown arch {arch!r}; one of {", ".join(ARCHS)}')
  return ARCHS[arch][0](num_classes if head else 0, **kwargs)


V1C_STEM = {'conv1_0': 'stem_0', 'conv1_1': 'stem_1', 'conv1_3': 'stem_3', 'conv1_4': 'stem_4',
            'conv1_6': 'stem_6', 'bn1': 'stem_7'}


def v1c_key(path: tuple[str, ...]) -> str:
  """timm_key with mmseg's v1c stem names: ('params', 'bn1', 'scale') -> 'stem.7.weight'."""
  return timm_key(path[:1] + (V1C_STEM.get(path[1], path[1]),) + path[2:])


def timm_key(path: tuple[str, ...]) -> str:
  """('params', 'layer1_0', 'conv1', 'kernel') -> 'layer1.0.conv1.weight'."""
  modules = [re.sub(r'_(\d+)', r'.\1', name) for name in path[1:-1]]
  return '.'.join(modules + [LEAF.get(path[-1], path[-1])])


def to_flax_layout(value: np.ndarray, leaf: str) -> np.ndarray:
  if leaf == 'kernel' and value.ndim == 4:
    return value.transpose(2, 3, 1, 0)  # OIHW -> HWIO (depthwise: (C,1,k,k) -> (k,k,1,C))
  if leaf == 'kernel' and value.ndim == 2:
    return value.T  # Linear (out, in) -> Dense (in, out)
  return value


def fill(shapes, state_dict: dict[str, np.ndarray], key_of, layout, label: str,
         unused_ok=lambda key: False) -> dict:
  """Variables shaped as `shapes` from `state_dict`: leaf path -> `key_of(names)` -> tensor
  -> `layout(names, value)`. Missing, mis-shaped and unused keys (other than BN counters
  and `unused_ok` ones) stop it with a message naming them."""
  used, problems = set(), []

  def one(path, target):
    names = tuple(getattr(k, 'key', str(k)) for k in path)
    key = key_of(names)
    if key not in state_dict:
      problems.append(f'missing {key}')
      return None
    used.add(key)
    value = layout(names, np.asarray(state_dict[key], np.float32))
    if value.shape != target.shape:
      problems.append(f'{key} has shape {value.shape} after conversion, '
                      f'the model wants {target.shape}')
      return None
    return value
  variables = jax.tree_util.tree_map_with_path(one, shapes)
  unexpected = sorted(k for k in state_dict if k not in used and not IGNORED.search(k)
                      and not unused_ok(k))
  problems += [f'unexpected {k}' for k in unexpected]
  if problems:
    more = f' (and {len(problems) - 3} more)' if len(problems) > 3 else ''
    raise UserError(f'{label}: the state dict does not fit: {"; ".join(problems[:3])}{more}')
  return variables


def convert(arch: str, state_dict: dict[str, np.ndarray], head: bool = False,
            image_size: int | None = None, **kwargs) -> tuple[nn.Module, dict]:
  """(module, variables) for a timm state dict; `image_size` sets the ViT position grid
  (the checkpoint's is resampled to it)."""
  if image_size is not None and arch.startswith('vit'):
    kwargs['img_size'] = image_size
  num_classes = state_dict[f'{ARCHS[arch][1]}.bias'].shape[0] if (
      head and f'{ARCHS[arch][1]}.bias' in state_dict) else 1000
  module = build(arch, head, num_classes, **kwargs)
  size = image_size or ARCHS[arch][2]
  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0),
                                              jnp.zeros((1, size, size, 3)), train=False))

  def layout(names, value):
    value = to_flax_layout(value, names[-1])
    target = _leaf(shapes, names)
    if names[-1] == 'pos_embed' and value.shape != target.shape:
      side = int(round((target.shape[1] - 1) ** 0.5))
      value = np.asarray(resample_pos_embed(jnp.asarray(value), (side, side)))
    return value
  head_prefix = ARCHS[arch][1] + '.'
  key_of = v1c_key if arch == 'resnet50_v1c' else timm_key
  return module, fill(shapes, state_dict, key_of, layout, arch,
                      lambda k: not head and k.startswith(head_prefix))


def _leaf(tree, names):
  for name in names:
    tree = tree[name]
  return tree


def read_state_dict(path: str) -> dict[str, np.ndarray]:
  """A timm state dict from `.safetensors`, or from `.pth`/`.pt`/`.bin` with
  `torch.load(weights_only=True)` (tensors only: nothing else is unpickled)."""
  if not os.path.isfile(path):
    raise UserError(f'{path}: no such file')
  try:
    if path.endswith('.safetensors'):
      from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
      return load_file(path)
    try:
      import torch  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise UserError(f'{path}: reading a torch file needs torch; convert it to '
                      '.safetensors or `pip install torch`') from e
    sd = torch.load(path, map_location='cpu', weights_only=True)
  except UserError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise UserError(f'{path}: not a readable state dict ({type(e).__name__}: '
                    f'{str(e).splitlines()[0][:200] if str(e) else ""})') from e
  for wrapper in ('state_dict', 'model', 'state_dict_ema'):
    if isinstance(sd, dict) and wrapper in sd and isinstance(sd[wrapper], dict):
      sd = sd[wrapper]
      break
  if not isinstance(sd, dict):
    raise UserError(f'{path}: holds a {type(sd).__name__}, not a state dict')
  return {k.removeprefix('module.'): v.float().numpy() for k, v in sd.items()
          if hasattr(v, 'numpy')}


def load(arch: str, path: str, head: bool = True, **kwargs) -> tuple[nn.Module, dict]:
  """(module, variables) from a timm weight file; the classifier is kept unless head=False."""
  return convert(arch, read_state_dict(path), head=head, **kwargs)
