"""The command line of fjax.predict (`python -m fjax.predict`, the `fjax-predict` console
script): its flags, `--input a b c`, the progress lines and one-line errors; its --help is
the package's usage text."""
from __future__ import annotations

from absl import flags, logging

from fjax import predict as package
from fjax.predict import scoring, split
from fjax.util import cli
from fjax.util.errors import UserError, fail


def _define_flags():
  flags.DEFINE_string('workdir', None, 'A trained run (its config.json and checkpoints).',
                      required=True)
  flags.DEFINE_multi_string('input', [], 'Images and/or videos: --input a.jpg b.mp4 ... '
                            '(or --input=a.jpg --input=b.mp4).')
  flags.DEFINE_string('split', None, "Instead of --input: faces of this split of the run's "
                      'data set, with their ground truth beside the predictions.')
  flags.DEFINE_integer('limit', 16, 'Faces of --split to draw.')
  flags.DEFINE_string('output', None, 'Where the results go.', required=True)
  flags.DEFINE_integer('frames', 8, 'Frames sampled per video.')
  flags.DEFINE_integer('batch_size', 16, 'Faces per forward pass.')
  flags.DEFINE_bool('overwrite', False, 'Replace the results of an earlier predict in '
                    '--output (only the files it listed).')
  flags.DEFINE_enum('cam', None, ['gradcam', 'scorecam'], 'Draw this class activation map '
                    "of the fake logit (fjax.cam; normalised per face) instead of the model's "
                    'own map.')
  flags.DEFINE_integer('cam_batch', 64, 'Images per Score-CAM forward pass (channels x '
                       'faces).')


def gather_inputs(argv: list[str]) -> list[str]:
  """`--input a b c` (several paths after one flag, as users and the docs write it) ->
  `--input=a --input=b --input=c`: absl reads one value per flag. The paths run up to the
  next argument that starts with '-'."""
  out, i = [argv[0]], 1
  while i < len(argv):
    arg = argv[i]
    i += 1
    if arg == '--':
      out += argv[i - 1:]
      break
    if arg not in ('--input', '-input') and not arg.startswith(('--input=', '-input=')):
      out.append(arg)
      continue
    values = [arg.split('=', 1)[1]] if '=' in arg else []
    while i < len(argv) and not argv[i].startswith('-'):
      values.append(argv[i])
      i += 1
    out += [f'--input={v}' for v in values] if values else [arg]
  return out


def main(argv):
  cli.reject_arguments(argv, 'python -m fjax.predict --workdir=DIR --input PATH... '
                       '--output=OUT')
  args = flags.FLAGS
  logging.set_verbosity(logging.ERROR)
  if bool(args.input) == bool(args.split):
    fail('give either --input PATH... or --split NAME')
  for name in ('frames', 'batch_size', 'limit', 'cam_batch'):
    if getattr(args, name) < 1:
      fail(f'--{name} must be at least 1, not {getattr(args, name)}')
  try:
    if args.split:
      rows = split.predict_split(args.workdir, args.split, args.output, args.limit,
                                 args.overwrite, args.cam, args.cam_batch)
      print(f'{len(rows)} faces of split {args.split} -> {args.output}')
      return
    counts = scoring.predict(args.workdir, args.input, args.output, args.frames,
                             args.batch_size, args.overwrite, on_input=print_input,
                             cam=args.cam, cam_batch=args.cam_batch)
  except UserError as e:
    fail(str(e))
  if counts.get('skipped'):
    print(f'{counts["skipped"]} of {counts["skipped"] + counts["read"]} inputs skipped '
          f'(status in {args.output}/inputs.jsonl)')
  print(f'{counts.get("faces", 0)} faces in {counts.get("rows", 0)} rows -> '
        f'{args.output}/predictions.jsonl')


def print_input(row: dict):
  """One input's line: its fake probability and how the rule made it, or its status."""
  if row['fake_probability'] is None:
    print(f'{row["path"]}: {row["status"]}', flush=True)
  else:
    with_face = row['frames'] - row['faceless_frames']
    how = [] if not row['faces'] else [
        f'mean over {with_face} frames of their highest face score'
        if row['rule'] == 'mean_frame_max' else f'mean of {row["faces"]} faces']
    if row['faceless'] == 'half' and row['faceless_frames']:
      how.append(f'{row["faceless_frames"]} frames without a face at 0.5')
    how = ', '.join(how)
    print(f'{row["path"]}: fake probability {row["fake_probability"]:.4f} ({how})',
          flush=True)


def entry():
  """`python -m fjax.predict` and the `fjax-predict` console script (fjax.util.cli)."""
  _define_flags()
  cli.run(main, package.__doc__, __name__, rewrite=gather_inputs)


if __name__ == '__main__':
  entry()
