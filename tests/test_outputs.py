"""Nothing lost: what the command line writes when a run is stopped at an awkward moment, and what
it refuses before any work so that a finished run is never thrown away."""
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
from PIL import Image

import neural_style
from styletransfer.media import images
from helpers import PATCHED_MAIN, ROOT, args, fails, interrupted, save, stylize_with

def temporaries(directory):
    return [name for name in os.listdir(directory) if name.endswith('.tmp')]


SLOW_TARGETS = '''
real_layer_features = losses.layer_features
def slow_layer_features(*args, **kwargs):
    print('computing the targets', flush=True)
    time.sleep(120)
    return real_layer_features(*args, **kwargs)
losses.layer_features = slow_layer_features
'''


def test_an_interrupt_before_the_first_iteration_leaves_no_csv(inputs):
    """Nothing written means nothing written, and the same command can be run again."""
    csv_path = inputs['dir'] / 'early.csv'
    argv = args(inputs, '--progress-write', str(csv_path))
    code, out, err = interrupted(SLOW_TARGETS, argv, 'computing the targets')
    assert code == 130, err
    assert 'Traceback' not in err
    assert err.strip().splitlines()[-1] == 'neural_style.py: interrupted (SIGINT); nothing written'
    assert sorted(os.listdir(inputs['dir'])) == ['content.png', 'style.jpg']


def test_a_loss_that_overflows_at_once_leaves_no_csv(inputs, capsys):
    argv = args(inputs, '--style-weight', '3e38', '--progress-write', str(inputs['dir'] / 'early.csv'))
    for _ in range(2):  # the same command again meets the same error, not an "exists"
        line = fails(argv, capsys)
        assert 'the style loss became inf at iteration 0' in line and line.endswith('; nothing written')
    assert sorted(os.listdir(inputs['dir'])) == ['content.png', 'style.jpg']


SLOW_WRITE = '''
real_write_image, writes = images.write_image, []
def slow_write_image(path, image, *options):
    writes.append(path)
    if len(writes) == 1:  # the first write only: the one that is interrupted
        print('writing', path, flush=True)
        time.sleep(120)
    real_write_image(path, image, *options)
images.write_image = slow_write_image
'''


def test_an_interrupt_while_the_finished_image_is_written_keeps_it(inputs):
    """After the last iteration, an interrupt still leaves the finished image, and says so."""
    csv_path = inputs['dir'] / 'progress.csv'
    code, out, err = interrupted(SLOW_WRITE, args(inputs, '--progress-write', str(csv_path)), 'writing')
    assert code == 130, err
    assert 'Traceback' not in err
    assert err.strip().splitlines()[-1] == (f'neural_style.py: interrupted (SIGINT) after the last iteration; '
                                             f'wrote the finished image to {inputs["dir"] / "out.png"} and the '
                                             f'losses to {csv_path}')
    assert sorted(os.listdir(inputs['dir'])) == ['content.png', 'out.png', 'progress.csv', 'style.jpg']
    # the image of the same run left alone
    assert neural_style.main(args(inputs, output='again.png')) == 0
    with Image.open(inputs['dir'] / 'out.png') as written, Image.open(inputs['dir'] / 'again.png') as again:
        np.testing.assert_array_equal(np.asarray(written), np.asarray(again))


@pytest.mark.parametrize('extension', ['.xbm', '.msp', '.palm', '.blp', '.h5', '.hdf', '.wmf', '.emf', '.grib',
                                       '.bufr'])
def test_a_format_that_cannot_hold_an_rgb_image_is_refused_before_the_run(inputs, capsys, extension):
    """Pillow knows these extensions, but cannot write an RGB image in them."""
    line = fails(args(inputs, output='out' + extension), capsys)
    assert 'cannot write an RGB image as' in line and f'("{extension}")' in line


def test_an_output_the_file_system_refuses_is_refused_before_the_run(inputs, capsys):
    """/proc accepts the access check (for root) but no new file."""
    line = fails(args(inputs, '--progress-write', '/proc/losses.csv'), capsys)
    assert line.startswith('neural_style.py: error: cannot write /proc/losses.csv: ')


