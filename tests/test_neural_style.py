"""The command line end to end on tiny images, and its one-line errors."""
import csv
import hashlib
import os
import pathlib
import re
import shlex
import signal
import stat
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

import neural_style
import stylize
from styletransfer.media import images
from helpers import ROOT, args, fails, random_image, save, signalled, write_cpuinfo

def without_tf_log_level():
    """The environment as a user's without TF_CPP_MIN_LOG_LEVEL (conftest sets it for the tests' own imports)."""
    return {key: value for key, value in os.environ.items() if key != 'TF_CPP_MIN_LOG_LEVEL'}


def test_end_to_end_in_a_subprocess(inputs):
    csv_path = inputs['dir'] / 'progress.csv'
    result = subprocess.run([sys.executable, os.path.join(ROOT, 'neural_style.py')] +
                            args(inputs, '--max-size', '32', '--progress-write', str(csv_path)),
                            capture_output=True, text=True, timeout=300, env=without_tf_log_level())
    assert result.returncode == 0, result.stderr
    with Image.open(inputs['dir'] / 'out.png') as image:
        assert image.size == (32, 24) and image.mode == 'RGB'
    with open(csv_path) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ['iteration', 'content', 'style', 'tv', 'total', 'seconds']
    assert [int(r[0]) for r in rows[1:]] == [0, 1, 2, 3]
    for r in rows[1:]:
        content, style, tv, total = map(float, r[1:5])
        assert total == pytest.approx(content + style + tv, rel=1e-5)
    assert 'wrote' in result.stdout
    assert result.stderr == ''  # TensorFlow's start-up lines held back: they are not this program's


def test_tensorflow_start_up_lines_only_with_verbose(inputs):
    """Without --verbose and TF_CPP_MIN_LOG_LEVEL, a run's stderr is empty (above); with --verbose,
    TensorFlow's start-up records are there, as absl writes them."""
    result = subprocess.run([sys.executable, os.path.join(ROOT, 'neural_style.py'), '--verbose'] +
                            args(inputs, '--max-size', '16', '--iterations', '1'),
                            capture_output=True, text=True, timeout=300, env=without_tf_log_level())
    assert result.returncode == 0, result.stderr
    assert re.search(r'^[IWE]\d{4} [\d:.]+ +\d+ \S+:\d+\] ', result.stderr, re.M), result.stderr


def test_width_checkpoints_and_adam(inputs):
    pattern = str(inputs['dir'] / 'checkpoint_%s.png')
    code = neural_style.main(args(inputs, '--width', '20', '--optimizer', 'adam', '--checkpoint-output', pattern,
                                  '--checkpoint-iterations', '1', '--init', 'content', '--print-iterations', '1'))
    assert code == 0
    with Image.open(inputs['dir'] / 'out.png') as image:
        assert image.size == (20, 15)
    assert sorted(os.listdir(inputs['dir'])) == ['checkpoint_1.png', 'checkpoint_2.png', 'content.png', 'out.png',
                                                'style.jpg']


def test_existing_output_is_kept_without_overwrite(inputs, capsys):
    output = inputs['dir'] / 'out.png'
    output.write_bytes(b'precious')
    assert 'exists' in fails(args(inputs), capsys)
    assert output.read_bytes() == b'precious'
    assert neural_style.main(args(inputs, '--overwrite', '--max-size', '16')) == 0
    with Image.open(output) as image:
        assert image.size == (16, 12)


def png(path, width, height, bit_depth=8, raw=None):
    """An RGB PNG written chunk by chunk, for what Pillow cannot write: 16-bit colour, or a header whose size
    the pixel data does not match."""
    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
    header = struct.pack('>IIBBBBB', width, height, bit_depth, 2, 0, 0, 0)
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(raw or b'\0' * 64)) +
                     chunk(b'IEND', b''))
    return str(path)


