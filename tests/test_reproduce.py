"""reproduce.py: the figures' settings, a sheet end to end on tiny images, resuming, and one-line errors."""
import json
import os
import shlex
import signal
import sys

import numpy as np
import pytest
from PIL import Image

import neural_style
import reproduce
import stylize
from helpers import random_image, save, signalled


def test_layers_against_ratio_is_the_papers_grid():
    fig = reproduce.figure('layers-vs-ratio', ['s.jpg'], seed=0)
    assert fig.columns == ['alpha/beta 1e-5', 'alpha/beta 1e-4', 'alpha/beta 1e-3', 'alpha/beta 1e-2']
    assert len(fig.rows) == 5 and len(fig.cells) == 20
    parser = neural_style.build_parser()
    for (row, column), cell in fig.cells.items():
        options = parser.parse_args(['--content', 'c', '--styles', 's', '--output', 'o.png'] + cell.options)
        assert options.style_layers == ['relu1_1', 'relu2_1', 'relu3_1', 'relu4_1', 'relu5_1'][:row + 1]
        assert options.content_layers == ['relu4_2'] and options.content_weight == 1.0
        assert options.content_weight / options.style_weight == pytest.approx(10.0 ** (column - 5))


@pytest.mark.parametrize('name, expected', [
    ('content-layer', [['--content-layers', 'relu2_2'], ['--content-layers', 'relu4_2']]),
    ('init', [['--init', 'content'], ['--init', 'style']] +
     [['--init', 'noise', '--seed', str(seed)] for seed in range(1, 5)]),
    ('style-reconstruction', [['--content-weight', '0', '--style-layers'] + ['relu1_1', 'relu2_1', 'relu3_1',
                                                                            'relu4_1', 'relu5_1'][:k]
                              for k in range(1, 6)]),
])
def test_one_row_figures(name, expected):
    fig = reproduce.figure(name, ['s.jpg'], seed=0)
    options = [fig.cells[0, j].options for j in range(len(fig.columns))]
    assert [o[:len(e)] for o, e in zip(options, expected)] == expected


@pytest.mark.parametrize('name', ['content-layer', 'init', 'styles', 'style-reconstruction'])
def test_style_weight_goes_to_every_computed_cell(name):
    """--style-weight is beta in each cell of the figures that do not set it themselves; without it the cells
    leave it to neural_style.py (which picks its default)."""
    parser = neural_style.build_parser()
    for style_weight, expected in ((1e3, 1e3), (0.1 + 0.2, 0.30000000000000004), (None, None)):
        fig = reproduce.figure(name, ['s.jpg'], seed=0, style_weight=style_weight)
        computed = [cell for cell in fig.cells.values() if cell.shown is None]
        assert computed
        for cell in computed:
            options = parser.parse_args(['--content', 'c', '--styles', 's', '--output', 'o.png'] + cell.options)
            assert options.style_weight == expected


@pytest.mark.parametrize('name', ['layers-vs-ratio', 'content-layer', 'init', 'styles', 'style-reconstruction'])
def test_raw_style_weight_goes_to_every_computed_cell(name):
    parser = neural_style.build_parser()
    for raw in (False, True):
        fig = reproduce.figure(name, ['s.jpg'], seed=0, raw_style_weight=raw)
        for cell in [cell for cell in fig.cells.values() if cell.shown is None]:
            options = parser.parse_args(['--content', 'c', '--styles', 's', '--output', 'o.png'] + cell.options)
            assert options.raw_style_weight is raw


def test_layers_against_ratio_refuses_a_style_weight(inputs, capsys):
    assert reproduce.main(argv(inputs, 'layers-vs-ratio', '--style-weight', '1e3')) == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert 'layers-vs-ratio sets beta in each column' in line and 'Traceback' not in line


@pytest.fixture
def inputs(tmp_path, network_path):
    return dict(content=save(tmp_path / 'content.png', random_image(18, 24, seed=1)),
                first=save(tmp_path / 'first.png', random_image(20, 20, seed=2)),
                second=save(tmp_path / 'second.png', random_image(16, 22, seed=3)),
                network=network_path, sheet=str(tmp_path / 'sheet.png'))


