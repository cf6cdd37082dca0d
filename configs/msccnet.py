"""MSCCNet (Kong et al.): dilated ResNet-50 + MFA + multi-spectral class centers.

Demo (2 CPU cores, from scratch on the embedded demo set):
  python -m fjax.main --config=configs/msccnet.py:demo --workdir=/tmp/msccnet_demo
  ~8-10 min; test AUC 0.736, mIoU 0.502 (all-real map 0.411), IoU 0.335 (all-fake 0.178).
Paper, intra-dataset (FF++ c23 or c40, MSCCNet annotation, ImageNet ResNet-50), with the
released recipe (30 epochs, 1:1 real/fake pairs, released augmentation; `paper,flip_only`:
the paper's flip alone):
  python -m fjax.weights convert --arch resnet50c --input resnet50c.safetensors --output W
  (or --arch resnet50_v1c --input resnet50_v1c-2cccc1ad.pth: the released backbone weights)
  python -m fjax.main --config=configs/msccnet.py:paper --config.init_from=W --workdir=...
  (c40: --config.dataset.name=faceforensics/c40)
  Accelerators (not timed here). Paper table 2, ACC / AUC / F1 / mIoU (F1: `mf1`, the mean
  of both classes' F1): c23 97.21 / 98.94 / 90.71 / 83.29; c40 88.07 / 87.61 / 86.82 / 77.22.
Cross-dataset (train c40, test DEFACTO face swaps):
  python -m fjax.main --config=configs/msccnet.py:paper,c40 --config.init_from=W --workdir=D
  python -m fjax.main --config=configs/msccnet.py:paper,c40 --workdir=D --mode=eval \\
      --config.dataset.name=defacto_faceswap --config.dataset.mask_source=mask --split=test
Cross-manipulation leave-one-out (train on four FF++ c40 methods, test on the fifth):
  python -m fjax.main --config=configs/msccnet.py:paper,c40,holdout=NeuralTextures ...
Ablations (tables 6-8): --config.model.gcn=False, .dct=False, .fuse=add, .groups=1|16,
  .mscc=False (table 6 "+MFA"; with .mfa=False "Base"), .deep_stem=False (7x7 stem).
Released checkpoints (the authors' epoch_best.pth) -> a workdir to evaluate or fine-tune:
  python -m fjax.weights import --model msccnet --input epoch_best.pth --output R
  python -m fjax.main --config=configs/msccnet.py:paper,official --workdir=R --mode=eval
"""
from configs import common

PRESETS = {
    'demo': {
        **common.SBI_TRAINING, 'dataset.mask_source': 'mask',
        'input.image_size': 64, 'batch_size': 16, 'total_steps': 350, 'eval_every': 175,
        'checkpoint_every': 50, 'model.channels': 128, 'schedule.warmup_steps': 10,
        # From scratch (no ImageNet weights here) SGD 0.009 leaves the classifier at
        # chance in 200 steps; the demo uses Adam. The paper preset keeps SGD.
        'optimizer.name': 'adam', 'optimizer.lr': 5e-4, 'optimizer.weight_decay': 0.0,
    },
    # The recipe of the released configs/mscc/mscc_resnet_ff_all.py (WORKSPACE.md, the
    # MSCCNet recipe table): 30 epochs of every fake with its real (1:1), batch 64, poly
    # 0.9 per step to a floor of lr / 100, ImageNet mean/std, the released augmentation
    # (`flip_only`: the paper's flip alone); the test pass uses the final state (their
    # epoch_best.pth is the state of the one evaluation, after the last epoch).
    'paper': {
        'dataset.name': 'faceforensics/c23', 'dataset.mask_source': 'msccnet',
        'input.image_size': 512, 'batch_size': 64, 'epochs': 30,
        'eval_every': 1000, 'checkpoint_every': 1000, 'init_into': 'backbone',
        'best_metric': 'miou', **common.IMAGENET_NORM, 'schedule.end_factor': 0.01,
        'input.balance': 'pair', 'input.augment': 'msccnet',
        # Sec. 4.1: the five methods, up to 20 frames per video; frame-level scores (the
        # released test_segmentor.py scores images, no video step)
        'dataset.methods': common.FF5, 'dataset.frames_train': 20, 'dataset.frames_test': 20,
        'evaluation.video_score': 'mean_faces',
    },
    'flip_only': {'input.augment': ''},
    'c40': {'dataset.name': 'faceforensics/c40'},
    # The released forward pass where the paper preset differs, for weights imported with
    # `python -m fjax.weights import --model msccnet`.
    'official': {'model.official': True},
    'holdout': lambda method: {'dataset.holdout': method},
    'test': common.test_preset(32, **{'model.channels': 32, 'model.depth': 14}),
}

# The planted-cue demo (issue 18): the demo recipe on demo_forgeries/planted.
PRESETS['planted'] = {**PRESETS['demo'], **common.PLANTED}
# The unlimited planted set (issue 28): the same recipe on natural-image crops.
PRESETS['planted_natural'] = {**PRESETS['demo'], **common.PLANTED_NATURAL}


def get_config(arg=None):
  c = common.get_base_config()
  c.model.name = 'msccnet'
  c.model.channels = 512       # C of F_A (MFA output) and F_M
  c.model.groups = 4           # N spectral groups = k^2 DCT bases (u, v) in {0..k-1}^2
  c.model.dct = True
  c.model.gcn = True
  c.model.fuse = 'concat'      # concat | add
  c.model.mfa = True
  c.model.mscc = True          # False with mfa: table 6's "+MFA"; with mfa=False: "Base"
  c.model.deep_stem = True     # ResNet-50 v1c (three 3x3 stem convs), as released
  c.model.official = False     # True: the released forward pass (see the model's Model.official)
  c.model.output_stride = 8
  c.model.depth = 50           # ResNet depth (14: one block per layer, tests only)
  c.model.cls_weight = 1.0
  c.model.seg_weight = 1.0
  c.model.mscc_weight = 1.0
  c.optimizer.update(name='sgd', lr=0.009, momentum=0.9, weight_decay=5e-4)
  c.schedule.update(name='poly', power=0.9)
  c.table_metrics = ('acc', 'auc', 'mf1', 'miou')  # table 2: ACC, AUC, F1 (both classes'
                                                   # mean, the released PixMetric), mIoU
  return common.apply_preset(c, arg, PRESETS)