def test_greyscale_palette_and_rgba_become_rgb_exactly(tmp_path):
    rgb = random_image(6, 5, seed=3).astype(np.uint8)
    grey = save(tmp_path / 'grey.png', rgb[:, :, 0], 'L')
    np.testing.assert_array_equal(images.read_image(grey), np.repeat(rgb[:, :, :1], 3, axis=2))
    few_colours = rgb // 128 * 255  # at most 8 colours: a palette holds them exactly
    palette = str(tmp_path / 'palette.png')
    Image.fromarray(few_colours).convert('P', palette=Image.Palette.ADAPTIVE).save(palette)
    with Image.open(palette) as stored:
        assert stored.mode == 'P'
    np.testing.assert_array_equal(images.read_image(palette), few_colours)
    rgba = np.dstack([rgb, np.arange(30, dtype=np.uint8).reshape(6, 5) * 8])
    transparent = str(tmp_path / 'rgba.png')
    Image.fromarray(rgba, 'RGBA').save(transparent)
    np.testing.assert_array_equal(images.read_image(transparent), rgb)  # alpha dropped


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    ramp = np.linspace(0, 255, 32)
    rgb = np.stack(np.broadcast_arrays(ramp[:, None], ramp[None, :], 128.0), axis=2)  # smooth: JPEG keeps it
    path = save(tmp_path / 'cmyk.jpg', rgb, 'CMYK')
    with Image.open(path) as stored:
        assert stored.mode == 'CMYK'
    assert np.abs(images.read_image(path) - rgb).mean() < 3


def test_sixteen_bit_colour_is_reduced_to_eight_bits(tmp_path):
    values = np.array([[[0, 65535, 32896], [257, 1000, 65280]]], dtype=np.uint16)
    raw = b''.join(b'\0' + row.astype('>u2').tobytes() for row in values)
    image = images.read_image(png(tmp_path / 'deep.png', 2, 1, bit_depth=16, raw=raw))
    assert image.shape == (1, 2, 3)
    assert np.abs(image - values / 257.0).max() <= 1


def test_exif_orientation_of_a_camera_jpeg_is_honoured(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: to be shown turned 90 degrees clockwise
    Image.fromarray(random_image(20, 40, seed=4).astype(np.uint8)).save(tmp_path / 'camera.jpg', exif=exif)
    assert images.read_image(str(tmp_path / 'camera.jpg')).shape == (40, 20, 3)


def test_sixteen_bit_greyscale_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 65535], [32896, 257]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / 'deep.png')
    image = images.read_image(str(tmp_path / 'deep.png'))
    np.testing.assert_allclose(image[:, :, 0], values / 257.0, atol=1e-4)


def test_output_size():
    assert images.output_size((300, 400, 3), None, 512) == (300, 400)  # never scaled up
    assert images.output_size((600, 1024, 3), None, 512) == (300, 512)
    assert images.output_size((300, 400, 3), 800, 512) == (600, 800)


@pytest.mark.parametrize('extra, expected', [
    (['--style-blend-weights', '1', '2'], '--style-blend-weights has 2 values for 1 style images'),
    (['--style-scales', '1', '2'], '--style-scales has 2 values for 1 style images'),
    (['--style-layer-weights', '1'], '--style-layer-weights has 1 values for 2 style layers'),
    (['--style-blend-weights', '0'], 'must not all be 0'),
    (['--checkpoint-output', 'c.png', '--checkpoint-iterations', '1'], 'has no %s'),
    (['--checkpoint-output', 'c%s.png'], 'go together'),
    (['--device', 'tpu'], 'is not a device name'),
    (['--max-megapixels', '0.001'], 'is 40x30 pixels (0.0012 megapixels), more than the limit of 0.001 megapixels'),
    (['--width', '100000'], 'the output is 100000x75000 pixels (7500 megapixels), more than the limit of 50'),
])
def test_option_errors(inputs, capsys, extra, expected):
    assert expected in fails(args(inputs, *extra), capsys)


