"""FoCus's evaluation model: EfficientNet-B4 + FPN trained with a chosen map source, to
compare manipulation maps by the detector they supervise (tables I-II).

One run per map source, then the table (any prepared data set; FF++ c23 in the paper):
  for s in focus ssim diff diff@0.1 none; do
    python -m fjax.main --config=configs/focus_eval.py:paper,maps=$s \\
        --config.dataset.focus_maps=MAPS --workdir=runs/eval_$s; done
  python -m fjax.compare_maps runs/eval_*        # AUC / ACC per map source
  Paper's table I (FF++ HQ ACC / AUC): SSIM 94.34 / 98.39, pixel-wise 94.64 / 98.35,
  pixel-wise@0.1 94.69 / 98.75, FoCus 96.43 / 99.15.
Demo (EfficientNet-B0, 64 px, 2 CPU cores, ~4 min a source):
  --config=configs/focus_eval.py:demo,maps=ssim
  Every source lands at chance on the demo set (AUC 0.46-0.55, WORKSPACE.md).
"""
from configs import common


def maps(source: str) -> dict:
  """mask_source for the dense head; 'none' trains the classifier alone."""
  if source == 'none':
    return {'model.no_map': True, 'dataset.mask_source': 'mask'}
  return {'dataset.mask_source': source}


PRESETS = {
    'demo': {
        'input.image_size': 64, 'batch_size': 16, 'total_steps': 200, 'eval_every': 100,
        'checkpoint_every': 50, 'optimizer.lr': 1e-3, 'schedule.warmup_steps': 10,
        'model.variant': 'b0',
    },
    'paper': {
        'dataset.name': 'faceforensics/c23', 'input.image_size': 320, 'batch_size': 32,
        'total_steps': 20_000, 'eval_every': 1000, 'checkpoint_every': 1000,
        'init_into': 'backbone', **common.IMAGENET_NORM,  # timm's EfficientNet-B4 weights
        **common.FOCUS_PROTOCOL,
        # The paper gives no recipe for this model: length, batch and optimiser chosen,
        # no augmentation named (docs/training.md, recipes)
        'input.hflip': False,
    },
    'c40': {'dataset.name': 'faceforensics/c40'},
    'maps': maps,
    # One block per EfficientNet stage (7 of B0's 16): the tests' graph and compile time
    'test': common.test_preset(32, **{'model.variant': 'b0', 'model.fpn_width': 16,
                                      'model.max_repeats': 1}),
}


def get_config(arg=None):
  c = common.get_base_config()
  c.model.name = 'focus_eval'
  c.model.variant = 'b4'       # EfficientNet-B4 (b0 for the demo)
  c.model.fpn_width = 128
  c.model.max_repeats = 0      # blocks per stage capped (0: the variant's; tests: 1)
  c.model.map_weight = 0.1     # CE + 0.1 BCE
  c.model.no_map = False       # True: the "none" row (classification only)
  c.optimizer.update(name='adam', lr=1e-4)
  c.schedule.update(name='cosine')
  c.table_metrics = ('acc', 'auc')  # table I (frame level; cross-dataset table II: AUC)
  return common.apply_preset(c, arg, PRESETS)
