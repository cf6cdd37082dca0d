"""Import of the authors' released checkpoints (Detect and Locate, MSCCNet).

`data/released_state_dicts.json` lists every key and shape of the two released models'
state dicts (arch/xcep_fusion.py; models/msccnet as configs/mscc/mscc_resnet_ff_all.py
builds it), read from the authors' modules. Each layout change the converters make is
checked against PyTorch's own layers; the full forward-pass parity (max relative
difference 3e-6 for Detect and Locate at 299 px, 9e-7 for MSCCNet at 512 px) was measured
against the authors' modules outside the repository (WORKSPACE, issue 16).
"""
from __future__ import annotations

import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from configs import msccnet as msccnet_config
from configs import semantic_noise as semantic_noise_config
from fjax import weights
from fjax.util.errors import UserError
from fjax.models import msccnet, semantic_noise
from tests.conftest import error_line, read_metrics, run_cli

with open(os.path.join(os.path.dirname(__file__), 'data', 'released_state_dicts.json')) as f:
  RELEASED = json.load(f)
CONFIGS = {'semantic_noise': semantic_noise_config, 'msccnet': msccnet_config}


def released_dct_filter_by_loops(h, w, channels, k=8):
  """The released MultiSpectralDCTLayer filter written out as its loops (C, h, w)."""
  def basis(pos, freq, n):
    value = math.cos(math.pi * freq * (pos + 0.5) / n) / math.sqrt(n)
    return value if freq == 0 else value * math.sqrt(2)
  out = np.zeros((channels, h, w), np.float32)
  run = channels // (k * k)
  for i, (u, v) in enumerate((u, v) for u in range(k) for v in range(k)):
    for tx in range(h):
      for ty in range(w):
        out[i * run:(i + 1) * run, tx, ty] = basis(tx, u, h) * basis(ty, v, w)
  return out


def random_state_dict(model: str, seed: int = 0) -> dict[str, np.ndarray]:
  rng = np.random.default_rng(seed)
  sd = {k: rng.normal(0, 0.05, shape).astype(np.float32) for k, shape in RELEASED[model].items()}
  for k in sd:
    if k.endswith('running_var'):
      sd[k] = rng.uniform(0.5, 1.5, sd[k].shape).astype(np.float32)
    if k.endswith('num_batches_tracked'):
      sd[k] = np.zeros((), np.float32)
  if model == 'msccnet':
    sd['mscc.frequency.weight'] = released_dct_filter_by_loops(64, 64, 512)
  return sd


def converted(model, sd, preset='paper,official'):
  return weights.from_state_dict(model, sd, CONFIGS[model].get_config(preset))


@pytest.mark.parametrize('model', ['semantic_noise', 'msccnet'])
def test_every_released_tensor_has_one_place(model):
  sd = random_state_dict(model)
  _, variables = converted(model, sd)
  leaves = jax.tree_util.tree_leaves(variables)
  loaded = [k for k in sd if not k.endswith('num_batches_tracked') and 'frequency' not in k]
  assert len(leaves) == len(loaded)
  # The values are the released ones, moved: the multiset of numbers per tensor is kept.
  assert sorted(float(np.abs(x).sum()) for x in leaves) == pytest.approx(
      sorted(float(np.abs(sd[k]).sum()) for k in loaded), rel=1e-6)
  missing = dict(sd)
  missing.pop(next(k for k in sd if k.endswith('.bias')))
  with pytest.raises(UserError, match='missing'):
    converted(model, missing)
  extra = dict(sd, **{'head.weight': np.zeros((2, 2), np.float32)})
  with pytest.raises(UserError, match='unexpected head.weight'):
    converted(model, extra)


def test_msccnet_needs_the_released_model_and_filter():
  sd = random_state_dict('msccnet')
  with pytest.raises(UserError, match='official'):
    converted('msccnet', sd, 'paper')
  bad = dict(sd, **{'mscc.frequency.weight': released_dct_filter_by_loops(32, 32, 512)})
  with pytest.raises(UserError, match='32x32'):
    converted('msccnet', bad)
  np.testing.assert_allclose(msccnet.released_dct_filter(64, 64, 512).transpose(2, 0, 1),
                             sd['mscc.frequency.weight'], atol=1e-6)


def _torch(sd, prefix, layer):
  with torch.no_grad():
    for name, param in layer.named_parameters():
      param.copy_(torch.from_numpy(sd[f'{prefix}.{name}']))
  return layer


def test_detect_and_locate_heads_match_pytorch_layers():
  """seg1 (conv, conv, pool x2, two stride-2 transposed convs) against torch layers with
  the released tensors: index map, flipped transposed kernels, swapped output channels."""
  sd = random_state_dict('semantic_noise', 1)
  _, variables = converted('semantic_noise', sd)
  seq = torch.nn.Sequential(
      torch.nn.Conv2d(64, 64, 3, padding=1), torch.nn.Conv2d(64, 128, 1), torch.nn.MaxPool2d(2),
      torch.nn.Conv2d(128, 128, 3, padding=1), torch.nn.Conv2d(128, 256, 1), torch.nn.MaxPool2d(2),
      torch.nn.ConvTranspose2d(256, 64, 5, 2, 1), torch.nn.ConvTranspose2d(64, 2, 5, 2, 1))
  _torch(sd, 'seg1', seq)
  x = np.random.default_rng(2).normal(size=(1, 64, 147, 147)).astype(np.float32)
  with torch.no_grad():
    ref = seq(torch.from_numpy(x)).numpy()
  got = semantic_noise.TapHead((128, 256), 2).apply(
      {'params': variables['params']['seg1']}, jnp.asarray(x.transpose(0, 2, 3, 1)))
  np.testing.assert_allclose(np.asarray(got)[..., ::-1].transpose(0, 3, 1, 2), ref,
                             rtol=1e-4, atol=1e-4)


