"""Parallel building that writes the same data set as one process.

A builder splits its work into units (one video of a test set; one FF++ real video with
its fakes of every method, which reuse its face detections) and names one method that
does a unit: `work(unit, metadata)` yields (key, example) and records what it found
(faceless frames, annotation counts) in `metadata`, a plain dict, and in the build
report (data_builders.report). `ParallelBuilder.units_generator` runs the units

  * in the building process (num_processes=1),
  * in N local worker processes (`python -m data_builders.build ... --num_processes=N`):
    one pool does the units of every split in order, a few units ahead of the writer
    (so the splits overlap, and memory holds a bounded number of done units),
  * or as an Apache Beam pipeline (`--beam_runner=...`, see data_builders/build.py):
    beam.Create(units) | beam.Map(do the unit) on any runner (DirectRunner over local
    processes, Dataflow, Spark, Flink),

and always through the same function (`run`), which returns the unit's examples, its
metadata and its report counts. The metadata and counts of the units are merged in unit
order into the builder's `info.metadata` and `report.COUNTS` (lists appended, numbers
added), so metadata.json and the report do not depend on how the units ran. The examples
are the same whatever ran them, and TFDS orders them by a hash of their key.

For the record files to be the same bytes, examples are serialized deterministically
(protobuf's `deterministic=True`: the feature map in key order). TFDS's own serialization
writes the map in an order that changes from process to process: two one-process builds
of the same examples gave record files that differ (same examples, same order). Readers
are unaffected (the same proto). On Beam the serialization runs where the units' work
runs (the stages are fused on the DirectRunner: byte-identical, tested); a runner that
serializes in a worker that never imported the builders still writes the same examples,
possibly in other bytes.
"""
from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import json
import multiprocessing
import os
from typing import Any, Callable, Iterable

import tensorflow_datasets as tfds
from tensorflow_datasets.core import example_serializer

from data_builders import report


def _serialize_deterministically(self, example):
  return self.get_tf_example(example).SerializeToString(deterministic=True)


# Every writer TFDS makes (one process, worker processes, Beam workers that import the
# builders) serializes through ExampleSerializer.serialize_example.
example_serializer.ExampleSerializer.serialize_example = _serialize_deterministically


@dataclasses.dataclass
class Done:
  """What one unit produced."""
  examples: list          # [(key, example dict)], in the order the unit yielded them
  metadata: dict          # what the unit adds to info.metadata
  counts: dict            # what it adds to report.COUNTS


def run(work: Callable[[Any, dict], Iterable], unit) -> Done:
  """Does one unit; the one code path of every way of building."""
  metadata = {}
  with report.capture() as counts:
    examples = list(work(unit, metadata))
  return Done(examples, metadata, dict(counts))


def merge_metadata(into: dict, add: dict) -> None:
  """Adds a unit's metadata: dicts merged key by key, lists extended, numbers summed."""
  for key, value in add.items():
    if key not in into:
      into[key] = json.loads(json.dumps(value))  # a deep copy
    elif isinstance(value, dict):
      merge_metadata(into[key], value)
    elif isinstance(value, list):
      into[key].extend(value)
    elif isinstance(value, (int, float)):
      into[key] += value
    else:
      raise ValueError(f'cannot merge metadata {key!r}: {value!r}')


def _merge(builder, done: Done) -> None:
  merge_metadata(builder.info.metadata, done.metadata)
  report.COUNTS.update(done.counts)


# The builder of a local worker process, made once by the pool's initializer.
_WORKER_BUILDER = None


def _init_worker(builder) -> None:
  # The building process's own builder, sent by multiprocessing to the workers it spawns
  # (TFDS builders travel as their constructor arguments); no file is ever read here.
  global _WORKER_BUILDER
  _WORKER_BUILDER = builder


def _run_in_worker(work_name: str, unit) -> Done:
  return run(getattr(_WORKER_BUILDER, work_name), unit)


def _beam_run(indexed_unit, builder, work_name):
  index, unit = indexed_unit
  return index, run(getattr(builder, work_name), unit)


def _write_side(dones: list, path: str) -> None:
  from etils import epath  # pylint: disable=g-import-not-at-top
  epath.Path(path).parent.mkdir(parents=True, exist_ok=True)
  epath.Path(path).write_text(json.dumps(sorted(dones, key=lambda d: d[0])))