@pytest.mark.parametrize('extra, expected', [
    (['--style-layers', 'relu9_1'], "unknown layer 'relu9_1'"),
    (['--iterations', '0'], 'must be a positive integer'),
    (['--style-weight', '-1'], 'must be 0 or a positive number'),
    (['--learning-rate', '0'], 'must be a positive number'),
    (['--pooling', 'median'], "invalid choice: 'median'"),
    (['--iterations', '-5'], 'must be a positive integer'),
    (['--iterations', '2.5'], 'must be an integer, not 2.5'),
    (['--max-size', '0'], 'must be a positive integer'),
    (['--width', '-20'], 'must be a positive integer'),
    (['--content-weight', '-1'], 'must be 0 or a positive number'),
    (['--tv-weight', 'nan'], 'must be 0 or a positive number'),
    (['--style-weight', 'lots'], 'must be a number, not lots'),
    (['--style-layer-weights', '1', '-1'], 'must be 0 or a positive number'),
    (['--style-blend-weights', '-1'], 'must be 0 or a positive number'),
    (['--learning-rate', '-0.1'], 'must be a positive number'),
    (['--content-layers', 'conv4_5'], "unknown layer 'conv4_5'"),
    (['--checkpoint-iterations', '0'], 'must be a positive integer'),
    (['--max-megapixels', '0'], 'must be a positive number'),
])
def test_argument_errors(inputs, capsys, extra, expected):
    assert expected in fails(args(inputs, *extra), capsys)


def bad_image(kind, directory):
    path = directory / 'bad' / 'image.png'
    path.parent.mkdir()
    if kind == 'directory':
        path.mkdir()
    elif kind == 'empty':
        path.write_bytes(b'')
    elif kind == 'not an image':
        path.write_text('not an image')
    elif kind == 'truncated JPEG':
        path = path.with_suffix('.jpg')
        save(path, random_image(64, 64, seed=5))
        path.write_bytes(path.read_bytes()[:2000])
    elif kind == 'over the limit':  # 8000 x 8000 in the header: refused before the pixels are decoded
        png(path, 8000, 8000)
    elif kind == 'over Pillow\'s limit':
        png(path, 20000, 20000)
    return str(path)


@pytest.mark.parametrize('role', ['--content', '--styles'])
@pytest.mark.parametrize('kind, expected', [
    ('missing', 'does not exist'),
    ('directory', 'holds no image files'),  # a directory of images makes a batch (test_batch.py)
    ('empty', 'is empty'),
    ('not an image', 'could not be read: cannot identify image file'),
    ('truncated JPEG', 'could not be read: image file is truncated'),
    ('over the limit', 'is 8000x8000 pixels (64 megapixels), more than the limit of 50 megapixels (--max-megapixels)'),
    ('over Pillow\'s limit', 'is too large to decode'),
])
def test_bad_images(inputs, capsys, role, kind, expected):
    argv = args(inputs)
    argv[argv.index(role) + 1] = bad_image(kind, inputs['dir'])
    assert expected in fails(argv, capsys)


def test_one_pixel_images(inputs):
    """A 1x1 content gives a 1x1 output; a 1x1 style is scaled up to the output's width like any other."""
    dot = save(inputs['dir'] / 'dot.png', [[[200, 30, 90]]])
    argv = args(inputs, '--overwrite')
    argv[argv.index('--content') + 1] = dot
    assert neural_style.main(argv) == 0
    with Image.open(inputs['dir'] / 'out.png') as image:
        assert image.size == (1, 1)
    argv = args(inputs, '--overwrite')
    argv[argv.index('--styles') + 1] = dot
    assert neural_style.main(argv) == 0


def test_unknown_extension_and_missing_directory(inputs, capsys):
    assert 'cannot write images of type ".xyz"' in fails(args(inputs, output='out.xyz'), capsys)
    assert 'does not exist' in fails(args(inputs, output='no/such/dir/out.png'), capsys)


