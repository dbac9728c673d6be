"""The modules' layout (docs/development.md, Layout): no module over MAX_LINES lines, and no import cycle among
the project's top-level modules (data flows one way, from the programs down)."""
import ast
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_LINES = 700
MODULES = sorted(name[:-3] for name in os.listdir(ROOT) if name.endswith('.py'))


def project_imports(module):
    """The project's modules that `module` imports, anywhere in it."""
    with open(os.path.join(ROOT, module + '.py')) as f:
        tree = ast.parse(f.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split('.')[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split('.')[0])
    return names & set(MODULES) - {module}


def test_no_module_is_over_the_line_limit():
    lengths = {}
    for module in MODULES:
        with open(os.path.join(ROOT, module + '.py')) as f:
            lengths[module] = sum(1 for _ in f)
    assert {module: n for module, n in lengths.items() if n > MAX_LINES} == {}


def test_no_two_modules_import_each_other_even_through_others():
    graph = {module: project_imports(module) for module in MODULES}
    state, cycles = {}, []

    def visit(module, path):
        state[module] = 'open'
        for imported in sorted(graph[module]):
            if state.get(imported) == 'open':
                cycles.append(path[path.index(imported):] + [imported])
            elif imported not in state:
                visit(imported, path + [imported])
        state[module] = 'done'

    for module in MODULES:
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_layout_table_in_the_development_docs_matches_the_code():
    """docs/development.md, Layout: every module has a row; a module's own row names its imports of the project's
    modules and its lines."""
    with open(os.path.join(ROOT, 'docs', 'development.md')) as f:
        table = f.read().split('## Layout', 1)[1].split('\n\n| module |', 1)[1].split('\n\n', 1)[0]
    rows = re.findall(r'^\| `(\w+)\.py` \| .*? \| (.*?) \| (\d+) \|$', table, re.M)
    documented = {module: (imports, int(count)) for module, imports, count in rows}
    actual = {}
    for module in documented:
        with open(os.path.join(ROOT, module + '.py')) as f:
            actual[module] = (', '.join(sorted(project_imports(module))), sum(1 for _ in f))
    assert documented == actual
    assert [module for module in MODULES if f'`{module}.py`' not in table] == []
