"""The house's import graph, read from the source (import statements and importlib calls
with a constant package prefix, e.g. f'fjax.models.{name}' -> every module there): no
cycles, and each floor imports only floors below it."""
from __future__ import annotations

import ast
import os

from conftest import ROOT

PACKAGES = ('fjax', 'data_builders', 'configs')
# Floors from the ground up: a module may import its own floor and those below.
FLOORS = (('fjax.util', 'configs'), ('fjax.data', 'data_builders'), ('fjax.models',),
          ('fjax.registry', 'fjax.trainer'), ('fjax.run',), ('fjax.cam', 'fjax.inference'))


def modules() -> dict[str, str]:
  out = {}
  for package in PACKAGES:
    for folder, _, names in os.walk(os.path.join(ROOT, package)):
      for name in names:
        if name.endswith('.py'):
          rel = os.path.relpath(os.path.join(folder, name), ROOT)[:-3].replace(os.sep, '.')
          out[rel.removesuffix('.__init__')] = os.path.join(folder, name)
  return out


def graph() -> dict[str, set[str]]:
  """module -> the project modules it imports (a package import counts as its
  __init__; `from package import module` as that module)."""
  mods = modules()
  edges = {m: set() for m in mods}
  for mod, path in mods.items():
    with open(path) as f:
      tree = ast.parse(f.read())
    for node in ast.walk(tree):
      targets = []
      if isinstance(node, ast.Import):
        targets = [a.name for a in node.names]
      elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        targets = [f'{node.module}.{a.name}' if f'{node.module}.{a.name}' in mods
                   else node.module for a in node.names]
      elif (isinstance(node, ast.Call) and getattr(node.func, 'attr', '') == 'import_module'
            and node.args):
        arg = node.args[0]
        if isinstance(arg, ast.JoinedStr) and isinstance(arg.values[0], ast.Constant):
          prefix = arg.values[0].value  # 'fjax.models.' -> each module there
          targets = [m for m in mods if m.startswith(prefix) and '.' not in m[len(prefix):]
                     and not m.endswith('.__main__')]
        elif isinstance(arg, ast.Constant):
          targets = [arg.value]
      edges[mod] |= {t for t in targets if t in mods and t != mod}
  return edges


def _floor(module: str) -> int | None:
  for i, floor in enumerate(FLOORS):
    if any(module == f or module.startswith(f + '.') for f in floor):
      return i
  return None  # the entrances (CLIs, weight import): anything below them


def test_no_import_cycles():
  edges = graph()
  state, stack, cycles = {}, [], []

  def visit(m):
    state[m] = 'open'
    stack.append(m)
    for n in sorted(edges[m]):
      if state.get(n) == 'open':
        cycles.append(stack[stack.index(n):] + [n])
      elif n not in state:
        visit(n)
    stack.pop()
    state[m] = 'done'
  for m in sorted(edges):
    if m not in state:
      visit(m)
  assert not cycles, '\n'.join(' -> '.join(c) for c in cycles)


def test_each_floor_imports_only_floors_below():
  upward = [f'{m} -> {n}' for m, targets in graph().items() for n in targets
            if _floor(m) is not None and (_floor(n) is None or _floor(n) > _floor(m))]
  assert not upward, '\n'.join(sorted(upward))


def test_the_reader_sees_the_importlib_arrows():
  """The graph holds the arrows importlib makes (else the checks above see too little)."""
  edges = graph()
  assert 'fjax.models.focus' in edges['fjax.registry']
  assert 'data_builders.faceforensics' in edges['fjax.data.sources']
  assert 'fjax.data.faces' in edges['data_builders.faceforensics.faceforensics']