@pytest.mark.parametrize('kind, expected', [
    ('missing', 'does not exist: get it with `python vgg.py download`'),
    ('empty', 'is empty'),
    ('html', 'is an HTML/XML page'),
    ('truncated', 'truncated or corrupt'),
    ('another MAT file', 'not a MatConvNet network'),
])
def test_weights_errors_are_one_line(inputs, capsys, kind, expected):
    import scipy.io
    path = inputs['dir'] / 'weights.mat'
    if kind == 'empty':
        path.write_bytes(b'')
    elif kind == 'html':
        path.write_text('<html>404</html>')
    elif kind == 'truncated':
        path.write_bytes(pathlib.Path(inputs['network']).read_bytes()[:1_000_000])
    elif kind == 'another MAT file':
        scipy.io.savemat(str(path), {'x': np.arange(5)})
    argv = args(inputs)
    argv[argv.index('--network') + 1] = str(path)
    assert expected in fails(argv, capsys)


def test_no_weights_file_anywhere_names_the_download_command(inputs, capsys, monkeypatch):
    monkeypatch.chdir(inputs['dir'])
    monkeypatch.setenv('XDG_CACHE_HOME', str(inputs['dir'] / 'cache'))
    monkeypatch.setenv('KERAS_HOME', str(inputs['dir'] / 'keras'))
    monkeypatch.delenv('NEURAL_STYLE_NETWORK', raising=False)
    argv = args(inputs)
    del argv[argv.index('--network'):argv.index('--network') + 2]
    error = fails(argv, capsys)
    assert 'no weights file found' in error and '`python vgg.py download`' in error


def test_a_loss_that_overflows_keeps_the_best_image(inputs, capsys):
    """From the content, alpha L_content is 0 at first and overflows float32 after one step (alpha = 3e38):
    the run stops, names the term and its option, and writes the best image, the content itself."""
    code = neural_style.main(args(inputs, '--init', 'content', '--content-weight', '3e38', '--iterations', '20'))
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1
    assert 'the content loss became inf at iteration 1 (--content-weight too large for 32-bit floats?)' in line
    assert 'wrote the best image so far (iteration 0)' in line
    with Image.open(inputs['content']) as content, Image.open(inputs['dir'] / 'out.png') as out:
        np.testing.assert_array_equal(np.asarray(out), np.asarray(content))


def test_a_loss_that_overflows_at_once_writes_nothing(inputs, capsys):
    line = fails(args(inputs, '--optimizer', 'adam', '--style-weight', '1e38'), capsys)
    assert 'the style loss became inf at iteration 0' in line and 'nothing written' in line


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM], ids=['SIGINT', 'SIGTERM'])
def test_an_interrupted_run_leaves_the_best_image_and_the_losses(inputs, signum):
    csv_path = inputs['dir'] / 'progress.csv'
    command = [sys.executable, os.path.join(ROOT, 'neural_style.py')] + args(
        inputs, '--iterations', '100000', '--max-size', '32', '--tv-weight', '0', '--print-iterations', '1',
        '--progress-write', str(csv_path))
    code, _, err = signalled(command, lambda line: line.startswith('iteration') and
                             int(line.split()[1].split('/')[0]) >= 3, signum)
    assert code == 128 + signum
    last = err.strip().splitlines()[-1]
    assert f'interrupted ({signal.Signals(signum).name})' in last and 'wrote the best image so far' in last
    assert 'Traceback' not in err
    with Image.open(inputs['dir'] / 'out.png') as image:
        image.load()
        assert image.size == (32, 24) and image.mode == 'RGB'
    with open(csv_path) as f:
        rows = list(csv.reader(f))
    assert rows[0] == list(images.ProgressLog.HEADER)
    iterations = [int(row[0]) for row in rows[1:]]
    assert iterations == list(range(len(iterations))) and len(iterations) >= 4
    assert all(float(row[4]) > 0 for row in rows[1:])
    assert [name for name in os.listdir(inputs['dir']) if name.endswith('.tmp')] == []

    # The command printed continues the run as printed (it once named the output that exists), here
    # for one iteration: its row 0 is about where the first run stopped, far below the white noise's.
    printed = last.split('; continue with ', 1)[1]
    resumed = inputs['dir'] / 'progress-continued.csv'
    assert shlex.split(printed) == ['--initial', str(inputs['dir'] / 'out.png'), '--output',
                                    str(inputs['dir'] / 'out-continued.png'), '--progress-write', str(resumed)]
    assert neural_style.main(command[2:] + shlex.split(printed) + ['--iterations', '1']) == 0
    assert (inputs['dir'] / 'out-continued.png').exists()
    with open(resumed) as f:
        start = float(list(csv.reader(f))[1][4])
    best = min(float(row[4]) for row in rows[1:])
    assert start < 0.5 * float(rows[1][4]) and start == pytest.approx(best, rel=0.01)


