"""Backbone parity with timm: random timm weights (with random BatchNorm statistics, so that
eval-mode normalisation is exercised) -> safetensors -> fjax.weights -> same logits and same
intermediate features on the same images, within 1e-4 of the output scale (float32)."""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

from fjax import weights
from fjax.util.errors import UserError
from tests.conftest import error_line, run_cli

# arch -> (input size, {fjax tap: timm module whose output it is}, timm kwargs)
CASES = {
    'vit_small_patch16_224': (224, {}, {}),
    'deit_small_patch16_224': (224, {}, {}),
    'legacy_xception': (99, {'conv2': 'act2', 'block2': 'block2', 'block11': 'block11',
                             'features': 'act4'}, {}),
    'resnet50': (96, {f'layer{i}': f'layer{i}' for i in range(1, 5)}, {}),
    'efficientnet_b4': (97, {'stride2': 'blocks.0', 'stride4': 'blocks.1', 'stride8':
                             'blocks.2', 'stride16': 'blocks.4', 'stride32': 'blocks.6',
                             'features': 'bn2'}, {}),
    'tf_efficientnet_b4': (97, {'stride8': 'blocks.2', 'stride32': 'blocks.6'}, {}),
}


def timm_model(arch: str, seed: int = 0, **kwargs) -> torch.nn.Module:
  torch.manual_seed(seed)
  model = timm.create_model(arch, pretrained=False, **kwargs).eval()
  gen = torch.Generator().manual_seed(seed + 1)
  with torch.no_grad():
    for m in model.modules():
      if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):  # pylint: disable=protected-access
        m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
        m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))
        m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=gen))
        m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
  return model


def run_timm(model, images: np.ndarray, taps: dict[str, str]):
  modules = dict(model.named_modules())
  seen = {}
  hooks = [modules[name].register_forward_hook(
      lambda _m, _i, out, name=name: seen.__setitem__(name, out.clone())) for name in taps.values()]
  with torch.no_grad():
    logits = model(torch.from_numpy(images.transpose(0, 3, 1, 2))).numpy()
  for h in hooks:
    h.remove()
  return logits, {tap: seen[name].numpy().transpose(0, 2, 3, 1) for tap, name in taps.items()}


def assert_close(ours, ref, what):
  ours, ref = np.asarray(ours), np.asarray(ref)
  assert ours.shape == ref.shape, (what, ours.shape, ref.shape)
  err = np.abs(ours - ref).max() / np.abs(ref).max()
  assert err < 1e-4, f'{what}: max |diff| / max |ref| = {err:.2e}'


def save_state_dict(model, path):
  save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)


@pytest.mark.parametrize('arch', sorted(CASES))
def test_parity_with_timm(arch, tmp_path):
  size, taps, kwargs = CASES[arch]
  model = timm_model(arch, **kwargs)
  path = str(tmp_path / f'{arch}.safetensors')
  save_state_dict(model, path)
  images = np.random.default_rng(0).standard_normal((2, size, size, 3)).astype(np.float32)
  ref_logits, ref_taps = run_timm(model, images, taps)
  vit = arch.startswith(('vit', 'deit'))  # position embeddings resampled to `size`
  module, variables = weights.load(arch, path, image_size=size if vit else None)
  out = jax.jit(lambda v, x: module.apply(v, x, train=False))(variables, images)
  assert_close(out['logits'], ref_logits, f'{arch} logits')
  for tap in taps:
    assert_close(out[tap], ref_taps[tap], f'{arch} {tap}')


def test_vit_resampled_position_embedding(tmp_path):
  """A 224 checkpoint run at 160 px: the converter resamples the 14x14 grid to 10x10 as
  timm's `resample_abs_pos_embed` does for a timm model made at 160 px."""
  from timm.layers import resample_abs_pos_embed  # pylint: disable=g-import-not-at-top
  src = timm_model('vit_small_patch16_224')
  path = str(tmp_path / 'vit.safetensors')
  save_state_dict(src, path)
  sd = dict(src.state_dict())
  sd['pos_embed'] = resample_abs_pos_embed(sd['pos_embed'], (10, 10), num_prefix_tokens=1)
  dst = timm.create_model('vit_small_patch16_224', pretrained=False, img_size=160).eval()
  dst.load_state_dict(sd)
  images = np.random.default_rng(1).standard_normal((2, 160, 160, 3)).astype(np.float32)
  ref, _ = run_timm(dst, images, {})
  module, variables = weights.load('vit_small_patch16_224', path, image_size=160)
  assert variables['params']['pos_embed'].shape == (1, 101, 384)
  assert_close(module.apply(variables, images)['logits'], ref, 'vit at 160 px')