def test_a_final_write_that_fails_saves_the_result_beside_the_output(inputs, capsys, monkeypatch):
    """Should the output's format fail after the run (here JPEG, made to fail for anything
    larger than the 1x1 trial), the result is saved as a PNG beside it, and the message says where."""
    save = Image.Image.save

    def failing_save(image, target, format=None, **options):
        if format == 'JPEG' and image.size != (1, 1):
            raise OSError('encoder error -2')
        return save(image, target, format=format, **options)

    monkeypatch.setattr(Image.Image, 'save', failing_save)
    (inputs['dir'] / 'out-rescued-1.png').write_bytes(b'an earlier rescue')  # never overwritten
    assert neural_style.main(args(inputs, output='out.jpg')) == 1
    rescue = inputs['dir'] / 'out-rescued-2.png'
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f'neural_style.py: error: could not write {inputs["dir"] / "out.jpg"} (encoder error -2); wrote the result '
        f'to {rescue} instead')
    assert (inputs['dir'] / 'out-rescued-1.png').read_bytes() == b'an earlier rescue'
    monkeypatch.undo()
    assert neural_style.main(args(inputs, output='again.png')) == 0  # the same run, written as it should be
    with Image.open(rescue) as rescued, Image.open(inputs['dir'] / 'again.png') as again:
        np.testing.assert_array_equal(np.asarray(rescued), np.asarray(again))
    assert not os.path.exists(inputs['dir'] / 'out.jpg') and temporaries(inputs['dir']) == []


def test_checkpoint_names_keep_a_literal_percent_and_number_every_percent_s(inputs):
    """Every %s becomes the iteration, any other % is part of the name."""
    for pattern in ('ck_100%_%s.png', 'ck_%s_%s.png', 'ck_%d%%s.png'):
        assert neural_style.main(args(inputs, '--checkpoint-output', str(inputs['dir'] / pattern),
                                      '--checkpoint-iterations', '1', '--max-size', '16', '--overwrite')) == 0
    assert sorted(name for name in os.listdir(inputs['dir']) if name.startswith('ck_')) == [
        'ck_%d%1.png', 'ck_%d%2.png', 'ck_100%_1.png', 'ck_100%_2.png', 'ck_1_1.png', 'ck_2_2.png']


@pytest.mark.parametrize('extra, expected', [
    (['--style-layers', 'relu1_1', 'relu1_1', '--style-layer-weights', '1', '1'],
     '--style-layers names relu1_1 more than once; give each layer once (its weight goes in --style-layer-weights)'),
    (['--content-layers', 'relu4_2', 'relu2_2', 'relu4_2'],
     '--content-layers names relu4_2 more than once; give each layer once (its weight goes in '
     '--content-layer-weights)'),
])
def test_a_repeated_layer_is_refused(inputs, capsys, extra, expected):
    """A repeated layer was once merged silently, only its last weight counting."""
    assert fails(args(inputs, *extra), capsys).endswith(expected)


def test_stylize_refuses_a_repeated_layer(net, image_arrays):
    content, style = image_arrays
    for layers in (dict(style_layers=('relu1_1', 'relu1_1')), dict(content_layers=('relu2_2', 'relu2_2'))):
        with pytest.raises(ValueError, match='named more than once'):
            next(stylize_with(net, content, [style], device='/cpu:0', iterations=1, **layers))


def test_two_outputs_on_one_file_are_refused(inputs, capsys):
    """The image once silently replaced the CSV."""
    same = str(inputs['dir'] / 'same.png')
    line = fails(args(inputs, '--progress-write', same, output='same.png'), capsys)
    assert line.endswith(f'--output {same} and --progress-write {same} are the same file; give each output a '
                         f'name of its own')
    checkpoints = str(inputs['dir'] / 'sub' / '..' / 'c%s.png')  # another spelling of the same directory
    (inputs['dir'] / 'sub').mkdir()
    line = fails(args(inputs, '--checkpoint-output', checkpoints, '--checkpoint-iterations', '1', output='c2.png'),
                 capsys)
    assert f'--output {inputs["dir"] / "c2.png"} and --checkpoint-output' in line and 'are the same file' in line


