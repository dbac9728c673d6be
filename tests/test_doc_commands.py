"""Every `python ...` command in README.md and docs/*.md runs as written in a fresh clone: checked statically,
nothing is run.

Commands are read from the code blocks (fenced or indented, backslash continuations joined) and the inline code
of each file, in the order they appear. Each is parsed by the real argument parser of the program it runs, so an
unknown option or a bad value fails, and every path it names is classified: an input must be a file or directory
of the repository (as `git ls-files` lists it) or be written by an earlier command of the same file (an output, a
directory made, the file `vgg.py download` saves into its documented cache); outputs may be anything. A path in
an option this checker does not classify fails too, so that a new option cannot slip through unseen.

Inline code in prose may stand for the reader's own file with a placeholder in capitals (`vgg.py check FILE`),
and may elide with `...`; a code block may not: it is meant to be pasted.
"""
import argparse
import contextlib
import fnmatch
import io
import os
import posixpath
import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass, field

import pytest

import app
import bench
import bench_cluster
import bench_peer
import bench_tiling
import beta_sizes
import control_sheets
import convergence
import gallery
import grain
import layer_balance
import memory_plot
import neural_style
import page_overhead
import page_screenshot
import precision_sheet
import print_sheet
import profile_iteration
import reproduce
import style_weight_sweep
import vgg
import video_bench
from helpers import ROOT
from styletransfer.compute import cluster
from styletransfer.testing import synthetic_vgg

DOCS = ['README.md'] + sorted(f'docs/{name}' for name in os.listdir(os.path.join(ROOT, 'docs')) if name.endswith('.md'))
# Where `vgg.py download` saves, as the docs write it: vgg.cache_dir() and vgg.keras_cache_dir() without
# $XDG_CACHE_HOME and $KERAS_HOME (test_the_documented_caches_are_the_codes checks it).
CACHE = '~/.cache/neural-style'
KERAS_CACHE = '~/.keras/models'
DOWNLOADS = {'matconvnet': (CACHE, vgg.WEIGHTS_FILE), 'keras': (KERAS_CACHE, vgg.KERAS_WEIGHTS_FILE),
             'quantized': (CACHE, vgg.QUANTIZED_FILE)}

# Inputs no command can give, each with the reason; an entry that no longer matches a missing input fails, so
# the list cannot outlive its commands.
NOT_SHIPPED = {
    ('docs/usage.md', 'photo.jpg'): 'the masks beside it are painted over the reader\'s own photograph',
    ('docs/usage.md', 'sky_mask.png'): 'the masks are painted for the reader\'s own photograph; none ships',
    ('docs/usage.md', 'ground_mask.png'): 'the masks are painted for the reader\'s own photograph; none ships',
}

# Roles of the options that name files: 'in' must exist before the command; 'out' is written by it;
# 'image-out' is neural_style.py's output (a directory/, a {content} pattern, a checkpoint's %s); 'prefix' writes
# files whose names start with the value; 'prefix-in' reads PREFIX.json of such a prefix; 'sheet' writes the file
# and its cells beside it (NAME-...); 'download' is vgg.py's --dest (check_python knows what it saves).
# NOT_PATHS: options naming no file whose values may look like paths (/cpu:0, coffee:the_scream.jpg).
NOT_PATHS = {'device', 'devices', 'cluster', 'url', 'pairs', 'pair', 'colors_pair', 'mask_example', 'host'}
PATH_LIKE = re.compile(r'.*(/|\.(png|jpe?g|gif|tiff?|bmp|webp|mp4|mov|mkv|avi|m4v|mat|h5|whl|npz|csv|json|bin)$)',
                       re.I)


@dataclass
class Program:
    build_parser: object
    roles: dict = field(default_factory=dict)  # dest -> role