def test_resnet_dilated_and_deep_stem(tmp_path):
  """Output stride 8 (layer3/4 dilated 2/4, first blocks keeping the previous dilation as
  timm does) and the v1c deep stem, against timm's own dilated resnet50c."""
  model = timm_model('resnet50c', output_stride=8)
  path = str(tmp_path / 'r50c.safetensors')
  save_state_dict(model, path)
  images = np.random.default_rng(2).standard_normal((1, 64, 64, 3)).astype(np.float32)
  ref_logits, ref = run_timm(model, images, {'layer2': 'layer2', 'layer4': 'layer4'})
  module, variables = weights.load('resnet50c', path, output_stride=8)
  out = module.apply(variables, images)
  assert out['layer4'].shape == (1, 8, 8, 2048)
  assert_close(out['layer2'], ref['layer2'], 'layer2')
  assert_close(out['layer4'], ref['layer4'], 'layer4')
  assert_close(out['logits'], ref_logits, 'logits')


def test_convert_cli_and_init_from(tmp_path):
  """The CLI writes an Orbax checkpoint without the head; refuses mismatched weights."""
  model = timm_model('legacy_xception')
  path = str(tmp_path / 'x.safetensors')
  save_state_dict(model, path)
  out_dir = str(tmp_path / 'xception_imagenet')
  proc = run_cli('fjax.weights', 'convert', '--arch', 'legacy_xception', '--input', path,
                 '--output', out_dir)
  assert 'legacy_xception' in proc.stdout
  from fjax.trainer import checkpoint  # pylint: disable=g-import-not-at-top
  loaded = checkpoint.load_pretrained(out_dir)
  assert 'fc' not in loaded['params']
  np.testing.assert_array_equal(
      loaded['params']['conv1']['kernel'],
      model.state_dict()['conv1.weight'].numpy().transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(loaded['model_state']['batch_stats']['bn1']['var'],
                                model.state_dict()['bn1.running_var'].numpy())
  # A config names it: the Xception baseline's backbone starts from these weights.
  from configs import xception  # pylint: disable=g-import-not-at-top
  from fjax import run as run_lib  # pylint: disable=g-import-not-at-top
  config = xception.get_config('test')
  config.init_from, config.init_into = out_dir, 'backbone'
  st, _ = run_lib.open_run(config).fresh_state()
  # (the test preset computes one middle-flow block, block4: the others are not filled)
  np.testing.assert_array_equal(st['params']['backbone']['block4']['rep_4']['pointwise']['kernel'],
                                loaded['params']['block4']['rep_4']['pointwise']['kernel'])
  np.testing.assert_array_equal(st['model_state']['batch_stats']['backbone']['bn4']['mean'],
                                loaded['model_state']['batch_stats']['bn4']['mean'])
  # AUNet's backbone stops at block11: the same file fills it, the exit flow is left out.
  from configs import aunet  # pylint: disable=g-import-not-at-top
  config = aunet.get_config('test')
  config.init_from, config.init_into = out_dir, 'backbone'
  st, _ = run_lib.open_run(config).fresh_state()
  np.testing.assert_array_equal(st['params']['backbone']['block4']['rep_7']['pointwise']['kernel'],
                                loaded['params']['block4']['rep_7']['pointwise']['kernel'])
  assert 'conv3' not in st['params']['backbone'] and 'block12' not in st['params']['backbone']
  line = error_line(run_cli('fjax.weights', 'convert', '--arch', 'resnet50', '--input', path,
                            '--output', str(tmp_path / 'wrong'), check=False))
  assert line.startswith('error: resnet50: the state dict does not fit:'), line
  assert 'missing layer1.0.bn1.running_mean' in line and 'more)' in line, line
  assert not os.path.exists(tmp_path / 'wrong')


def test_refuses_bad_files(tmp_path):
  junk = tmp_path / 'junk.safetensors'
  junk.write_bytes(b'not a tensor file')
  with pytest.raises(UserError, match='not a readable state dict'):
    weights.read_state_dict(str(junk))
  sd = {k: v.numpy() for k, v in timm_model('resnet50').state_dict().items()}
  sd['layer1.0.conv1.weight'] = sd['layer1.0.conv1.weight'][:, :3]
  sd['extra.weight'] = np.zeros(3, np.float32)
  with pytest.raises(UserError, match=r'layer1\.0\.conv1\.weight has shape .*unexpected '
                     r'extra\.weight'):
    weights.convert('resnet50', sd)


def test_conv_stem_matches_torch_layers():
  """ViT(stem='conv'): the token grid of a 16 px patch embedding, and the stem equals the
  same stack written with torch layers (3x3 stride-2 conv, channel LayerNorm, GELU)."""
  from fjax.models.backbones.vit import ConvStem, ViT  # pylint: disable=g-import-not-at-top
  images = np.random.default_rng(0).standard_normal((2, 64, 64, 3)).astype(np.float32)
  vit = ViT(embed_dim=32, depth=1, num_heads=2, patch_size=16, stem='conv', pos_embed='sincos')
  out = vit.apply(vit.init(jax.random.key(0), images), images)
  assert out['grid'] == (4, 4) and out['tokens'].shape == (2, 17, 32)
  stem = ConvStem(16, 32)
  params = stem.init(jax.random.key(1), images)['params']
  x = torch.from_numpy(images).permute(0, 3, 1, 2)
  with torch.no_grad():
    for i in range(4):
      p = params[f'conv{i}']
      conv = torch.nn.Conv2d(x.shape[1], p['kernel'].shape[-1], 3, stride=2, padding=1)
      conv.weight.copy_(torch.from_numpy(np.asarray(p['kernel'])).permute(3, 2, 0, 1))
      conv.bias.copy_(torch.from_numpy(np.asarray(p['bias'])))
      x = conv(x).permute(0, 2, 3, 1)
      norm = params[f'norm{i}']
      x = torch.nn.functional.layer_norm(x, x.shape[-1:], torch.from_numpy(np.asarray(
          norm['scale'])), torch.from_numpy(np.asarray(norm['bias'])), eps=1e-6)
      x = torch.nn.functional.gelu(x).permute(0, 3, 1, 2)
    proj = params['proj']
    x = torch.einsum('bchw,cd->bhwd', x, torch.from_numpy(np.asarray(proj['kernel'][0, 0])))
    x = x + torch.from_numpy(np.asarray(proj['bias']))
  np.testing.assert_allclose(stem.apply({'params': params}, images), x.numpy(), atol=1e-4)
  with pytest.raises(UserError, match='power-of-two'):
    ConvStem(12, 32).init(jax.random.key(0), images)


@pytest.mark.parametrize('k,strides,padding,dilation', [
    (3, 1, ((1, 1), (1, 1)), 1), (3, 1, ((2, 2), (2, 2)), 2), (5, 2, 'SAME', 1),
    (3, 2, 'SAME', 1), (5, 1, ((2, 2), (2, 2)), 1)])
def test_depthwise_conv_shifts_equal_xla_grouped_conv(k, strides, padding, dilation):
  """Xception's and EfficientNet's kernel shapes, strides, dilations and paddings (odd
  input size: TF 'SAME' pads unevenly), values and both gradients."""
  from fjax.models.layers import depthwise_conv  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(k + strides)
  x = jnp.asarray(rng.normal(size=(2, 11, 9, 6)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(k, k, 1, 6)), jnp.float32)
  def loss(impl):
    return lambda x, w: jnp.sum(jnp.sin(depthwise_conv(x, w, strides, padding, dilation, impl)))
  shifts = depthwise_conv(x, w, strides, padding, dilation, 'shifts')
  np.testing.assert_allclose(shifts, depthwise_conv(x, w, strides, padding, dilation, 'conv'),
                             rtol=1e-5, atol=1e-5)
  for got, want in zip(jax.grad(loss('shifts'), (0, 1))(x, w),
                       jax.grad(loss('conv'), (0, 1))(x, w)):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
  if padding != 'SAME' and strides == 1:  # explicit loops over output pixels
    p = padding[0][0]
    xp = np.pad(np.asarray(x), ((0, 0), (p, p), (p, p), (0, 0)))
    ref = np.zeros(shifts.shape, np.float32)
    for y in range(ref.shape[1]):
      for xx in range(ref.shape[2]):
        for i in range(k):
          for j in range(k):
            ref[:, y, xx] += xp[:, y + dilation * i, xx + dilation * j] * np.asarray(w)[i, j, 0]
    np.testing.assert_allclose(shifts, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('name', ['xception', 'resnet', 'vit'])
def test_remat_blocks_give_the_same_gradients(name):
  """model.remat wraps every backbone block in nn.remat: same parameter names, the same
  gradients (training mode, BatchNorm statistics updated), and a remat in the program.
  (EfficientNet wraps its MBBlocks the same way; its 16 blocks take minutes to trace here.)"""
  from fjax.models.backbones.resnet import ResNet  # pylint: disable=g-import-not-at-top
  from fjax.models.backbones.vit import ViT  # pylint: disable=g-import-not-at-top
  from fjax.models.backbones.xception import Xception  # pylint: disable=g-import-not-at-top
  make = {'xception': lambda r: Xception(last_block=1, remat=r),
          'resnet': lambda r: ResNet(14, remat=r),
          'vit': lambda r: ViT(embed_dim=32, depth=2, num_heads=2, img_size=32, patch_size=8,
                               remat=r)}[name]
  x = jax.random.normal(jax.random.key(0), (2, 32, 32, 3))
  variables = make(False).init(jax.random.key(1), x)
  params, rest = variables['params'], {k: v for k, v in variables.items() if k != 'params'}

  def loss(p, module):
    out = module.apply({'params': p, **rest}, x, train=True, mutable=list(rest))[0]
    leaves = [v for k, v in out.items() if k not in ('grid',)]
    return sum(jnp.mean(jnp.square(jnp.asarray(v, jnp.float32))) for v in
               jax.tree_util.tree_leaves(leaves))
  assert 'remat' in str(jax.make_jaxpr(jax.grad(loss), static_argnums=1)(params, make(True)))
  plain = jax.jit(jax.grad(loss), static_argnums=1)(params, make(False))
  remat = jax.jit(jax.grad(loss), static_argnums=1)(params, make(True))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(
      a, b, rtol=1e-4, atol=1e-5 * float(np.abs(a).max())), plain, remat)