def test_a_float_tiff_in_zero_to_one_is_scaled_and_another_range_refused(tmp_path, capsys):
    """A 32-bit float TIFF (mode F) in 0..1 was once read as all black."""
    grey = np.random.default_rng(3).uniform(0, 1, (5, 7)).astype(np.float32)
    Image.fromarray(grey).save(tmp_path / 'float.tif')
    with Image.open(tmp_path / 'float.tif') as stored:
        assert stored.mode == 'F'
    image = images.read_image(str(tmp_path / 'float.tif'))
    np.testing.assert_allclose(image, np.repeat(grey[:, :, None], 3, axis=2) * 255, rtol=1e-6)
    Image.fromarray(grey * 1000).save(tmp_path / 'wide.tif')
    with pytest.raises(images.ImageError, match=r'holds floating-point values from [0-9.]+ to 9[0-9.]+; '
                                                     r'only 0\.\.1 \(black to white\) is understood'):
        images.read_image(str(tmp_path / 'wide.tif'))


@pytest.mark.parametrize('extra', [['--device', '/gpu:3'], ['--device', '/gpu:3', '--precision', 'mixed'],
                                   ['--device', '/cpu:7']])
def test_a_device_that_does_not_exist_is_refused(inputs, capsys, extra):
    """The sessions' soft placement once ran a graph meant for /gpu:3 on the CPU (in float16 with
    --precision mixed) while the command said /gpu:3."""
    import tensorflow as tf
    seen = [f'/{d.device_type.lower()}:{d.name.split(":")[-1]}' for d in tf.config.list_physical_devices()]
    assert extra[1] not in seen
    line = fails(args(inputs, *extra), capsys)
    assert line.startswith(f'neural_style.py: error: --device: device {extra[1]} does not exist here; TensorFlow '
                           f'sees /cpu:0')


def test_stylize_refuses_a_device_that_does_not_exist(net, image_arrays):
    content, style = image_arrays
    with pytest.raises(ValueError, match='device /gpu:3 does not exist here; TensorFlow sees /cpu:0'):
        next(stylize_with(net, content, [style], device='/gpu:3', iterations=1))


def test_the_device_printed_is_the_one_the_graph_runs_on(inputs, capsys):
    assert neural_style.main(args(inputs, '--device', '/device:CPU:0', '--max-size', '16')) == 0
    assert ', on /cpu:0' in capsys.readouterr().out.splitlines()[0]



def test_an_output_that_is_an_input_is_refused_even_with_overwrite(inputs, capsys):
    """--output same.jpg --content same.jpg --overwrite once replaced the original with the result.
    By name, through a hard link and a symbolic link, for each input and each kind of output."""
    directory = inputs['dir']
    os.link(inputs['content'], directory / 'hard.png')
    os.symlink(inputs['style'], directory / 'soft.jpg')
    mask = save(directory / 'mask.png', np.full((30, 40, 3), 255))
    initial = save(directory / 'initial.png', np.full((30, 40, 3), 128))
    before = {name: (directory / name).read_bytes() for name in os.listdir(directory)}
    cases = [([], 'content.png', '--output', f'--content {inputs["content"]}'),
             ([], 'hard.png', '--output', f'--content {inputs["content"]}'),
             ([], 'soft.jpg', '--output', f'--styles {inputs["style"]}'),
             (['--style-masks', mask], 'mask.png', '--output', f'--style-masks {mask}'),
             (['--initial', initial, '--progress-plot', initial], 'x.png', '--progress-plot', f'--initial {initial}'),
             (['--progress-write', str(directory / 'soft.jpg')], 'y.png', '--progress-write',
              f'--styles {inputs["style"]}')]
    for extra, output, option, what in cases:
        for overwrite in ([], ['--overwrite']):
            line = fails(args(inputs, *extra, *overwrite, output=output), capsys)
            assert f'error: {option} ' in line and f'is the same file as {what}: ' in line, line
            assert line.endswith('(refused even with --overwrite); give the output a name of its own'), line
    assert {name: (directory / name).read_bytes() for name in os.listdir(directory)} == before


