"""`bench --suite=paper --peer=torch`: the authors' PyTorch model timed on the same device,
batch and image size as the suite's row. fjax holds no copy of the authors' code: their
module is imported from a local checkout of their repository (`--peer_dir`), as the
parity checks did (docs/models/semantic_noise.md).

- Detect and Locate (semantic_noise): ChenqiKONG/Detect_and_Locate's arch/xcep_fusion.py,
  trained as its TRAIN.py does: BCE on the logit + BCE on the three masks + 0.1 x L1 on the
  three noise maps, Adam (lr 2e-4), one optimizer step per batch.
- MSCCNet: the released model is assembled by mmsegmentation from a config file
  (configs/mscc/), a framework fjax does not install: not timed.
- FoCus, local similarity, AUNet: no authors' code is public. The Xception baseline is
  timm's legacy_xception: `python -m fjax.bench --backbones`.
"""
from __future__ import annotations

import importlib
import os
import sys
import time

NOT_TIMED = {
    'msccnet': 'the authors\' MSCCNet is assembled by mmsegmentation (not installed): not timed',
    'focus': 'no authors\' code is public', 'local_similarity': 'no authors\' code is public',
    'aunet': 'no authors\' code is public',
    'xception': 'timm\'s legacy_xception: python -m fjax.bench --backbones',
}


def detect_and_locate(peer_dir: str, batch: int, size: int, dtype: str, steps: int) -> dict:
  """Images/s of the released xcep_fusion model's training step (forward, the released
  loss, backward, Adam), float32 or under bfloat16 autocast."""
  import torch  # pylint: disable=g-import-not-at-top
  path = os.path.join(peer_dir, 'arch', 'xcep_fusion.py')
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path} not found: --peer_dir is a checkout of '
                            'ChenqiKONG/Detect_and_Locate')
  sys.path.insert(0, peer_dir)
  arch = importlib.import_module('arch.xcep_fusion')
  device = 'cuda' if torch.cuda.is_available() else 'cpu'
  model = arch.xception(pretrained=False).to(device).train()
  optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
  bce = torch.nn.BCEWithLogitsLoss()
  g = torch.Generator().manual_seed(0)
  x = torch.randn(batch, 3, size, size, generator=g).to(device)
  with torch.no_grad():
    shapes = [o.shape for o in model(x)]
  label = torch.randint(0, 2, (batch,), generator=g).float().to(device)
  masks = [torch.rand(s, generator=g).round().to(device) for s in shapes[1:4]]
  noises = [torch.randn(s, generator=g).to(device) for s in shapes[4:7]]
  sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)

  def step():
    optimizer.zero_grad()
    with torch.autocast(device, torch.bfloat16, enabled=dtype == 'bfloat16'):
      pred, *maps = model(x)
      loss = bce(pred.squeeze(1).float(), label)
      loss = loss + sum(bce(m.float(), t) for m, t in zip(maps[:3], masks))
      loss = loss + 0.1 * sum(torch.mean(torch.abs(t - n.float()))
                              for n, t in zip(maps[3:], noises))
    loss.backward()
    optimizer.step()
    sync()
  step()  # warm-up
  t0 = time.perf_counter()
  for _ in range(steps):
    step()
  step_s = (time.perf_counter() - t0) / steps
  out = {'torch_step_s': step_s, 'torch_images_per_s': batch / step_s,
         'torch_device': device, 'torch': torch.__version__}
  if device == 'cuda':
    out['torch_peak_gib'] = torch.cuda.max_memory_allocated() / 2 ** 30
  return out


def peer_row(model: str, variant: str, batch: int, size: int, steps: int,
             peer_dir: str) -> dict:
  row = {'model': model, 'variant': f'{variant} (authors\' torch)'}
  if model != 'semantic_noise':
    return {**row, 'error': NOT_TIMED[model]}
  if '+remat' in variant:
    return {**row, 'error': 'the authors\' model has no remat'}
  if size != 299:  # its fc's input width (728 x 4) is that of 299 px faces' features
    return {**row, 'error': f'the authors\' model runs at 299 px only, not {size}'}
  return {**row, **detect_and_locate(peer_dir, batch, size, variant, steps)}
