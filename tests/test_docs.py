"""The docs hold together: every relative link of README.md, WORKSPACE.md and docs/**/*.md
reaches an existing file and, with an #anchor, a heading of that file; the map and the
README stay short; the paper-table rows copied onto the model pages equal docs/tables.md's
list.

Plain Python (no jax): it runs in well under a second.
"""
import glob
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINK = re.compile(r'(?<!!)\[[^\]]*\]\(([^()\s]+)\)')
FENCE = re.compile(r'^\s*(```|~~~)')


def doc_files():
  files = [os.path.join(ROOT, 'README.md'), os.path.join(ROOT, 'WORKSPACE.md')]
  files += sorted(glob.glob(os.path.join(ROOT, 'docs', '**', '*.md'), recursive=True))
  return files


def prose_lines(text):
  """(line number, line) outside fenced code blocks, inline code spans removed."""
  inside = False
  for number, line in enumerate(text.split('\n'), 1):
    if FENCE.match(line):
      inside = not inside
      continue
    if not inside:
      yield number, re.sub(r'`[^`]*`', '', line)


def slug(heading):
  """GitHub's anchor of a heading: lowercase, punctuation dropped except - and _,
  spaces to hyphens (inline code and link markup count as their text)."""
  text = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', heading.strip())
  text = text.replace('`', '').lower()
  text = re.sub(r'[^\w\- ]', '', text)
  return text.replace(' ', '-')


def anchors(path):
  """Every anchor the headings of a markdown file produce (repeats get -1, -2, ...)."""
  seen = {}
  result = set()
  inside = False
  for line in open(path, encoding='utf-8').read().split('\n'):
    if FENCE.match(line):
      inside = not inside
      continue
    match = re.match(r'^#{1,6}\s+(.*?)\s*#*\s*$', line)
    if inside or not match:
      continue
    base = slug(match.group(1))
    count = seen.get(base, 0)
    seen[base] = count + 1
    result.add(base if count == 0 else f'{base}-{count}')
  return result


def broken_links(path):
  """'file:line: target (why)' for each relative link of `path` that does not resolve."""
  problems = []
  text = open(path, encoding='utf-8').read()
  for number, line in prose_lines(text):
    for target in LINK.findall(line):
      if re.match(r'^[a-z][a-z0-9+.-]*:', target):  # http:, https:, mailto: ...
        continue
      file_part, _, anchor = target.partition('#')
      linked = (os.path.normpath(os.path.join(os.path.dirname(path), file_part))
                if file_part else path)
      where = f'{os.path.relpath(path, ROOT)}:{number}: {target}'
      if not os.path.exists(linked):
        problems.append(f'{where} (no such file)')
      elif anchor:
        if not linked.endswith('.md') or anchor not in anchors(linked):
          problems.append(f'{where} (no heading gives #{anchor})')
  return problems


def test_slug_follows_githubs_rule():
  assert slug('Face -> frame -> video') == 'face---frame---video'
  assert slug("FoCus's maps as supervision") == 'focuss-maps-as-supervision'
  assert slug('Changes to DESIGN.md') == 'changes-to-designmd'
  assert slug('Test suite: time and slowest tests') == 'test-suite-time-and-slowest-tests'
  assert slug('`model.dtype` and snake_case') == 'modeldtype-and-snake_case'


def test_every_relative_link_reaches_a_file_and_a_heading():
  files = doc_files()
  assert len(files) > 10
  problems = [p for path in files for p in broken_links(path)]
  assert not problems, '\n'.join(problems)


def test_a_broken_link_is_found(tmp_path):
  (tmp_path / 'b.md').write_text('# Real heading\n\n```\n# not a heading\n```\n')
  page = tmp_path / 'a.md'
  page.write_text('[ok](b.md#real-heading) [code](b.md#not-a-heading) [gone](c.md)\n'
                  '`[in code](c.md)` [web](https://example.com/x)\n'
                  '```\n[in a block](c.md)\n```\n')
  problems = broken_links(str(page))
  assert len(problems) == 2, problems
  assert 'no heading gives #not-a-heading' in problems[0]
  assert 'c.md (no such file)' in problems[1]


@pytest.mark.parametrize('name, limit', [('WORKSPACE.md', 420), ('README.md', 160)])
def test_map_and_readme_stay_short(name, limit):
  with open(os.path.join(ROOT, name), encoding='utf-8') as f:
    lines = f.read().count('\n')
  assert lines <= limit, f'{name} has {lines} lines; move detail into docs/'


def test_model_pages_copy_the_paper_table_rows():
  text = open(os.path.join(ROOT, 'docs', 'tables.md'), encoding='utf-8').read()
  start = text.index('<!-- protocol-commands -->')
  listed = set(text[start:text.index('<!-- /protocol-commands -->')].split('\n'))
  copied = 0
  for path in glob.glob(os.path.join(ROOT, 'docs', 'models', '*.md')):
    for line in open(path, encoding='utf-8').read().split('\n'):
      if line.startswith('| ') and '`python -m fjax.' in line:
        assert line in listed, f'{os.path.relpath(path, ROOT)}: {line[:80]}'
        copied += 1
  assert copied >= 20