PROGRAMS = {
    'neural_style.py': Program(neural_style.build_parser, {
        'content': 'in', 'styles': 'in', 'style_masks': 'in', 'initial': 'in', 'network': 'in',
        'settings_from': 'in', 'output': 'image-out', 'progress_write': 'out', 'progress_plot': 'out',
        'checkpoint_output': 'image-out'}),
    'reproduce.py': Program(reproduce.build_parser, {
        'content': 'in', 'style': 'in', 'network': 'in', 'output': 'sheet', 'progress_plot': 'out'}),
    'vgg.py': Program(vgg.build_parser, {'path': 'in', 'dest': 'download'}),
    'app.py': Program(app.build_parser, {'network': 'in'}),
    'styletransfer/compute/cluster.py': Program(cluster.build_parser),
    'styletransfer/testing/synthetic_vgg.py': Program(synthetic_vgg.build_parser, {'path': 'out'}),
    'benchmarks/bench.py': Program(bench.build_parser, {'network': 'in', 'output': 'prefix'}),
    'benchmarks/beta_sizes.py': Program(beta_sizes.build_parser, {'network': 'in', 'out': 'prefix', 'to': 'out'}),
    'benchmarks/bench_cluster.py': Program(bench_cluster.build_parser, {'network': 'in'}),
    'benchmarks/bench_peer.py': Program(bench_peer.build_parser, {
        'peer': 'in', 'network': 'in', 'content': 'in', 'style': 'in'}),
    'benchmarks/bench_tiling.py': Program(bench_tiling.build_parser, {'network': 'in', 'output': 'out'}),
    'benchmarks/control_sheets.py': Program(control_sheets.build_parser, {'network': 'in', 'out': 'prefix'}),
    'benchmarks/convergence.py': Program(convergence.build_parser, {
        'network': 'in', 'out': 'prefix', 'results': 'prefix-in', 'to': 'out'}),
    'benchmarks/gallery.py': Program(gallery.build_parser, {'network': 'in', 'out': 'prefix', 'to': 'out'}),
    'benchmarks/grain.py': Program(grain.build_parser, {'network': 'in', 'out': 'prefix', 'to': 'out'}),
    'benchmarks/layer_balance.py': Program(layer_balance.build_parser, {
        'network': 'in', 'out': 'prefix', 'shares': 'in'}),
    'benchmarks/memory_plot.py': Program(memory_plot.build_parser, {'out': 'out'}),
    'benchmarks/precision_sheet.py': Program(precision_sheet.build_parser, {
        'network': 'in', 'out': 'prefix', 'sheet': 'out'}),
    'benchmarks/page_overhead.py': Program(page_overhead.build_parser),
    'benchmarks/page_screenshot.py': Program(page_screenshot.build_parser, {
        'network': 'in', 'to': 'out', 'content': 'in', 'style': 'in'}),
    'benchmarks/print_sheet.py': Program(print_sheet.build_parser, {
        'network': 'in', 'out': 'prefix', 'content': 'in', 'style': 'in'}),
    'benchmarks/profile_iteration.py': Program(profile_iteration.build_parser, {
        'network': 'in', 'peer': 'in', 'content': 'in', 'style': 'in'}),
    'benchmarks/style_weight_sweep.py': Program(style_weight_sweep.build_parser, {'network': 'in', 'out': 'prefix'}),
    'benchmarks/video_bench.py': Program(video_bench.build_parser, {
        'network': 'in', 'image': 'in', 'style': 'in', 'sheet': 'out', 'gif': 'out', 'out': 'out'}),
}

# The console scripts pyproject.toml installs: the program each runs (test_the_console_scripts_are_pyprojects)
SCRIPTS = {'neural-style': 'neural_style.py', 'neural-style-reproduce': 'reproduce.py', 'neural-style-page': 'app.py',
           'neural-style-cluster': 'styletransfer/compute/cluster.py'}


def tracked_files():
    """The files a fresh clone has: git's list, else (no git) every file under the top directory."""
    try:
        listed = subprocess.run(['git', 'ls-files', '-z'], cwd=ROOT, capture_output=True, check=True).stdout
        return set(listed.decode().split('\0')) - {''}
    except (OSError, subprocess.CalledProcessError):
        return {os.path.relpath(os.path.join(top, name), ROOT).replace(os.sep, '/')
                for top, _, names in os.walk(ROOT) if '.git' not in top.split(os.sep) for name in names}


SHIPPED = tracked_files()
SHIPPED_DIRECTORIES = {posixpath.dirname(path) for path in SHIPPED}
SHIPPED_DIRECTORIES |= {'/'.join(d.split('/')[:i]) for d in SHIPPED_DIRECTORIES for i in range(1, d.count('/') + 1)}


