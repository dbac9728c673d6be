"""The page (app.py): its handler as a function, the page over HTTP with gradio_client, and in headless Chromium."""
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import app
import neural_style
from conftest import ROOT, random_image, save

# The page's settings (Painter.SETTINGS) for a quick run: beta 10^3, 3 iterations at 16 px, seed 0, the rest
# as the page starts.
SETTINGS = dict(style_weight=3.0, iterations=3, max_size=16, optimizer='lbfgs', init='noise', preserve_colors='off',
                seed=0, content_weight=1.0, tv_weight=0.0, pooling='avg', scales='', learning_rate=10.0,
                precision='float32')
# The same run on the command line, written out by hand.
COMMAND = ['--iterations', '3', '--max-size', '16', '--seed', '0']


def settings(**changes):
    values = dict(SETTINGS, **changes)
    return [values[name] for name in app.Painter.SETTINGS]


def read(path):
    with Image.open(path) as image:
        return np.asarray(image.convert('RGB'))


@pytest.fixture(scope='module')
def reference(tmp_path_factory, network_path):
    """A content and a style image, and what neural_style.py writes for them with COMMAND."""
    directory = tmp_path_factory.mktemp('reference')
    content = save(directory / 'photo.png', random_image(18, 24, seed=1))
    style = save(directory / 'painting.png', random_image(20, 20, seed=2))
    output = str(directory / 'out.png')
    assert neural_style.main(['--content', content, '--styles', style, '--network', network_path,
                              '--output', output, '--print-iterations', '0'] + COMMAND) == 0
    return dict(content=content, style=style, network=network_path, output=output, dir=directory)


@pytest.fixture
def painter(tmp_path, network_path):
    return app.Painter(str(tmp_path), network=network_path, refresh_seconds=0)


def test_the_handler_streams_the_run_and_ends_with_what_the_command_line_writes(painter, reference):
    updates = list(painter.paint(reference['content'], [reference['style']], *settings()))
    intermediate = [update for update in updates if isinstance(update.image, np.ndarray)]
    assert [update.status.split()[:2] for update in intermediate] == [['iteration', f'{i}/3'] for i in range(4)]
    assert all(update.image.shape == (12, 16, 3) and update.image.dtype == np.uint8 for update in intermediate)
    assert all(update.plot is not None for update in intermediate)
    final = updates[-1]
    assert final.status.startswith('done: iteration 3/3')
    assert final.image == final.download and os.path.basename(final.download) == app.OUTPUT_NAME
    np.testing.assert_array_equal(read(final.image), read(reference['output']))
    np.testing.assert_array_equal(intermediate[-1].image, read(reference['output']))
    assert final.command == shlex.join(['python', 'neural_style.py', '--content', 'photo.png', '--styles',
                                        'painting.png', '--output', app.OUTPUT_NAME, '--network',
                                        reference['network']] + COMMAND)
    assert len(final.plot.axes[0].get_lines()[0].get_xdata()) == 4  # iterations 0..3


def test_stop_keeps_the_best_image_so_far(painter, reference, tmp_path):
    steps = painter.paint(reference['content'], [reference['style']], *settings())
    for update in steps:
        if isinstance(update.image, np.ndarray):  # iteration 0 shown: Stop
            painter.stop()
            break
    final = list(steps)[-1]
    assert final.status == 'stopped at iteration 1: the best image so far is below'
    # L-BFGS's first iteration is the same in a run of 1 iteration: that run's output is the image kept.
    one = str(tmp_path / 'one.png')
    assert neural_style.main(['--content', reference['content'], '--styles', reference['style'], '--network',
                              reference['network'], '--output', one, '--print-iterations', '0', '--iterations',
                              '1', '--max-size', '16', '--seed', '0']) == 0
    np.testing.assert_array_equal(read(final.download), read(one))


def test_the_command_lines_errors_are_shown_in_one_sentence(painter, reference, tmp_path):
    def status(content, styles, **changes):
        updates = list(painter.paint(content, styles, *settings(**changes)))
        assert updates[-1].image is None and updates[-1].download is None
        return updates[-1].status

    broken = tmp_path / 'broken.png'
    broken.write_text('not an image')
    assert status(str(broken), [reference['style']]).startswith(f'neural_style.py: error: image {broken} could '
                                                                f'not be read: ')
    assert status(reference['content'], [reference['style']], scales='12,x') == \
        'neural_style.py: error: argument --scales: must be an integer, not x'
    assert status(None, [reference['style']]) == 'Give a content image and at least one style image.'
    missing = app.Painter(str(tmp_path), network=str(tmp_path / 'none.mat'))
    message = list(missing.paint(reference['content'], [reference['style']], *settings()))[-1].status
    assert message.startswith('neural_style.py: error: ') and 'none.mat' in message and '\n' not in message
