"""fjax.report: a static HTML page of one run or a comparison of several.

  python -m fjax.report --workdir=DIR [--workdir=DIR2 ...] --output=OUT [--faces=3]
  fjax-report --workdir=DIR --output=OUT           (the console script)

Writes OUT/index.html and the PNGs it shows (open it in any browser; no server, no
script). Every number on it is read from the runs' files:
  - config.json: model, data set, steps, test checkpoint, and the presets of the model's
    config file that the saved config matches (the differences listed);
  - scores/<data set>_<split>.jsonl: ROC curves at frame and video level (the run's
    evaluation.video_score rule) with AUC and EER marked, and the AUC per method,
    recomputed with fjax.trainer.metrics; runs that scored the same data set and split
    share one table and one set of axes, each data set a section of its own;
  - metrics.jsonl: the test record's other metrics, the training loss (and each loss
    term) and the validation metrics against the step;
  - eval_table.json (--mode=eval --datasets=...): the cross-dataset table;
  - robustness.json (--mode=robustness): AUC per perturbation and level;
  - the test checkpoint: a gallery of the --faces most confident correct and most
    confident wrong faces of the test split, each beside its map (the model's own, or
    --cam's) and true mask, with the face's IoU and F1 at 0.5 and the run's localisation
    metrics.
Faceless frames are not in scores files: under evaluation.faceless=half the page's AUC
can differ from metrics.jsonl's on a data set with faceless frames (the table shows both).
"""