# Reading the commands

# python, or an installed console script with arguments (SCRIPTS)
STARTS_PYTHON = re.compile(r'((/usr/bin/)?time( -v)? )?(python3?\b|neural-style(-[a-z]+)? )')


def commands(text):
    """(line number, line, inline) of every line of its code blocks (backslash continuations joined) and every
    inline code span that starts with python, of a Markdown text, in order."""
    found, prose, lines = [], [], text.split('\n')
    fenced = in_block = False
    previous_blank = True
    for number, line in enumerate(lines, start=1):
        if line.lstrip().startswith('```'):
            fenced = not fenced
            previous_blank = False
            prose.append((number, ''))
            continue
        indented = line.startswith('    ') and (previous_blank or in_block)
        if fenced or (indented and line.strip()):
            in_block = True
            found.append((number, line.strip(), False))
            prose.append((number, ''))
        else:
            in_block = in_block and not line.strip()
            prose.append((number, line))
        previous_blank = not line.strip()
    joined = []
    for number, line, inline in found:
        if joined and joined[-1][1].endswith('\\'):
            joined[-1] = (joined[-1][0], joined[-1][1][:-1].rstrip() + ' ' + line, False)
        else:
            joined.append((number, line, inline))
    # Inline code may run over a line break of its paragraph.
    paragraph = '\n'.join(line for _, line in prose)
    starts = [0]
    for _, line in prose:
        starts.append(starts[-1] + len(line) + 1)
    for match in re.finditer(r'(`+)((?:(?!\n\s*\n).)+?)\1', paragraph, re.S):  # within a paragraph
        number = next(i for i, start in enumerate(starts) if start > match.start())
        joined.append((number, ' '.join(match.group(2).split()), True))
    return sorted((entry for entry in joined if not entry[2] or STARTS_PYTHON.match(entry[1])),
                  key=lambda entry: entry[0])


def simple_commands(line):
    """The shell's simple commands of a line, as word lists: split at &&, ||, | and ;, comments dropped."""
    words = shlex.split(line, comments=True)  # ValueError for an unclosed quote
    parts, part = [], []
    for word in words:
        if word in ('&&', '||', '|', ';'):
            parts.append(part)
            part = []
        else:
            part.append(word)
    parts.append(part)
    for part in parts:
        while part and part[0] in ('(', '{'):
            part.pop(0)
        while part and (re.fullmatch(r'\w+=.*', part[0]) or part[0] in ('/usr/bin/time', 'time', '-v', 'env')):
            part.pop(0)  # an environment setting or a timer before the program
    return [part for part in parts if part]


# The paths

def normal(path):
    return posixpath.normpath(path.rstrip('/') or '/')


def placeholder(word):
    """A reader's own value in a synopsis: FILE, FIGURE.png, IMAGE."""
    return re.fullmatch(r'[A-Z][A-Z_]+(\.\w+)?', posixpath.basename(word)) is not None


class Files:
    """What exists at each point of a file's commands: the repository's files, and what earlier commands wrote
    (names with * for files a command names by a pattern or a prefix)."""

    def __init__(self):
        self.written = {}  # pattern -> the words of the command that wrote it

    def exists(self, path):
        path = normal(path)
        if path in SHIPPED or path in SHIPPED_DIRECTORIES:
            return True
        return any(fnmatch.fnmatchcase(path, pattern) or pattern.startswith(path + '/') for pattern in self.written)

    def writer(self, path):
        path = normal(path)
        return next((words for pattern, words in self.written.items() if fnmatch.fnmatchcase(path, pattern)), None)

    def write(self, pattern, words):
        self.written[normal(pattern)] = words


def image_output(value):
    """The files neural_style.py's --output (or --checkpoint-output) writes, as a pattern: a directory of a
    batch's or a clip's outputs, a pattern of a batch ({content}), a checkpoint's %s."""
    if value.endswith('/') or not posixpath.splitext(value)[1]:
        return normal(value) + '/*'
    return re.sub(r'\{\w+\}|%s', '*', value)


# Checking a command

def parse(program, argv):
    """The namespace, or the parser's own message for arguments it refuses."""
    parser = program.build_parser()
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            return parser.parse_args(argv), None
    except SystemExit as stop:
        if stop.code in (0, None):  # --help
            return None, None
        return None, (stderr.getvalue().strip().splitlines() or ['refused'])[-1]


