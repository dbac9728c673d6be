"""The command line end to end on tiny images, and its one-line errors."""
import csv
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import neural_style
from conftest import ROOT, random_image

FAST = ['--iterations', '3', '--style-layers', 'relu1_1', 'relu2_1', '--content-layers', 'relu2_2',
        '--device', '/cpu:0', '--seed', '0']


def save(path, array, mode='RGB'):
    Image.fromarray(np.asarray(array, np.uint8)).convert(mode).save(path)
    return str(path)


@pytest.fixture
def files(tmp_path, network_path):
    content = save(tmp_path / 'content.png', random_image(30, 40, seed=1))
    style = save(tmp_path / 'style.jpg', random_image(25, 25, seed=2))
    return dict(content=content, style=style, network=network_path, dir=tmp_path)


def args(files, *extra, output='out.png'):
    return ['--content', files['content'], '--styles', files['style'], '--network', files['network'],
            '--output', str(files['dir'] / output)] + FAST + list(extra)


def fails(argv, capsys):
    """Runs the command line expecting a one-line error; returns that line."""
    try:
        code = neural_style.main(argv)
    except SystemExit as exit:  # argparse
        code = exit.code
    assert code not in (0, None)
    err = capsys.readouterr().err.strip().splitlines()
    assert 'Traceback' not in '\n'.join(err)
    return err[-1]


def test_end_to_end_in_a_subprocess(files):
    csv_path = files['dir'] / 'progress.csv'
    result = subprocess.run([sys.executable, os.path.join(ROOT, 'neural_style.py')] +
                            args(files, '--max-size', '32', '--progress-write', str(csv_path)),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    with Image.open(files['dir'] / 'out.png') as image:
        assert image.size == (32, 24) and image.mode == 'RGB'
    with open(csv_path) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ['iteration', 'content', 'style', 'tv', 'total', 'seconds']
    assert [int(r[0]) for r in rows[1:]] == [0, 1, 2, 3]
    for r in rows[1:]:
        content, style, tv, total = map(float, r[1:5])
        assert total == pytest.approx(content + style + tv, rel=1e-5)
    assert 'wrote' in result.stdout


def test_width_checkpoints_and_adam(files):
    pattern = str(files['dir'] / 'checkpoint_%s.png')
    code = neural_style.main(args(files, '--width', '20', '--optimizer', 'adam', '--checkpoint-output', pattern,
                                  '--checkpoint-iterations', '1', '--init', 'content', '--print-iterations', '1'))
    assert code == 0
    with Image.open(files['dir'] / 'out.png') as image:
        assert image.size == (20, 15)
    assert sorted(os.listdir(files['dir'])) == ['checkpoint_1.png', 'checkpoint_2.png', 'content.png', 'out.png',
                                                'style.jpg']


def test_existing_output_is_kept_without_overwrite(files, capsys):
    output = files['dir'] / 'out.png'
    output.write_bytes(b'precious')
    assert 'exists' in fails(args(files), capsys)
    assert output.read_bytes() == b'precious'
    assert neural_style.main(args(files, '--overwrite', '--max-size', '16')) == 0
    with Image.open(output) as image:
        assert image.size == (16, 12)


@pytest.mark.parametrize('mode', ['L', 'RGBA', 'P', 'CMYK'])
def test_image_modes_become_rgb(tmp_path, mode):
    suffix = '.jpg' if mode == 'CMYK' else '.png'
    path = save(tmp_path / ('image' + suffix), random_image(6, 5, seed=3), mode)
    image = neural_style.read_image(path)
    assert image.shape == (6, 5, 3) and image.dtype == np.float32


def test_sixteen_bit_greyscale_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 65535], [32896, 257]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / 'deep.png')
    image = neural_style.read_image(str(tmp_path / 'deep.png'))
    np.testing.assert_allclose(image[:, :, 0], values / 257.0, atol=1e-4)


def test_output_size():
    assert neural_style.output_size((300, 400, 3), None, 512) == (300, 400)  # never scaled up
    assert neural_style.output_size((600, 1024, 3), None, 512) == (300, 512)
    assert neural_style.output_size((300, 400, 3), 800, 512) == (600, 800)


@pytest.mark.parametrize('extra, expected', [
    (['--style-blend-weights', '1', '2'], '--style-blend-weights has 2 values for 1 style images'),
    (['--style-scales', '1', '2'], '--style-scales has 2 values for 1 style images'),
    (['--style-layer-weights', '1'], '--style-layer-weights has 1 values for 2 style layers'),
    (['--style-blend-weights', '0'], 'must not all be 0'),
    (['--checkpoint-output', 'c.png', '--checkpoint-iterations', '1'], 'has no %s'),
    (['--checkpoint-output', 'c%s.png'], 'go together'),
    (['--device', 'tpu'], 'is not a device name'),
])
def test_option_errors(files, capsys, extra, expected):
    assert expected in fails(args(files, *extra), capsys)


@pytest.mark.parametrize('extra, expected', [
    (['--style-layers', 'relu9_1'], "unknown layer 'relu9_1'"),
    (['--iterations', '0'], 'must be a positive integer'),
    (['--style-weight', '-1'], 'must be 0 or a positive number'),
    (['--learning-rate', '0'], 'must be a positive number'),
    (['--pooling', 'median'], "invalid choice: 'median'"),
])
def test_argument_errors(files, capsys, extra, expected):
    assert expected in fails(args(files, *extra), capsys)


def test_missing_and_unreadable_images(files, capsys):
    missing = args(files)
    missing[1] = str(files['dir'] / 'nope.jpg')
    assert 'does not exist' in fails(missing, capsys)
    (files['dir'] / 'text.jpg').write_text('not an image')
    broken = args(files)
    broken[3] = str(files['dir'] / 'text.jpg')
    assert 'could not be read' in fails(broken, capsys)


def test_unknown_extension_and_missing_directory(files, capsys):
    assert 'cannot write images of type ".xyz"' in fails(args(files, output='out.xyz'), capsys)
    assert 'does not exist' in fails(args(files, output='no/such/dir/out.png'), capsys)


def test_weights_errors_are_one_line(files, capsys):
    missing = args(files)
    missing[5] = str(files['dir'] / 'absent.mat')
    assert 'imagenet-vgg-verydeep-19.mat' in fails(missing, capsys)
    (files['dir'] / 'page.mat').write_text('<html>404</html>')
    html = args(files)
    html[5] = str(files['dir'] / 'page.mat')
    assert 'HTML' in fails(html, capsys)
    assert not (files['dir'] / 'out.png').exists()