def test_a_second_interrupt_while_the_best_image_is_written_says_what_is_on_disk(inputs):
    """Ctrl-C mid-run, then again while the best image so far is written, once said "nothing
    written" although the losses were on disk."""
    csv_path = inputs['dir'] / 'progress.csv'
    argv = args(inputs, '--iterations', '100000', '--print-iterations', '1', '--progress-write', str(csv_path))
    process = subprocess.Popen([sys.executable, '-c', PATCHED_MAIN, SLOW_WRITE] + argv, cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=ROOT))
    watchdog = threading.Timer(240, process.kill)  # a run that never prints must not hang the suite
    watchdog.start()
    try:
        for line in process.stdout:
            if line.startswith('iteration'):
                process.send_signal(signal.SIGINT)
                break
        for line in process.stdout:
            if line.startswith('writing'):
                process.send_signal(signal.SIGINT)
                break
        _, err = process.communicate(timeout=240)
    finally:
        watchdog.cancel()
        process.kill()
        process.wait()
    assert process.returncode == 130, err
    assert 'Traceback' not in err
    assert err.strip().splitlines()[-1] == (
        f'neural_style.py: interrupted (SIGINT), and SIGINT again while the best image so far was written: '
        f'{inputs["dir"] / "out.png"} was not written, that image is lost; wrote the losses to {csv_path}')
    assert sorted(os.listdir(inputs['dir'])) == ['content.png', 'progress.csv', 'style.jpg']


def test_a_32_bit_integer_image_is_read_as_16_bit_or_refused(tmp_path):
    """A mode-I (32-bit integer) image was once divided by 257 whatever its range: values up to
    2^31 came out white."""
    grey = np.arange(12, dtype=np.int32).reshape(3, 4) * 5000  # 0..55000: 16-bit values
    Image.fromarray(grey).save(tmp_path / 'sixteen.tif')
    Image.fromarray(grey * 30000).save(tmp_path / 'wide.tif')  # up to 1.65e9
    for name in ('sixteen.tif', 'wide.tif'):
        with Image.open(tmp_path / name) as stored:
            assert stored.mode == 'I'
    np.testing.assert_allclose(images.read_image(str(tmp_path / 'sixteen.tif')),
                               np.repeat(grey[:, :, None], 3, axis=2) * 255 / 65535, rtol=1e-6)
    with pytest.raises(images.ImageError, match=r'wide\.tif holds 32-bit integer values from 0 to 1650000000; only '
                                                r'0\.\.65535 \(16-bit, black to white\) is understood'):
        images.read_image(str(tmp_path / 'wide.tif'))


def test_missing_images_and_a_directory_as_output_get_their_sentence_before_tensorflow(inputs, tmp_path):
    """A missing image was once reported only after TensorFlow's import, and an --output
    naming a directory got 'cannot write images of type "/path/adir"'."""
    script = ('import sys, neural_style; code = neural_style.main(sys.argv[1:]); '
              'print("tensorflow" in sys.modules); sys.exit(code)')
    missing = str(tmp_path / 'missing.jpg')
    # An existing directory as --output is where a batch's images go (test_batch.py).
    for argv, expected in [(args(inputs, '--style-masks', missing), f'error: image {missing} does not exist'),
                           (args(inputs, '--device', '/cpu:0', '--initial', missing),
                            f'error: image {missing} does not exist')]:
        result = subprocess.run([sys.executable, '-c', script] + argv, cwd=ROOT, capture_output=True, text=True,
                                env=dict(os.environ, PYTHONPATH=ROOT), timeout=120)
        assert result.returncode == 1 and result.stdout.strip() == 'False', result
        assert result.stderr.strip().splitlines()[-1] == f'neural_style.py: {expected}'
