"""Learnable local similarity: Xception Y-net with LLSM and CLAFFM (SPEC 3).

Demo (2 CPU cores, from scratch on the embedded demo set):
  python -m fjax.main --config=configs/local_similarity.py:demo --workdir=/tmp/ls_demo
  python -m fjax.predict --workdir=/tmp/ls_demo --split=test --output=/tmp/ls_pred  # fig. 5
  ~4 min; test AUC 0.786, IoU 0.356 (all-fake map 0.178), mIoU 0.530 (all-real 0.411).
Paper (FF++ c23, 224 px, ImageNet Xception converted with fjax.weights):
  python -m fjax.main --config=configs/local_similarity.py:paper --config.init_from=W --workdir=...
  Accelerators (not timed here). Paper: AUC 98.54 on FF++ c23, 80.56 on Celeb-DF, 96.01 on DFD.
"""
from configs import common

PRESETS = {
    'demo': {
        'input.image_size': 64, 'batch_size': 16, 'total_steps': 200, 'eval_every': 100,
        'checkpoint_every': 50, 'optimizer.lr': 5e-4, 'schedule.warmup_steps': 10,
        **common.SBI_TRAINING, 'model.llsm_tap': 'block2',
    },
    'paper': {
        'dataset.name': 'faceforensics/c23', 'input.image_size': 224, 'batch_size': 32,
        'total_steps': 20_000, 'eval_every': 1000, 'checkpoint_every': 1000,
        'init_into': 'backbone', **common.INCEPTION_NORM,  # legacy_xception's statistics
        'dataset.methods': common.FF4,  # sec. IV-A; frames per video and level not stated
        # Sec. I: "does not rely on data augmentation"; sec. IV-A: Adam 1e-4, batch 32, 200
        # iterations an epoch, the number of epochs not given (20,000 steps: 100 of them)
        'input.hflip': False,
    },
    'c40': {'dataset.name': 'faceforensics/c40'},
    # Table III: trained on one method's fakes (and the reals), tested on each method.
    'train_on': lambda method: {'dataset.train_method': method},
    'test': common.test_preset(32, **{'model.llsm_tap': 'block2', **common.TEST_XCEPTION}),
}

# The planted-cue demo (issue 18): the demo recipe on demo_forgeries/planted.
PRESETS['planted'] = {**PRESETS['demo'], **common.PLANTED}
# The unlimited planted set (issue 28): the same recipe on natural-image crops.
PRESETS['planted_natural'] = {**PRESETS['demo'], **common.PLANTED_NATURAL}


def get_config(arg=None):
  c = common.get_base_config()
  c.model.name = 'local_similarity'
  c.model.llsm_tap = 'block7'  # middle-flow feature (14x14x728 at 224 px)
  c.model.hidden = 64          # hidden width of the pairwise network f
  c.model.claffm = True
  c.model.llsm = True          # table IV: False drops LLSM and L_LS
  c.model.flm = True           # table IV: False drops the decoder (FLM) and L_LOC; the
                               # classifier then pools the encoder (the Xception baseline)
  c.model.alpha = 1.0          # weight of L_LS
  c.model.beta = 1.0           # weight of L_LOC
  c.optimizer.update(name='adam', lr=1e-4)
  c.schedule.update(name='constant')
  c.table_metrics = ('acc', 'auc')  # table II (cross-dataset table III: AUC)
  return common.apply_preset(c, arg, PRESETS)