def write_log(path):
    """A progress CSV of one row."""
    log = images.ProgressLog(str(path))
    log.add(stylize.Progress(iteration=0, content=1.0, style=2.0, tv=0.0, total=3.0, seconds=0.0, evaluations=1,
                             best_total=3.0, best_image=np.zeros((2, 3, 3), np.float32)))
    log.close()


@pytest.fixture
def umask():
    """Sets the process's umask for a test, and puts the old one back."""
    masks = []
    yield lambda mask: masks.append(os.umask(mask))
    if masks:
        os.umask(masks[0])


def test_written_files_get_the_mode_open_gives_and_overwritten_files_keep_theirs(tmp_path, umask):
    """The temporary file's owner-only mode must not survive the rename."""
    for mask in (0o022, 0o027, 0o002):
        umask(mask)
        image, table = tmp_path / f'new-{mask:o}.png', tmp_path / f'new-{mask:o}.csv'
        with open(tmp_path / f'plain-{mask:o}', 'w'):  # what an ordinary open() gives
            pass
        expected = stat.S_IMODE(os.stat(tmp_path / f'plain-{mask:o}').st_mode)
        images.write_image(str(image), np.zeros((2, 3, 3)))
        write_log(table)
        assert [stat.S_IMODE(os.stat(path).st_mode) for path in (image, table)] == [expected, expected]
    umask(0o077)
    for mode in (0o644, 0o604, 0o664):  # an existing file keeps its mode, whatever the umask
        image, table = tmp_path / 'old.png', tmp_path / 'old.csv'
        for path in (image, table):
            path.write_bytes(b'old')
            os.chmod(path, mode)
        images.write_image(str(image), np.zeros((2, 3, 3)))
        write_log(table)
        assert [stat.S_IMODE(os.stat(path).st_mode) for path in (image, table)] == [mode, mode]


def test_version_names_the_program_its_packages_and_the_network(network_path, capsys):
    """What a bug report needs, --network given anywhere on the line, nothing else required."""
    from importlib.metadata import version
    with open(network_path, 'rb') as f:
        sha256 = hashlib.sha256(f.read()).hexdigest()
    for argv in (['--version', '--network', network_path], ['--content', 'x.png', '--network', network_path, '--version']):
        with pytest.raises(SystemExit) as exit:
            neural_style.main(argv)
        assert exit.value.code == 0
        assert capsys.readouterr().out.splitlines() == [
            f'neural-style {neural_style.VERSION}', f'TensorFlow {version("tensorflow")}', f'numpy {version("numpy")}',
            f'network {network_path}, SHA256 {sha256}']


def test_help_is_printed(capsys):
    """--help raised a TypeError: --max-memory's help had a bare % ("50% of the machine's RAM")."""
    with pytest.raises(SystemExit) as exit:
        neural_style.main(['--help'])
    assert exit.value.code == 0
    assert "50% of the machine's RAM" in ' '.join(capsys.readouterr().out.split())


