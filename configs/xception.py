"""Xception binary detector with a small map head: the baseline of every paper here.

Demo (2 CPU cores, ~2 min, from scratch on the embedded demo set):
  python -m fjax.main --config=configs/xception.py:demo --workdir=/tmp/xception_demo
  Test AUC 0.752, IoU 0.327 (all-fake map 0.178), mIoU 0.506 (all-real 0.411).
Paper protocol (FF++ c23, ImageNet init, 299x299; one accelerator, a few hours):
  python -m fjax.weights convert --arch legacy_xception --input X.safetensors --output W
  python -m fjax.main --config=configs/xception.py:paper --config.init_from=W --workdir=...
  Expect about Detect-and-Locate's Xception row (table II), AUC / ACC: HQ 99.71 / 98.04,
  LQ 84.38 / 83.61.
"""
from configs import common


PRESETS = {
    'demo': {
        # SBI protocol: real faces only, half of them self-blended on the fly (balanced).
        **common.SBI_TRAINING,
        'input.image_size': 64, 'batch_size': 16,
        'total_steps': 240, 'eval_every': 120, 'checkpoint_every': 60,
        'optimizer.lr': 5e-4, 'schedule.warmup_steps': 20,
    },
    'paper': {
        'dataset.name': 'faceforensics/c23', 'input.image_size': 299,
        # Detect and Locate's released TRAIN_xcep.py: 10 epochs, validation every 3000
        # steps, its best validation AUC tested (it also skips the first 30,000 steps)
        'batch_size': 32, 'epochs': 10, 'eval_every': 3000, 'checkpoint_every': 3000,
        'test_checkpoint': 'best',
        # TRAIN_xcep.py: Adam 2e-4 with L2 weight decay 1e-5, no schedule (as the paper's
        # sec. IV-A gives for Detect and Locate)
        'optimizer.lr': 2e-4, 'optimizer.weight_decay': 1e-5, 'schedule.name': 'constant',
        'init_into': 'backbone',  # with --config.init_from=<converted legacy_xception>
        **common.INCEPTION_NORM,  # legacy_xception's input statistics
        **common.DETECT_AND_LOCATE_PROTOCOL,  # its numbers are that paper's table II
    },
    'c40': {'dataset.name': 'faceforensics/c40_270'},
    # Tiny settings for the test-suite: seconds per run.
    'test': {
        'input.image_size': 32, 'batch_size': 8, 'eval_batch_size': 8, 'total_steps': 4,
        'eval_every': 4, 'checkpoint_every': 2, 'log_every': 1,
        'dataset.name': 'demo_forgeries/tiny', **common.TEST_XCEPTION,
    },
}

# The planted-cue demo (issue 18): the demo recipe on demo_forgeries/planted.
PRESETS['planted'] = {**PRESETS['demo'], **common.PLANTED}
# The unlimited planted set (issue 28): the same recipe on natural-image crops.
PRESETS['planted_natural'] = {**PRESETS['demo'], **common.PLANTED_NATURAL}


def get_config(arg=None):
  c = common.get_base_config()
  c.model.name = 'xception_baseline'
  c.model.map_weight = 0.1     # weight of the map BCE next to the image BCE
  c.table_metrics = ('auc', 'acc')  # Detect-and-Locate's table II (frame level)
  return common.apply_preset(c, arg, PRESETS)