def check_python(words, files, inline):
    """The problems of one `python ...` command (words after `python`), and what it writes into `files`."""
    if not words:
        return ['python without a program']
    if words[0] == '-c':
        return []  # code on the line: nothing to check statically
    if words[0] == '-m':
        return check_module(words[1:], files, inline)
    script, argv = words[0], words[1:]
    program = PROGRAMS.get(normal(script))
    if program is None:
        return [f'{script}: not a program this check knows (add it to PROGRAMS with its parser)']
    if '...' in argv:
        return [] if inline else ['"..." elides the command: write it out in a code block']
    placeholders = [word for word in argv if placeholder(word)]
    if placeholders and not inline:
        return [f'{", ".join(placeholders)}: a placeholder in a code block: name a file that exists']
    problems = []
    if script == 'neural_style.py':
        if '--version' in argv:  # prints and exits before the other options are looked at
            network = argv[argv.index('--network') + 1] if '--network' in argv[:-1] else None
            return [] if network is None or files.exists(network) else [missing(network)]
        if '--show-settings' in argv[:-1]:  # the same: reads that image, prints its settings, exits
            image = argv[argv.index('--show-settings') + 1]
            return [] if files.exists(image) or placeholder(image) else [missing(image)]
        if '--settings-from' in argv[:-1]:  # the recorded command comes first, as with_recorded_settings does
            image = argv[argv.index('--settings-from') + 1]
            recorded = files.writer(image)
            if recorded is None:
                return [missing(image)]
            argv = recorded + argv
    args, refused = parse(program, argv)
    if refused:
        return [f'{script} refuses it: {refused}']
    if args is None:
        return []
    for dest, value in vars(args).items():
        values = value if isinstance(value, list) else [value]
        values = [v for v in values if isinstance(v, str)]
        given = [v for v in values if v in argv or any(word.endswith('=' + v) for word in argv)]
        role = program.roles.get(dest)
        if role is None:
            unknown = [v for v in given if dest not in NOT_PATHS and PATH_LIKE.match(v) and not placeholder(v)]
            if unknown:
                problems.append(f'{", ".join(unknown)}: a path in --{dest.replace("_", "-")}, which this check '
                                f'does not classify (add a role for it)')
            continue
        for v in given:
            if placeholder(v):
                continue
            if role == 'in' and not files.exists(v):
                problems.append(missing(v))
            elif role == 'prefix-in' and not files.exists(v + '.json'):
                problems.append(missing(v + '.json'))
    for dest, role in program.roles.items():  # outputs, once every input was checked
        value = getattr(args, dest, None)
        for v in (value if isinstance(value, list) else [value]):
            if not isinstance(v, str) or placeholder(v):
                continue
            if role == 'out':
                files.write(v, argv)
            elif role == 'image-out':
                files.write(image_output(v), argv)
            elif role == 'prefix':
                files.write(v + '*', argv)
            elif role == 'sheet':
                files.write(v, argv)
                files.write(posixpath.splitext(v)[0] + '-*', argv)
    if script == 'vgg.py' and args.command == 'download':
        directory, name = DOWNLOADS[args.source]
        files.write(posixpath.join(args.dest or directory, name), argv)
    return problems


def check_module(words, files, inline):
    if not words:
        return ['python -m without a module']
    module, argv = words[0], words[1:]
    if module == 'pip':
        needed = [argv[i + 1] for i, word in enumerate(argv[:-1]) if word in ('-r', '-c', '--requirement',
                                                                               '--constraint')]
        return [missing(path) for path in needed if not files.exists(path)]
    if module == 'pytest':
        return [missing(path) for path in argv if not path.startswith('-') and not files.exists(path.split('::')[0])]
    if module == 'venv':
        for path in argv:
            if not path.startswith('-'):
                files.write(path, words)
        return []
    path = module.replace('.', '/') + '.py'
    if path in PROGRAMS:
        return check_python([path] + argv, files, inline)
    return [f'python -m {module}: not a module this check knows']