def test_precision_auto_is_bfloat16_only_on_a_cpu_with_bfloat16_units(tmp_path, monkeypatch):
    """--precision auto reads the CPU's flags; a CPU without AMX or AVX512-BF16 keeps float32."""
    from styletransfer.compute import devices
    with_amx = write_cpuinfo(tmp_path / 'amx', 'fpu avx512f amx_bf16 amx_tile')
    without = write_cpuinfo(tmp_path / 'plain', 'fpu avx2 avx512f avx512_vnni')
    assert devices.cpu_bfloat16_flags(with_amx) == ['amx_bf16']
    assert devices.cpu_bfloat16_flags(without) == []
    for flags, cpu, gpu in ((['amx_bf16'], 'bfloat16', 'float32'), ([], 'float32', 'float32')):
        monkeypatch.setattr(devices, 'cpu_bfloat16_flags', lambda flags=flags: flags)
        assert devices.compute_dtype('auto', '/cpu:0') == cpu and devices.compute_dtype('auto', '/gpu:0') == gpu


def test_the_convolutions_are_winograds_in_float32_on_avx512_tensorflows_on_gpus_and_rotated_elsewhere(tmp_path):
    from styletransfer.compute import devices
    with_avx512 = write_cpuinfo(tmp_path / 'avx512', 'fpu avx2 avx512f avx512_bf16')
    without = write_cpuinfo(tmp_path / 'avx2', 'fpu avx2 fma')
    assert devices.convolutions('/cpu:0', 'float32', cpuinfo=with_avx512) == 'winograd'
    assert devices.convolutions('/cpu:0', 'float32', tiled=True, cpuinfo=with_avx512) == 'tensorflow'
    assert devices.convolutions('/cpu:0', 'bfloat16', cpuinfo=with_avx512) == 'tensorflow'
    assert devices.convolutions('/cpu:0', 'float32', cpuinfo=without) == 'rotated'
    assert devices.convolutions('/gpu:0', 'float32', cpuinfo=with_avx512) == 'tensorflow'
    assert devices.convolutions('/cpu:0', 'float32', cpuinfo=str(tmp_path / 'no-such-file')) == 'rotated'
    # --convolutions direct: summed directly everywhere, by the same operations as without Winograd
    assert devices.convolutions('/cpu:0', 'float32', 'direct', cpuinfo=with_avx512) == 'tensorflow'
    assert devices.convolutions('/cpu:0', 'float32', 'direct', cpuinfo=without) == 'rotated'
    with pytest.raises(ValueError, match='unknown convolutions'):
        devices.convolutions('/cpu:0', 'float32', 'fft', cpuinfo=with_avx512)


@pytest.mark.parametrize('flags, words', [
    ('fpu avx512f amx_bf16 amx_tile avx512_bf16', ', bfloat16 (auto: this CPU has amx_bf16 and avx512_bf16)'),
    ('fpu avx512f avx512_bf16', ', bfloat16 (auto: this CPU has avx512_bf16)'),
    ('fpu avx2 avx512f avx512_vnni', ', float32 (auto: this CPU has neither amx_bf16 nor avx512_bf16), the deep '
     "convolutions untiled by Winograd's F(4x4, 3x3) (this CPU has avx512f); network"),
    ('fpu avx2 fma', ', float32 (auto: this CPU has neither amx_bf16 nor avx512_bf16); network')])
def test_the_default_precision_is_auto_and_the_set_up_line_names_its_choice(inputs, capsys, tmp_path, monkeypatch,
                                                                             flags, words):
    """No --precision: bfloat16 convolutions on a CPU that lists a bfloat16 unit, float32 elsewhere, and why."""
    monkeypatch.setenv('NEURAL_STYLE_CPUINFO', write_cpuinfo(tmp_path / 'cpuinfo', flags))
    assert neural_style.main(args(inputs, '--max-size', '16')) == 0
    assert words in capsys.readouterr().out.splitlines()[0]


def test_a_run_that_stops_early_says_why(inputs, capsys):
    """A loss that falls stays positive, so its relative change is below 1 at the first comparison: iteration 2
    with a window of 1."""
    assert neural_style.main(args(inputs, '--tolerance', '1', '--tolerance-window', '1', '--max-size', '16')) == 0
    out = capsys.readouterr().out
    assert 'stopped at iteration 2: the objective changed by less than 1 over the last 1 iterations' in out
