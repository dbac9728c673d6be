"""The settings inside every output: written into PNG, JPEG and TIFF files, read back, printed by
--show-settings, and run again by --settings-from."""
import csv
import hashlib
import os
import shlex

import numpy as np
import pytest
from PIL import Image

import neural_style
import vgg
from styletransfer.media import images, video
from helpers import args, clip_args, fails

FIELDS = {'Software': 'neural-style 1.0.0', 'Command': 'python neural_style.py --content "a b.png"',
          'Seed': '7', 'Losses': 'content 1, style 2, total 3; ünïcode'}


@pytest.mark.parametrize('extension', ['.png', '.jpg', '.tif'])
def test_settings_round_trip_through_each_format(tmp_path, extension):
    path = str(tmp_path / f'image{extension}')
    images.write_image(path, np.full((4, 5, 3), 100.0), FIELDS)
    assert images.read_settings(path) == FIELDS
    plain = str(tmp_path / f'plain{extension}')
    images.write_image(plain, np.full((4, 5, 3), 100.0))
    assert images.read_settings(plain) == {}


def test_a_format_without_a_place_for_them_is_written_all_the_same(tmp_path):
    path = str(tmp_path / 'image.bmp')
    images.write_image(path, np.full((4, 5, 3), 100.0), FIELDS)
    assert images.read_settings(path) == {}
    with Image.open(path) as image:
        assert image.size == (5, 4)


def run_without_seed(inputs, output, *extra):
    argv = args(inputs, '--progress-write', str(inputs['dir'] / (output + '.csv')), *extra, output=output)
    del argv[argv.index('--seed'):argv.index('--seed') + 2]
    assert neural_style.main(argv) == 0
    return str(inputs['dir'] / output)


@pytest.mark.parametrize('output', ['out.png', 'out.jpg'])
def test_the_settings_read_back_name_the_run(inputs, capsys, output):
    path = run_without_seed(inputs, output)
    settings = images.read_settings(path)
    with open(inputs['network'], 'rb') as f:
        sha256 = hashlib.sha256(f.read()).hexdigest()
    with open(path + '.csv') as f:
        last = list(csv.DictReader(f))[-1]
    assert settings['Software'] == f'neural-style {neural_style.VERSION}'
    assert settings['Network'] == f'{os.path.abspath(inputs["network"])}, SHA256 {sha256}'
    assert settings['Iterations'] == '3 of 3'
    seed = int(settings['Seed'])  # chosen for the run, which gave none
    assert settings['Losses'].startswith(f'content {float(last["content"]):.6g}, style {float(last["style"]):.6g}, '
                                         f'tv {float(last["tv"]):.6g}, temporal 0, total {float(last["total"]):.6g}')
    words = shlex.split(settings['Command'])
    assert words[:2] == ['python', 'neural_style.py']
    recorded = neural_style.build_parser().parse_args(words[2:])
    assert (recorded.content, recorded.styles, recorded.output) == ([inputs["content"]], [inputs["style"]], path)
    assert recorded.seed == seed and recorded.iterations == [3] and recorded.style_layers == ['relu1_1', 'relu2_1']
    assert recorded.progress_write is None  # what names other files is left out
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit:
        neural_style.main(['--show-settings', path])
    assert exit.value.code == 0
    assert capsys.readouterr().out.splitlines() == [f'{field}: {text}' for field, text in settings.items()]


def test_settings_from_an_image_make_it_again_pixel_for_pixel(inputs):
    first = run_without_seed(inputs, 'first.png', '--style-weight', '300')
    assert neural_style.main(['--settings-from', first, '--output', str(inputs['dir'] / 'again.png')]) == 0
    with Image.open(first) as a, Image.open(inputs['dir'] / 'again.png') as b:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # the options given override the recorded ones
    assert neural_style.main(['--settings-from', first, '--output', str(inputs['dir'] / 'short.png'),
                              '--iterations', '1']) == 0
    short = images.read_settings(str(inputs['dir'] / 'short.png'))
    assert short['Iterations'] == '1 of 1' and short['Seed'] == images.read_settings(first)['Seed']
    assert '--style-weight 300.0' in short['Command']


def test_an_image_without_settings_is_one_sentence(inputs, capsys):
    line = fails(['--settings-from', inputs['content'], '--output', str(inputs['dir'] / 'x.png')], capsys)
    assert line == f'neural_style.py: error: --settings-from {inputs["content"]}: the image holds no command of ' \
                   f'neural_style.py'
    with pytest.raises(SystemExit) as exit:
        neural_style.main(['--show-settings', inputs['content']])
    assert exit.value.code == 1
    assert capsys.readouterr().err.strip() == f'neural_style.py: error: {inputs["content"]} holds no settings of ' \
                                              f'neural_style.py'


def test_a_clips_finished_frames_carry_the_settings(clip):
    assert neural_style.main(clip_args(clip, '--iterations', '2,1', '--frames', '2', output='out.gif')) == 0
    (key,) = os.listdir(clip['dir'] / 'out.gif.frames')
    paths = video.finished_frames(os.path.join(clip['dir'] / 'out.gif.frames', key), 2, 1)
    recorded = [images.read_settings(path) for path in paths]
    assert [settings['Iterations'] for settings in recorded] == ['2 of 2', '1 of 1']
    assert all('--frames 2' in settings['Command'] and settings['Seed'] == '0' for settings in recorded)
    assert vgg.weights_identity(clip['network']) == recorded[0]['Network']