def test_detect_and_locate_classifier_reads_features_in_torch_order():
  sd = random_state_dict('semantic_noise', 3)
  _, variables = converted('semantic_noise', sd)
  feats = np.random.default_rng(4).normal(size=(3, 728, 2, 2)).astype(np.float32)
  ref = feats.reshape(3, -1) @ sd['fc.0.weight'].T + sd['fc.0.bias']   # torch: (C, H, W)
  fc0 = variables['params']['fc0']
  got = feats.transpose(0, 2, 3, 1).reshape(3, -1) @ fc0['kernel'] + fc0['bias']
  np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_msccnet_graph_and_group_fusion_match_pytorch_ops():
  sd = random_state_dict('msccnet', 5)
  _, variables = converted('msccnet', sd)
  p = variables['params']['mscc']
  x = np.random.default_rng(6).normal(size=(2, 4, 2, 128)).astype(np.float32)  # [B, N, K, c]
  t = torch.from_numpy(x)
  with torch.no_grad():  # released: conv1 over the nodes, relu(out + x), conv2 (Linear)
    mixed = torch.nn.functional.conv2d(t, torch.from_numpy(sd['mscc.gcn.conv1.weight']))
    ref = torch.relu(mixed + t) @ torch.from_numpy(sd['mscc.gcn.conv2.weight']).T
  got = msccnet.GCN(node_bias=False).apply({'params': p['gcn']}, jnp.asarray(x))
  np.testing.assert_allclose(np.asarray(got), ref.numpy(), rtol=1e-4, atol=1e-4)
  maps = np.random.default_rng(7).normal(size=(2, 4, 2, 9)).astype(np.float32)  # [B, N, K, hw]
  with torch.no_grad():
    ref = torch.nn.functional.conv2d(torch.from_numpy(maps), torch.from_numpy(
        sd['mscc.fuse.weight']), torch.from_numpy(sd['mscc.fuse.bias']))[:, 0]
  dense = p['group_fuse']
  got = np.einsum('bnkp,no->bkp', maps, dense['kernel']) + dense['bias'][0]
  np.testing.assert_allclose(got, ref.numpy(), rtol=1e-5, atol=1e-5)


def test_import_writes_a_workdir_that_eval_and_init_from_accept(data_dir, tmp_path):
  sd = random_state_dict('semantic_noise', 8)
  path = str(tmp_path / 'best.pth')
  torch.save({'module.' + k: torch.from_numpy(v) for k, v in sd.items()}, path)  # DataParallel
  out = str(tmp_path / 'imported')
  preset = 'configs/semantic_noise.py:test,official'
  proc = run_cli('fjax.weights', 'import', '--model=semantic_noise', f'--input={path}',
                 f'--output={out}', '--preset=test,official')
  assert '(step 0)' in proc.stdout
  run_cli('fjax.main', f'--config={preset}', f'--workdir={out}', '--mode=eval',
          '--split=validation', data_dir=data_dir)
  assert read_metrics(out)[-1]['step'] == 0
  # What training with --config.init_from=DIR --config.init_into= starts from (the
  # trainer's fresh state): the imported tensors, e.g. the classifier's first layer.
  from fjax import run as run_lib  # pylint: disable=g-import-not-at-top
  config = semantic_noise_config.get_config('test,official')
  config.init_from, config.init_into = out, ''
  st, _ = run_lib.open_run(config).fresh_state()
  np.testing.assert_array_equal(np.asarray(st['params']['fc1']['kernel']), sd['fc.1.weight'].T)
  again = run_cli('fjax.weights', 'import', '--model=semantic_noise', f'--input={path}',
                  f'--output={out}', check=False)
  assert 'exists' in error_line(again)
  bogus = run_cli('fjax.weights', 'import', '--model=semantic_noise', f'--input={path}',
                  f'--output={tmp_path / "other"}', '--preset=paper,bogus', check=False)
  assert "unknown preset 'bogus'" in error_line(bogus)


def test_v1c_checkpoint_names_load_as_resnet50c():
  """mmseg's resnet50_v1c (`stem.N`) holds resnet50c's tensors under other names."""
  module = weights.build('resnet50c')
  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros((1, 64, 64, 3))))
  rng = np.random.default_rng(9)
  timm_sd = {}
  jax.tree_util.tree_map_with_path(lambda p, s: timm_sd.__setitem__(
      weights.timm_key(tuple(getattr(k, 'key', str(k)) for k in p)),
      rng.normal(size=s.shape).astype(np.float32)), shapes)
  renames = {'conv1.0.': 'stem.0.', 'conv1.1.': 'stem.1.', 'conv1.3.': 'stem.3.',
             'conv1.4.': 'stem.4.', 'conv1.6.': 'stem.6.', 'bn1.': 'stem.7.'}
  v1c_sd = {next((new + k[len(old):] for old, new in renames.items() if k.startswith(old)), k): v
            for k, v in timm_sd.items()}
  assert 'stem.7.running_var' in v1c_sd and 'layer1.0.bn1.weight' in v1c_sd
  _, a = weights.convert('resnet50c', {k: _torch_layout(v) for k, v in timm_sd.items()})
  _, b = weights.convert('resnet50_v1c', {k: _torch_layout(v) for k, v in v1c_sd.items()})
  jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


def _torch_layout(x):
  return x.transpose(3, 2, 0, 1) if x.ndim == 4 else x  # HWIO -> OIHW