def check_shell(words, files):
    """The few other commands the docs use to make inputs: mkdir, cp and git clone."""
    if words[0] == 'mkdir':
        for path in words[1:]:
            if not path.startswith('-'):
                files.write(path, words)
    elif words[0] == 'cp':
        paths = [word for word in words[1:] if not word.startswith('-')]
        *sources, target = paths
        problems = [missing(path) for path in sources if not files.exists(path)]
        into = target.endswith('/') or len(sources) > 1 or files.exists(target)
        for path in sources:
            files.write(posixpath.join(target, posixpath.basename(normal(path))) if into else target, words)
        return problems
    elif words[:2] == ['git', 'clone']:
        paths = [word for word in words[2:] if not word.startswith('-')]
        files.write(paths[1] if len(paths) > 1 else posixpath.basename(paths[0]).removesuffix('.git'), words)
    return []


def missing(path):
    return f'{path}: neither in the repository nor written by an earlier command of this file'


def check_text(name, text):
    """Every problem of the commands of one Markdown text, as 'name:line: command: problem'."""
    files, problems = Files(), []
    for number, line, inline in commands(text):
        try:
            lines = simple_commands(line)
        except ValueError as error:  # a sample of output with an apostrophe, say; a command must be readable
            if re.match(r'(python3?|mkdir|cp|git) ', line):
                problems.append(f'{name}:{number}: {line}: the shell cannot read it ({error})')
            continue
        for words in lines:
            if words[0] in ('python', 'python3'):
                found = check_python(words[1:], files, inline)
            elif words[0] in SCRIPTS:
                found = check_python([SCRIPTS[words[0]]] + words[1:], files, inline)
            else:
                found = check_shell(words, files)
            problems += [f'{name}:{number}: {shlex.join(words)}: {problem}' for problem in found]
    return problems


def excused(problem):
    return next((key for key in NOT_SHIPPED if problem.startswith(key[0] + ':') and
                 f': {key[1]}: neither in the repository' in problem), None)


def test_every_documented_command_runs_as_written_in_a_fresh_clone():
    problems = []
    for name in DOCS:
        with open(os.path.join(ROOT, name), encoding='utf-8') as f:
            problems += check_text(name, f.read())
    used = {excused(problem) for problem in problems} - {None}
    unexcused = [problem for problem in problems if excused(problem) is None]
    assert not unexcused, f'{len(unexcused)} commands do not run as written:\n' + '\n'.join(unexcused)
    assert used == set(NOT_SHIPPED), f'entries of NOT_SHIPPED that match no command: {set(NOT_SHIPPED) - used}'


def test_the_docs_hold_commands():
    # A reader that found no code would pass everything.
    counts = {name: len(commands(open(os.path.join(ROOT, name), encoding='utf-8').read())) for name in DOCS}
    assert counts['README.md'] >= 8 and counts['docs/performance.md'] >= 10 and counts['docs/video.md'] >= 8, counts


def test_the_documented_caches_are_the_codes(monkeypatch):
    monkeypatch.delenv('XDG_CACHE_HOME', raising=False)
    monkeypatch.delenv('KERAS_HOME', raising=False)
    assert vgg.cache_dir() == os.path.expanduser(CACHE)
    assert vgg.keras_cache_dir() == os.path.expanduser(KERAS_CACHE)
    for source in vgg.sources():
        directory, name = next(DOWNLOADS[key] for key in DOWNLOADS if vgg.sources([key])[0] == source)
        assert source.path == os.path.join(os.path.expanduser(directory), name)


def test_every_program_is_known_with_its_parser():
    # Each program's parser builds, and each role names one of its options.
    for script, program in PROGRAMS.items():
        assert os.path.exists(os.path.join(ROOT, script)), script
        parser = program.build_parser()
        dests = {action.dest for action in parser._actions}
        for sub in parser._actions:
            if isinstance(sub, argparse._SubParsersAction):
                dests |= {action.dest for choice in sub.choices.values() for action in choice._actions}
        assert set(program.roles) <= dests, (script, set(program.roles) - dests)



def test_the_console_scripts_are_pyprojects():
    with open(os.path.join(ROOT, 'pyproject.toml'), 'rb') as f:
        scripts = tomllib.load(f)['project']['scripts']
    assert {name: entry.partition(':')[0].replace('.', '/') + '.py' for name, entry in scripts.items()} == SCRIPTS