class _Scheduler:
  """Units of every split in one queue (in the order the splits are added, which is the
  order TFDS writes them), run by `executor` at most `ahead` units beyond the last one
  whose result was taken."""

  def __init__(self, executor: concurrent.futures.Executor, ahead: int):
    self.executor, self.ahead = executor, ahead
    self.tasks, self.futures, self.taken = [], [], 0

  def add(self, work_name: str, units: list) -> range:
    start = len(self.tasks)
    self.tasks.extend((work_name, u) for u in units)
    return range(start, len(self.tasks))

  def result(self, i: int) -> Done:
    self._submit(max(i + 1, self.taken + self.ahead))
    done = self.futures[i].result()
    self.futures[i] = None  # its examples are the writer's now
    self.taken += 1
    self._submit(self.taken + self.ahead)
    return done

  def _submit(self, n: int) -> None:
    """Submits the tasks up to the n-th."""
    while len(self.futures) < min(len(self.tasks), n):
      self.futures.append(self.executor.submit(_run_in_worker, *self.tasks[len(self.futures)]))


class ParallelBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """A generator-based builder whose splits are lists of units done by one method."""
  # Set by data_builders.build (configure) on the builder that prepares the data set.
  num_processes: int = 1
  beam: bool = False

  def configure(self, num_processes: int = 1, beam: bool = False) -> 'ParallelBuilder':
    if num_processes < 1:
      raise ValueError(f'--num_processes must be at least 1, not {num_processes}')
    self.num_processes, self.beam = num_processes, beam
    return self

  def units_generator(self, split: str, work_name: str, units: list, dl_manager=None):
    """What `_split_generators` returns for `split`: the examples of `units`, each done by
    `getattr(self, work_name)(unit, metadata)`."""
    units = list(units)
    if self.beam:
      return self._beam_transform(split, work_name, units, dl_manager)
    if self.num_processes > 1:
      indices = self._scheduler().add(work_name, units)
      return self._collect(self._scheduler().result(i) for i in indices)
    work = getattr(self, work_name)
    return self._collect(run(work, u) for u in units)

  def _collect(self, dones: Iterable[Done]):
    for done in dones:
      _merge(self, done)
      yield from done.examples

  def _scheduler(self) -> '_Scheduler':
    if getattr(self, '_pool', None) is None:
      # spawn, not fork: a forked copy of the building process would inherit its threads'
      # locks (tqdm, OpenCV's pool); spawned workers import the builders afresh.
      executor = concurrent.futures.ProcessPoolExecutor(
          self.num_processes, mp_context=multiprocessing.get_context('spawn'),
          initializer=_init_worker, initargs=(self,))
      self._pool = _Scheduler(executor, ahead=2 * self.num_processes + 2)
    return self._pool

  def _download_and_prepare(self, dl_manager, download_config):
    self._side_files = {}
    try:
      super()._download_and_prepare(dl_manager, download_config)
    finally:
      if getattr(self, '_pool', None) is not None:
        self._pool.executor.shutdown(cancel_futures=True)
        self._pool = None

  # Apache Beam: the units' metadata and counts go to one JSON file per split beside the
  # downloads (a path every worker and the launching process reach: data_dir), read back
  # and merged in unit order once the pipeline has run.

  def _beam_transform(self, split, work_name, units, dl_manager):
    import apache_beam as beam  # pylint: disable=g-import-not-at-top
    side = os.path.join(os.fspath(dl_manager.download_dir), 'fjax_parallel',
                        f'{self.info.full_name.replace("/", "_")}_{split}.json')
    self._side_files[split] = side
    builder = self

    @beam.ptransform_fn
    def examples(pbegin):
      done = (pbegin
              | 'Units' >> beam.Create(list(enumerate(units)), reshuffle=True)
              | 'Work' >> beam.Map(_beam_run, builder=builder, work_name=work_name))
      _ = (done
           | 'Side' >> beam.Map(lambda d: (d[0], d[1].metadata, d[1].counts))
           | 'AllSides' >> beam.combiners.ToList()
           | 'WriteSides' >> beam.Map(_write_side, path=side))
      return done | 'Examples' >> beam.FlatMap(lambda d: d[1].examples)

    return examples()  # pylint: disable=no-value-for-parameter

  def _process_pipeline_result(self, pipeline_result):
    from etils import epath  # pylint: disable=g-import-not-at-top
    del pipeline_result
    for split in list(self._side_files):  # in the order of _split_generators
      path = epath.Path(self._side_files[split])
      for _, metadata, counts in json.loads(path.read_text()):
        _merge(self, Done([], metadata, collections.Counter(counts)))
      path.unlink()
    if self._side_files and not any(path.parent.iterdir()):
      path.parent.rmdir()
