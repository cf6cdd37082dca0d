"""Detect and Locate (Kong et al.): Xception with semantic- and noise-map supervision.

Demo, both stages (2 CPU cores, from scratch on the embedded demo set):
  python -m fjax.main --config=configs/semantic_noise.py:demo,stage1 --workdir=/tmp/dl1
  python -m fjax.main --config=configs/semantic_noise.py:demo,stage2=/tmp/dl1 --workdir=/tmp/dl2
  ~4 min each; stage 2 test AUC 0.754, IoU 0.379 (all-fake map 0.178), mIoU 0.574.
Paper (FF++ c23; c40 adds `,c40`: sigma 10), ImageNet Xception converted with fjax.weights:
  python -m fjax.main --config=configs/semantic_noise.py:paper,stage1 \\
      --config.init_from=W --config.init_into=backbone --workdir=S1
  python -m fjax.main --config=configs/semantic_noise.py:paper,stage2=S1 --workdir=S2
  Accelerators (not timed here). Paper table II, AUC / ACC: HQ 99.77 / 98.40, LQ 87.10 / 84.84.
Five-way head (real + DF, F2F, FS, NT; per-class recall in metrics.jsonl): add `,five_way`.
Ablations: --config.model.noise=False, .semantic=False, .taps=(3,).
Released checkpoints (arch/xcep_fusion.py's state dict) -> a workdir to evaluate or fine-tune:
  python -m fjax.weights import --model semantic_noise --input best.pth --output R
  python -m fjax.main --config=configs/semantic_noise.py:paper,official --workdir=R --mode=eval
"""
from configs import common

STAGE1_MODULES = 'backbone,seg1,seg2,seg3'

PRESETS = {
    'demo': {
        'input.image_size': 64, 'batch_size': 16, 'total_steps': 150, 'eval_every': 75,
        'checkpoint_every': 50, 'optimizer.lr': 5e-4, 'schedule.warmup_steps': 10,
        **common.SBI_TRAINING,
    },
    'paper': {
        **common.DETECT_AND_LOCATE_PROTOCOL,
        'input.image_size': 299, 'batch_size': 32,
        # The noise residual made in the train step (13 ms per face off the host's cores).
        'input.noise_on': 'device',
        # The released TRAIN.py: 10 epochs (each stage here; the paper gives no length),
        # validation every 3000 steps (save_model), the best validation AUC tested.
        'epochs': 10, 'eval_every': 3000, 'checkpoint_every': 3000,
        'test_checkpoint': 'best',
    },
    'c40': {'dataset.name': 'faceforensics/c40_270', 'input.noise_sigma': 10.0},
    # Tables III-IV: detectors of one method (trained and tested on its fakes and the reals).
    'method': lambda name: {'dataset.methods': (name,)},
    # Stage 1 trains the backbone and the semantic heads (L_seg) and nothing else.
    'stage1': {'model.stage': 1, 'train_only': STAGE1_MODULES},
    # Stage 2 trains everything; the backbone and semantic heads start from the stage-1
    # run's newest checkpoint (a workdir), the rest from their initialisation (sec. III-E).
    'stage2': lambda workdir: {'model.stage': 2, 'init_from': workdir, 'init_into': '',
                               'init_only': STAGE1_MODULES},
    # The released forward pass (arch/xcep_fusion.py) where the paper preset differs: for
    # weights imported with `python -m fjax.weights import --model semantic_noise`.
    # the released network: the full Xception (a test preset before it computes fewer
    # middle-flow blocks)
    'official': {'model.official': True, 'model.middle_blocks': 8},
    'five_way': {'model.num_classes': 5, 'input.labels': ('noise', 'method_label')},
    'test': common.test_preset(32, **common.TEST_XCEPTION),
}

# The planted-cue demo (issue 18): the demo recipe on demo_forgeries/planted.
PRESETS['planted'] = {**PRESETS['demo'], **common.PLANTED}
# The unlimited planted set (issue 28): the same recipe on natural-image crops.
PRESETS['planted_natural'] = {**PRESETS['demo'], **common.PLANTED_NATURAL}


def get_config(arg=None):
  c = common.get_base_config()
  c.model.name = 'semantic_noise'
  c.model.num_classes = 1      # 1: real/fake; 5: real + four FF++ methods
  c.model.semantic = True      # semantic (mask) heads
  c.model.noise = True         # noise heads
  c.model.taps = (1, 2, 3)     # conv2, block2, block11 (block11's heads always feed fusion)
  c.model.official = False     # True: attention by seg3's raw logit, as the released code
  c.model.stage = 2            # 1: backbone + semantic heads only; 2: everything
  c.model.noise_weight = 0.1   # lambda1
  c.model.seg_weight = 1.0     # lambda2
  c.input.labels = ('noise',)
  c.input.noise_sigma = 5.0    # 5 for c23, 10 for c40
  c.table_metrics = ('auc', 'acc', 'iou')  # table II; IoU: table VI (localisation)
  c.optimizer.update(name='adam', lr=2e-4, weight_decay=1e-5)
  c.schedule.update(name='constant')
  return common.apply_preset(c, arg, PRESETS)