def argv(inputs, figure='styles', *extra, styles=('first',)):
    return [figure, '--content', inputs['content']] + [a for s in styles for a in ('--style', inputs[s])] + [
            '--network', inputs['network'], '--output', inputs['sheet'], '--max-size', '16', '--iterations', '2',
            '--device', '/cpu:0'] + list(extra)


def test_styles_figure_has_a_column_per_style():
    fig = reproduce.figure('styles', ['a/first.jpg', 'b/second.png'], seed=0)
    assert fig.rows == ['style image', 'result'] and fig.columns == ['first.jpg', 'second.png']
    assert [fig.cells[0, j].shown for j in range(2)] == ['a/first.jpg', 'b/second.png']
    assert [fig.cells[1, j].style for j in range(2)] == ['a/first.jpg', 'b/second.png']


def test_sheet_end_to_end_and_resumed(inputs, monkeypatch):
    """The styles figure with one style (one cell to compute, below the style image shown as it is): the
    result is written beside the sheet with its command, shown in the sheet, and reused by a second run."""
    assert reproduce.main(argv(inputs)) == 0
    directory = os.path.dirname(inputs['sheet'])
    cells = sorted(name for name in os.listdir(directory) if name.startswith('sheet-') and name.endswith('.png'))
    assert [name[:10] for name in cells] == ['sheet-2-1-']  # row 1 shows the style image
    for name in cells:
        with Image.open(os.path.join(directory, name)) as image:
            assert image.size == (16, 12)
        with open(os.path.join(directory, name[:-4] + '.json')) as f:
            record = json.load(f)
        command = shlex.split(record['command'])
        assert command[:2] == ['python', 'neural_style.py'] and command[-1] == os.path.join(directory, name)
    with Image.open(inputs['sheet']) as image:  # each result appears in the sheet unchanged, at its size
        sheet = np.asarray(image.convert('RGB'))
    for name in cells:
        with Image.open(os.path.join(directory, name)) as image:
            cell = np.asarray(image)
        windows = np.lib.stride_tricks.sliding_window_view(sheet, cell.shape)
        assert np.all(windows == cell, axis=(-3, -2, -1)).any(), name

    def no_run(*_):
        raise AssertionError('a cell was computed again')

    monkeypatch.setattr(neural_style, 'run', no_run)
    before = {name: os.path.getmtime(os.path.join(directory, name)) for name in cells}
    assert reproduce.main(argv(inputs, 'styles', '--overwrite')) == 0
    assert before == {name: os.path.getmtime(os.path.join(directory, name)) for name in cells}
    # other settings are other cells
    for extra in (['--iterations', '3'], ['--style-weight', '3']):
        with pytest.raises(AssertionError, match='computed again'):
            reproduce.main(argv(inputs, 'styles', '--overwrite', *extra))


@pytest.mark.parametrize('extra, expected', [
    (['unknown-figure'], "invalid choice: 'unknown-figure'"),
    (['init'], 'init uses one style image, not 2'),
])
def test_errors(inputs, capsys, extra, expected):
    arguments = argv(inputs, *extra, styles=('first', 'second'))
    try:
        code = reproduce.main(arguments)
    except SystemExit as exit:
        code = exit.code
    assert code not in (0, None)
    assert expected in capsys.readouterr().err.strip().splitlines()[-1]


def test_existing_sheet_and_missing_files(inputs, capsys, tmp_path):
    with open(inputs['sheet'], 'wb') as f:
        f.write(b'precious')
    for arguments, expected in ((argv(inputs), 'exists'),
                                (argv(dict(inputs, content=str(tmp_path / 'none.png')), 'styles', '--overwrite'),
                                 'does not exist'),
                                (argv(dict(inputs, network=str(tmp_path / 'none.mat')), 'styles', '--overwrite'),
                                 'does not exist')):
        assert reproduce.main(arguments) == 1
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert expected in line and 'Traceback' not in line
    assert open(inputs['sheet'], 'rb').read() == b'precious'


def test_weights_are_found_as_neural_style_finds_them(inputs, monkeypatch):
    """Without --network, the sheet uses $NEURAL_STYLE_NETWORK like neural_style.py, and each cell's recorded
    command names the file found."""
    import vgg
    monkeypatch.setenv(vgg.NETWORK_ENV, inputs['network'])
    command = argv(inputs)
    at = command.index('--network')
    del command[at:at + 2]
    assert reproduce.main(command) == 0
    directory = os.path.dirname(inputs['sheet'])
    (record,) = [name for name in os.listdir(directory) if name.endswith('.json')]
    with open(os.path.join(directory, record)) as f:
        assert f"--network {inputs['network']}" in json.load(f)['command']


