"""--progress-plot: the curves are the CSV's numbers, the PNG's size, rewritten at checkpoints and when stopped."""
import csv
import os
import subprocess
import sys

import pytest
from PIL import Image

import neural_style
from styletransfer.run import job, progress_plot
from helpers import ROOT, args, fails, image_run, random_image, save


@pytest.fixture
def saved_figures(monkeypatch):
    """Every figure progress_plot.save writes, in order (it still writes them)."""
    figures, save = [], progress_plot.save
    monkeypatch.setattr(progress_plot, 'save', lambda fig, file: (figures.append(fig), save(fig, file)))
    return figures


def read_csv(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return rows


def plotted(fig):
    """label -> (x, y) of the labelled lines, read from the figure object."""
    return {line.get_label(): ([float(x) for x in line.get_xdata()], [float(y) for y in line.get_ydata()])
            for line in fig.axes[0].get_lines() if not line.get_label().startswith('_')}


def dashed_lines(fig):
    return [line.get_xdata()[0] for line in fig.axes[0].get_lines() if line.get_linestyle() == '--']


def test_curves_are_the_csv_numbers_and_the_png_has_its_size(inputs, saved_figures):
    plot, table = inputs['dir'] / 'losses.png', inputs['dir'] / 'losses.csv'
    assert neural_style.main(args(inputs, '--max-size', '24', '--tv-weight', '1e-3', '--progress-write', str(table),
                                  '--progress-plot', str(plot))) == 0
    rows = read_csv(table)
    curves = plotted(saved_figures[-1])
    assert set(curves) == {'content (alpha L_content)', 'style (beta L_style)', 'total variation', 'total'}
    for label, column in [('content (alpha L_content)', 'content'), ('style (beta L_style)', 'style'),
                          ('total variation', 'tv'), ('total', 'total')]:
        assert curves[label] == ([float(r['iteration']) for r in rows], [float(r[column]) for r in rows])
    assert saved_figures[-1].axes[0].get_yscale() == 'log'
    with Image.open(plot) as image:
        assert image.format == 'PNG' and image.size == progress_plot.SIZE == (800, 450)
    assert not [name for name in os.listdir(inputs['dir']) if name.endswith('.tmp')]


def test_stages_are_marked_and_counted_over_the_run(inputs, saved_figures):
    table = inputs['dir'] / 'losses.csv'
    assert neural_style.main(args(inputs, '--scales', '12,20', '--iterations', '2,3', '--tv-weight', '0',
                                  '--progress-write', str(table),
                                  '--progress-plot', str(inputs['dir'] / 'losses.png'))) == 0
    rows = read_csv(table)
    offsets = {'1': 0, '2': 2}  # the iterations before each stage
    fig = saved_figures[-1]
    assert plotted(fig)['total'] == ([float(offsets[r['stage']] + int(r['iteration'])) for r in rows],
                                     [float(r['total']) for r in rows])
    assert 'total variation' not in plotted(fig)  # its weight is 0: nothing to draw on a log scale
    assert dashed_lines(fig) == [2]


def test_rewritten_at_each_checkpoint(inputs, saved_figures):
    assert neural_style.main(args(inputs, '--max-size', '16', '--checkpoint-iterations', '1', '--checkpoint-output',
                                  str(inputs['dir'] / 'c%s.png'), '--progress-plot',
                                  str(inputs['dir'] / 'losses.png'))) == 0
    # checkpoints after iterations 1 and 2 (with iterations 0.. so far), then the end (0..3)
    assert [len(plotted(fig)['total'][0]) for fig in saved_figures] == [2, 3, 4]


def test_written_when_interrupted(inputs, saved_figures):
    plot = inputs['dir'] / 'losses.png'
    run = image_run(args(inputs, '--max-size', '16', '--progress-plot', str(plot)))
    steps = run.steps()
    next(steps), next(steps)
    with pytest.raises(job.Stopped, match='interrupted .* and the plot to .*losses.png'):
        steps.throw(KeyboardInterrupt())
    assert plot.exists() and (inputs['dir'] / 'out.png').exists()
    assert plotted(saved_figures[-1])['total'][0] == [0.0, 1.0]


def test_a_plot_must_be_a_png(inputs, capsys):
    assert 'must name a .png file' in fails(args(inputs, '--progress-plot', str(inputs['dir'] / 'losses.jpg')), capsys)


def test_the_command_line_runs_without_matplotlib(inputs):
    """Without matplotlib, a run works, and --progress-plot says what to install, in one sentence."""
    script = ('import sys; sys.modules["matplotlib"] = None; import neural_style; '
              'sys.exit(neural_style.main(sys.argv[1:]))')
    command = [sys.executable, '-c', script] + args(inputs, '--max-size', '16')
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    result = subprocess.run(command + ['--overwrite', '--progress-plot', str(inputs['dir'] / 'p.png')],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 1
    assert result.stderr.strip() == ('neural_style.py: error: --progress-plot needs matplotlib: '
                                     'python -m pip install -r requirements-app.txt')


def test_reproduce_plots_the_total_of_each_cell(tmp_path, network_path, saved_figures, monkeypatch):
    import reproduce

    content = save(tmp_path / 'content.png', random_image(18, 24, seed=1))
    style = save(tmp_path / 'style.png', random_image(20, 20, seed=2))
    plot, sheet = tmp_path / 'sheet-losses.png', tmp_path / 'sheet.png'
    command = ['content-layer', '--content', content, '--style', style, '--network', network_path, '--output',
               str(sheet), '--max-size', '16', '--iterations', '2', '--device', '/cpu:0', '--progress-plot', str(plot)]
    assert reproduce.main(command) == 0
    expected = {}
    for column, label in enumerate(['content relu2_2', 'content relu4_2'], start=1):
        (table,) = tmp_path.glob(f'sheet-1-{column}-*.csv')
        rows = read_csv(table)
        expected[label] = ([float(r['iteration']) for r in rows], [float(r['total']) for r in rows])
    assert plotted(saved_figures[-1]) == expected
    with Image.open(plot) as image:
        assert image.size == progress_plot.SIZE
    # Run again, every cell reused: the plot comes from the CSVs kept beside them.
    monkeypatch.setattr(neural_style, 'run', lambda *_: pytest.fail('a cell was computed again'))
    assert reproduce.main(command + ['--overwrite']) == 0
    assert plotted(saved_figures[-1]) == expected
