"""--normalize-network (network_normalization.py): the paper's normalized network checked against tests/reference.py's
NumPy VGG-19, the cache of its mean activations, and the command line's option."""
import os
import shlex

import numpy as np
import pytest
from PIL import Image

import neural_style
import reference
import stylize
import vgg
from helpers import args, clip_args, image_run, random_image
from styletransfer.compute import devices
from styletransfer.media import files, images, video
from styletransfer.network import network_normalization

# Stand-ins for the six examples: small enough for the NumPy network, and relu5_x still 3x3 and 3x2 positions.
PICTURES = [random_image(40, 48, seed=3), random_image(36, 28, seed=4)]


def reference_features(net, image, pooling='avg'):
    """Every layer of `net` for `image` by tests/reference.py's NumPy network (not vgg.build_network)."""
    stored = {name: (kernel.transpose(1, 0, 2, 3), net.biases[name]) for name, kernel in net.kernels.items()}
    return reference.features(stored, net.mean_pixel, image, pooling)


def cpu():
    return devices.one_device('/cpu:0')


def test_every_filter_of_the_normalized_network_has_mean_activation_one(net):
    means = network_normalization.mean_activations(net, PICTURES, cpu())
    normal = network_normalization.normalized(net, means)
    features = [reference_features(normal, picture) for picture in PICTURES]
    for name in network_normalization.RELU_LAYERS:
        measured = np.mean([f[name].mean(axis=(0, 1)) for f in features], axis=0)  # over positions, then pictures
        alive = means[name] > 0
        assert alive.mean() > 0.9, name  # the check below is about most filters
        np.testing.assert_allclose(measured[alive], 1.0, rtol=1e-3, err_msg=name)  # float32 against float64
        assert np.all(measured[~alive] == 0), name  # a dead filter stays dead
    assert vgg.describe(normal) == 'normalized VGG-19 (MatConvNet, current layout)'


@pytest.mark.parametrize('pooling', ['avg', 'max'])
def test_each_layer_is_the_published_ones_divided_by_its_means(net, pooling):
    """The scaling is undone downstream: any means (dead filters among them) leave each layer the published
    network's divided by its own means, with either pooling."""
    rng = np.random.default_rng(5)
    means = {name: rng.uniform(0.5, 50.0, vgg.channels(name)).astype(np.float32)
             for name in network_normalization.RELU_LAYERS}
    for name in ('relu1_2', 'relu3_1', 'relu5_4'):
        means[name][::7] = 0.0  # dead filters: kept as they are
    normal = network_normalization.normalized(net, means)
    published, scaled = (reference_features(n, PICTURES[0], pooling) for n in (net, normal))
    for name in network_normalization.RELU_LAYERS:
        divisor = np.where(means[name] > 0, means[name], 1.0)
        np.testing.assert_allclose(scaled[name] * divisor, published[name], rtol=1e-4,
                                   atol=1e-5 * np.abs(published[name]).max(), err_msg=name)
    np.testing.assert_allclose(scaled['pool4'] * means['relu4_4'], published['pool4'], rtol=1e-4,
                               atol=1e-5 * np.abs(published['pool4']).max())


# The cache

@pytest.fixture
def computations(monkeypatch):
    """The example pictures replaced by PICTURES (fast); the list grows by one at each computation of the means."""
    counted, compute = [], network_normalization.mean_activations

    def counting(net, pictures, placement=None):
        counted.append(len(pictures))
        return compute(net, pictures, placement)

    monkeypatch.setattr(network_normalization, 'mean_activations', counting)
    monkeypatch.setattr(network_normalization, 'example_pictures', lambda size: PICTURES)
    return counted


def cached(net, network_path, cache_dir):
    return network_normalization.cached_mean_activations(net, files.file_digest(network_path), str(cache_dir), cpu())


def test_the_second_run_reads_the_means_and_does_not_compute_them(net, network_path, computations, tmp_path):
    cache_dir = tmp_path / 'cache'
    first, problem = cached(net, network_path, cache_dir)
    assert problem is None and computations == [len(PICTURES)]
    (entry,) = cache_dir.iterdir()
    written = entry.stat().st_mtime_ns
    second, problem = cached(net, network_path, cache_dir)
    assert problem is None and computations == [len(PICTURES)]
    assert entry.stat().st_mtime_ns == written
    for name in network_normalization.RELU_LAYERS:
        np.testing.assert_array_equal(second[name], first[name])


def test_the_cache_file_has_the_mode_the_umask_gives(net, network_path, computations, tmp_path):
    previous = os.umask(0o027)
    try:
        cached(net, network_path, tmp_path)
    finally:
        os.umask(previous)
    (entry,) = tmp_path.glob('mean-activations-*.npz')
    assert entry.stat().st_mode & 0o777 == 0o640


def test_another_weights_file_gets_a_cache_of_its_own(net, network_path, older_network_path, computations,
                                                      tmp_path):
    cached(net, network_path, tmp_path)
    cached(vgg.load_net(older_network_path), older_network_path, tmp_path)
    assert len(computations) == 2
    assert len(list(tmp_path.glob('mean-activations-*.npz'))) == 2


def _garbage(path):
    path.write_bytes(b'not an npz file')


def _empty(path):
    path.write_bytes(b'')