# reproduce.py in a subprocess, its cells' optimization slowed down after iteration 2 of the first run.
SLOW_REPRODUCE = r'''
import sys, time
import reproduce, stylize
real_stylize, slowed = stylize.stylize, []
def slow_stylize(*args, **kwargs):
    steps = real_stylize(*args, **kwargs)
    try:
        for progress in steps:
            yield progress
            if progress.iteration == 2 and not slowed:
                slowed.append(True)
                print('iteration 2', flush=True)
                time.sleep(120)
    finally:
        steps.close()
stylize.stylize = slow_stylize
sys.exit(reproduce.main(sys.argv[1:]))
'''


def cell_files(inputs):
    """The cells' images and records (.json) beside the sheet (not the CSVs of their losses)."""
    directory = os.path.dirname(inputs['sheet'])
    return sorted(name for name in os.listdir(directory) if name.startswith('sheet-') and not name.endswith('.csv'))


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM], ids=['SIGINT', 'SIGTERM'])
def test_an_interrupted_cell_is_not_reused(inputs, capsys, signum):
    """Ctrl-C in a cell leaves its best image so far, but the cell is not done: one sentence,
    exit 130, and the same command computes it again instead of putting the partial image in the sheet. SIGTERM
    the same (exit 143); it once killed the process, leaving no image."""
    command = argv(inputs, 'styles', '--iterations', '5')
    code, _, err = signalled([sys.executable, '-c', SLOW_REPRODUCE] + command,
                             lambda line: line.startswith('iteration 2'), signum)
    assert code == 128 + signum, err
    assert 'Traceback' not in err
    assert err.strip().splitlines()[-1] == ('reproduce.py: interrupted; run the same command again to resume from '
                                            'the cells rendered')
    (partial,) = cell_files(inputs)  # the best image so far, without its .json
    assert partial.endswith('.png') and not os.path.exists(inputs['sheet'])
    assert_recomputed_in_full(inputs, command, partial, capsys)


def assert_recomputed_in_full(inputs, command, partial, capsys):
    """The same command computes the cell again, and its image is that of an uninterrupted run."""
    assert reproduce.main(command) == 0
    out = capsys.readouterr().out
    assert 'reusing' not in out and 'starting over' in out
    assert cell_files(inputs) == sorted([partial, partial[:-4] + '.json'])
    directory = os.path.dirname(inputs['sheet'])
    with open(os.path.join(directory, partial[:-4] + '.json')) as f:
        cell_command = shlex.split(json.load(f)['command'])[2:]
    cell_command[cell_command.index('--output') + 1] = os.path.join(directory, 'direct.png')
    assert neural_style.main(cell_command) == 0
    with Image.open(os.path.join(directory, partial)) as cell, \
            Image.open(os.path.join(directory, 'direct.png')) as direct:
        np.testing.assert_array_equal(np.asarray(cell), np.asarray(direct))


def test_a_cell_whose_loss_is_not_finite_is_not_reused(inputs, capsys, monkeypatch):
    """A loss that stops being finite leaves the best image, but not a finished cell."""
    def overflowing(net, content, styles, settings, **options):
        yield stylize.Progress(iteration=0, content=1.0, style=1.0, tv=0.0, total=2.0, seconds=0.0, evaluations=1,
                               best_total=2.0, best_image=np.asarray(content, np.float32))
        raise stylize.NonFiniteLoss('style', float('inf'))

    monkeypatch.setattr(stylize, 'stylize', overflowing)
    command = argv(inputs)
    assert reproduce.main(command) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert 'Traceback' not in '\n'.join(err)
    assert err[-1].startswith('reproduce.py: error: cell 2 (result, first.png) did not finish: the style loss '
                              'became inf at iteration 1')
    assert err[-1].endswith('; the same command computes that cell again')
    (partial,) = cell_files(inputs)
    monkeypatch.undo()
    assert_recomputed_in_full(inputs, command, partial, capsys)
