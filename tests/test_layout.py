"""The modules' layout (docs/development.md, Layout): no module over MAX_LINES lines, and no import cycle among
the project's modules, the programs at the top and the package's (data flows one way, from the programs down)."""
import ast
import glob
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = 'styletransfer'
MAX_LINES = 700
# name -> path from the top, of the programs at the top and the package's modules (its __init__.py files hold
# only a docstring); a name is the module's last, unique across the project
PATHS = {os.path.basename(path)[:-3]: os.path.relpath(path, ROOT)
         for path in sorted(glob.glob(os.path.join(ROOT, '*.py')) + glob.glob(os.path.join(ROOT, PACKAGE, '*', '*.py')))
         if not path.endswith('__init__.py')}
MODULES = sorted(PATHS)


def project_imports(module):
    """The project's modules that `module` imports, anywhere in it, by name."""
    with open(os.path.join(ROOT, PATHS[module])) as f:
        tree = ast.parse(f.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split('.')[-1] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module.split('.')[-1]} | {alias.name for alias in node.names}
    return names & set(MODULES) - {module}


def test_module_names_are_unique_and_the_package_holds_only_subpackages_of_modules():
    paths = glob.glob(os.path.join(ROOT, '*.py')) + glob.glob(os.path.join(ROOT, PACKAGE, '**', '*.py'),
                                                              recursive=True)
    modules = [path for path in paths if not path.endswith('__init__.py')]
    assert len(modules) == len(PATHS)  # none deeper than a subpackage, and no two of one name


def test_no_module_is_over_the_line_limit():
    lengths = {}
    for module in MODULES:
        with open(os.path.join(ROOT, PATHS[module])) as f:
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
    rows = re.findall(r'^\| `([\w/]+)\.py` \| .*? \| (.*?) \| (\d+) \|$', table, re.M)
    documented = {os.path.basename(path): (imports, int(count)) for path, imports, count in rows}
    assert [path + '.py' for path, _, _ in rows] == [PATHS[os.path.basename(path)] for path, _, _ in rows]
    actual = {}
    for module in documented:
        with open(os.path.join(ROOT, PATHS[module])) as f:
            actual[module] = (', '.join(sorted(project_imports(module))), sum(1 for _ in f))
    assert documented == actual
    assert [module for module in MODULES if f'`{PATHS[module]}`' not in table] == []