README_BEFORE = '''
    python neural_style.py --content examples/chelsea.png --styles examples/starry_night.jpg --output /tmp/r1.png \\
        --network /tmp/vgg19q.mat --max-size 256 --iterations 150 --seed 1 --style-weight 1e3
'''
CAT = 'python neural_style.py --content examples/chelsea.png --styles examples/starry_night.jpg'
WHEEL = f'{CACHE}/{vgg.QUANTIZED_FILE}'


@pytest.mark.parametrize('text, problem', [
    (README_BEFORE, '/tmp/vgg19q.mat: neither in the repository nor written by an earlier command'),
    (f'    {CAT} --output o.png --style-masks no-such-mask.png\n', 'no-such-mask.png: neither in the repository'),
    (f'    {CAT} --output o.png --no-such-option\n', 'unrecognized arguments: --no-such-option'),
    (f'    {CAT} --output o.png --optimizer sgd\n', "invalid choice: 'sgd'"),
    (f'    {CAT} --output o.png --network {WHEEL}\n    python vgg.py download --source quantized\n',
     f'{WHEEL}: neither in the repository'),
    (f'    python vgg.py download\n    {CAT} --output o.png --network {WHEEL}\n', f'{WHEEL}: neither'),  # another file
    ('    python neural_style.py --show-settings out.png\n', 'out.png: neither in the repository'),
    ('    python neural_style.py --settings-from out.png --output again.png\n', 'out.png: neither'),
    ('    python reproduce.py FIGURE --content examples/chelsea.png --style examples/starry_night.jpg \\\n'
     '        --output FIGURE.png\n', 'a placeholder in a code block'),
    (f'    {CAT} ... --output o.png\n', '"..." elides the command'),
    ('    python benchmarks/convergence.py report c256\n', 'c256.json: neither'),
    ('    python benchmarks/no_such.py --out x\n', 'not a program this check knows'),
    ('    python benchmarks/video_bench.py coherence --image tubingen.jpg\n', 'tubingen.jpg: neither'),
    ('    python -m pip install -r no-such-requirements.txt\n', 'no-such-requirements.txt: neither'),
    ('    python vgg.py check --source quantized weights.whl\n', 'unrecognized arguments: --source'),
    ('    python benchmarks/bench_tiling.py --sizes big.png\n', 'which this check does not classify'),
    ('    cp examples/chelsea.png photos/\n    python neural_style.py --content photos/ --styles paintings/ '
     '--output out/\n', 'paintings/: neither'),
    ('Run `python neural_style.py --content examples/chelsea.png --styles painting.jpg --output o.png`.\n',
     'painting.jpg: neither'),
])
def test_the_check_refuses(text, problem):
    problems = check_text('doc.md', text)
    assert any(problem in found for found in problems), problems


@pytest.mark.parametrize('text', [
    f'    python vgg.py download --source quantized\n    {CAT} --output o.png --network {WHEEL}\n',
    f'    python vgg.py download --source quantized --dest weights\n    {CAT} --output o.png \\\n'
    f'        --network weights/{vgg.QUANTIZED_FILE}\n',
    f'    {CAT} --output out.png\n    python neural_style.py --show-settings out.png\n'
    '    python neural_style.py --settings-from out.png --output again.png --iterations 2000\n',
    '    mkdir -p photos paintings\n    cp examples/chelsea.png examples/coffee.png photos/\n'
    '    cp examples/starry_night.jpg paintings/\n'
    '    python neural_style.py --content photos/ --styles paintings/ --output out/ --max-size 256\n'
    '    python neural_style.py --show-settings out/chelsea_starry_night.png\n',
    '    python -m styletransfer.testing.synthetic_vgg x.mat\n    python benchmarks/convergence.py run --network x.mat --out c256\n'
    '    python benchmarks/convergence.py report c256\n'
    '    python benchmarks/layer_balance.py --network x.mat --shares c256-chelsea-starry_night-lbfgs-10-1000.png\n',
    'Check a file with `python vgg.py check FILE`; `python neural_style.py ...` as the page shows it.\n',
    f'```\n{CAT} --output o.png\n```\n',
])
def test_the_check_accepts(text):
    assert check_text('doc.md', text) == []