def _truncated(path):
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])


def _a_changed_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside an array's values: only the zip's CRC tells
    path.write_bytes(bytes(data))


def _a_negative_mean(path):
    with np.load(path) as stored:
        means = dict(stored)
    means['relu3_1'][0] = -1.0
    np.savez(path, **means)


def _a_layer_missing(path):
    with np.load(path) as stored:
        means = dict(stored)
    del means['relu5_4']
    np.savez(path, **means)


@pytest.mark.parametrize('damage', [_garbage, _empty, _truncated, _a_changed_byte, _a_negative_mean,
                                    _a_layer_missing])
def test_a_damaged_cache_file_is_computed_again(net, network_path, computations, tmp_path, damage):
    first, _ = cached(net, network_path, tmp_path)
    (entry,) = tmp_path.glob('mean-activations-*.npz')
    damage(entry)
    again, problem = cached(net, network_path, tmp_path)
    assert problem is None and len(computations) == 2
    for name in network_normalization.RELU_LAYERS:
        np.testing.assert_array_equal(again[name], first[name])
    assert network_normalization.read_means(str(entry)) is not None  # written whole again


def test_a_cache_that_cannot_be_written_is_said_in_a_sentence(net, network_path, computations, tmp_path):
    (tmp_path / 'a-file').write_text('')  # a directory below a file cannot be made, even by root
    cache_dir = tmp_path / 'a-file' / 'neural-style'
    means, problem = cached(net, network_path, cache_dir)
    assert problem.startswith(f'the mean activations of the normalized network could not be cached in {cache_dir} (')
    assert problem.endswith('): computed for this run only')
    assert set(means) == set(network_normalization.RELU_LAYERS)


# The command line

@pytest.fixture
def cache_home(tmp_path, monkeypatch, computations):
    """vgg.cache_dir() in the test's directory, not the user's."""
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache-home'))
    return tmp_path / 'cache-home'


def style_weight_of(inputs, *extra):
    """(each stage's beta, whether the network is normalized) of a run of the command line's options."""
    run = image_run(args(inputs, *extra))
    return [settings.style_weight for _, settings in run.stages], run.net.normalized


def test_the_normalized_network_has_its_own_default_beta(inputs, cache_home):
    raw = '--raw-style-weight'  # the beta chosen, not its scaling (tests/test_job.py)
    assert style_weight_of(inputs, raw) == ([stylize.STYLE_WEIGHT], False)
    assert style_weight_of(inputs, raw, '--normalize-network') == ([stylize.NORMALIZED_STYLE_WEIGHT], True)
    assert style_weight_of(inputs, raw, '--normalize-network', '--style-weight', '5') == ([5.0], True)


def pixels(path):
    with Image.open(path) as image:
        return np.asarray(image)


def recorded_command(path):
    """The command recorded inside an image, as words."""
    return shlex.split(images.read_settings(path)['Command'])


def test_settings_from_a_normalized_run_make_it_again(inputs, cache_home, capsys):
    first = str(inputs['dir'] / 'first.png')
    assert neural_style.main(args(inputs, '--normalize-network', output='first.png')) == 0
    assert 'network normalized VGG-19 (MatConvNet, current layout)' in capsys.readouterr().out
    words = recorded_command(first)
    assert '--normalize-network' in words
    assert words[words.index('--style-weight') + 1] == str(stylize.NORMALIZED_STYLE_WEIGHT)  # recorded as used
    assert neural_style.main(['--settings-from', first, '--output', str(inputs['dir'] / 'again.png')]) == 0
    np.testing.assert_array_equal(pixels(inputs['dir'] / 'again.png'), pixels(first))
    # the same beta on the published network paints another image: the network was the normalized one
    assert neural_style.main(args(inputs, '--style-weight', str(stylize.NORMALIZED_STYLE_WEIGHT),
                                  output='published.png')) == 0
    assert not np.array_equal(pixels(inputs['dir'] / 'published.png'), pixels(first))


def test_a_clip_gets_the_normalized_network_and_its_beta_too(clip, cache_home, capsys):
    assert neural_style.main(clip_args(clip, '--normalize-network', '--iterations', '1', '--frames', '2',
                                       output='out.gif')) == 0
    assert 'network normalized VGG-19 (MatConvNet, current layout)' in capsys.readouterr().out
    (key,) = os.listdir(clip['dir'] / 'out.gif.frames')
    words = recorded_command(video.finished_frames(os.path.join(clip['dir'] / 'out.gif.frames', key), 2, 1)[0])
    assert '--normalize-network' in words
    assert words[words.index('--style-weight') + 1] == str(stylize.NORMALIZED_STYLE_WEIGHT)


def test_a_cache_that_cannot_be_written_is_one_line_and_the_run_goes_on(inputs, tmp_path, monkeypatch, computations,
                                                                       capsys):
    (tmp_path / 'a-file').write_text('')
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'a-file'))
    assert neural_style.main(args(inputs, '--normalize-network')) == 0
    said = [line for line in capsys.readouterr().out.splitlines() if 'could not be cached' in line]
    assert said == [f'network: the mean activations of the normalized network could not be cached in '
                    f'{tmp_path / "a-file" / "neural-style"} (Not a directory): computed for this run only']
