"""Exact tiled evaluation (tiling.py): the receptive field against a brute-force measurement, every loss term
and the gradient against the untiled graph, and the comparison failing when the halo or the alignment is
broken."""
import csv
import os
import re
import sys

import numpy as np
import pytest

import neural_style
import stylize
import vgg
from styletransfer.method import losses, tiling
from helpers import ROOT, as_settings, graph_terms, objective_settings, random_image, side_by_side, write_inputs

EXACT = 1e-5  # float32 sums taken in another order


# The receptive field

def brute_force_reach(net, layer, stride):
    """(before, after) of `layer` measured on the network: perturb one input pixel at a time, at every offset
    within a stride, and see which output columns change. In float64, whose convolutions leave the outputs
    outside a pixel's reach bit for bit unchanged."""
    import tensorflow.compat.v1 as tf
    height, width = stride, 192
    image = vgg.preprocess(random_image(height, width, seed=11), net.mean_pixel)
    offsets = range(88, 88 + stride)  # far enough from the borders for the field of relu5_1 (86 px)
    batch = np.repeat(image[None], len(offsets) + 1, axis=0).astype(np.float64)
    for k, p in enumerate(offsets, start=1):
        batch[k, height // 2, p] += 50.0
    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float64, batch.shape)
        output = vgg.build_network(net, x, layer, 'avg', 'float64')[layer]
    with tf.Session(graph=graph) as session:
        features = session.run(output, {x: batch})
    before = after = -np.inf
    for k, p in enumerate(offsets, start=1):
        columns = np.nonzero(np.any(features[k] != features[0], axis=(0, 2)))[0]
        assert len(columns)
        # Column j, owning input pixels stride*j .. stride*j + stride - 1, sees p when
        # stride*j - before <= p <= stride*j + stride - 1 + after.
        before = max(before, stride * columns.max() - p)
        after = max(after, p - stride * columns.min() - stride + 1)
    return before, after


@pytest.mark.parametrize('layer', ['relu2_1', 'pool3', 'relu5_1'])
def test_reach_and_alignment_match_a_brute_force_measurement(net, layer):
    stride = tiling.alignment(layer)
    assert stride == 2 ** sum(name.startswith('pool') for name in vgg.layers_up_to(layer))
    assert tiling.reach(layer) == brute_force_reach(net, layer, stride)


def test_the_default_layers_field_halo_and_alignment():
    assert tiling.alignment('relu5_1') == 16  # four poolings before conv5_1
    assert 2 * max(tiling.reach('relu5_1')) + 16 == 156  # the width of relu5_1's receptive field
    assert tiling.halo('relu5_1') == 80  # 70 px, rounded up to the alignment


@pytest.mark.parametrize('height, width, size', [(203, 157, 64), (96, 64, 32), (40, 30, 256)])
def test_tiles_own_every_pixel_once_and_crops_are_aligned(height, width, size):
    tiles = tiling.make_tiles(height, width, size, 'relu5_1')
    owned = np.zeros((height, width), int)
    for tile in tiles:
        top, left, bottom, right = tile.own
        owned[top:bottom, left:right] += 1
        crop_top, crop_left, crop_bottom, crop_right = tile.crop
        assert crop_top % 16 == 0 and crop_left % 16 == 0
        assert crop_top == max(0, top - 80) and crop_bottom == min(height, bottom + 80)
        assert crop_left == max(0, left - 80) and crop_right == min(width, right + 80)
    assert np.all(owned == 1)
    with pytest.raises(ValueError, match='multiple of 16'):
        tiling.make_tiles(height, width, 40, 'relu5_1')


# Tiled against untiled

def tiled_terms(net, x, content, styles, settings, tile_size, masks=None, **overrides):
    """The tiled objective's terms and gradient at x (RGB 0..255), its targets computed tile by tile, and the
    targets: (terms, gradient, P, [A per style])."""
    content_weights, style_weights = settings['content_layer_weights'], settings['style_layer_weights']
    guides = None if masks is None else [losses.layer_guides(mask, style_weights) for mask in masks]
    network = tiling.TileNetwork(net, {name: settings['content_weight'] * w for name, w in content_weights.items()},
                                 list(style_weights), guided=len(styles) if masks else 0,
                                 pooling=settings['pooling'], padding=settings['padding'], dtype='float32',
                                 device='/cpu:0')

    def tiles(image):
        return tiling.make_tiles(*image.shape[:2], tile_size, network.deepest, **overrides)

    def preprocessed(image):
        return vgg.preprocess(image, net.mean_pixel)[None]

    try:
        P = tiling.image_targets([network], tiles(content), preprocessed(content))[0]
        A = [tiling.image_targets([network], tiles(style), preprocessed(style))[1:] for style in styles]
        objective = tiling.TiledObjective(
            [network], tiles(x), P, [{name: (grams[name], M[name]) for name in style_weights} for grams, M in A],
            as_settings(settings), style_guides=guides)
        terms, gradient = objective.evaluate(preprocessed(x))
    finally:
        network.close()
    return terms, gradient, P, [grams for grams, _ in A]


def untiled_terms(net, x, content, styles, settings, masks=None):
    if masks is not None:
        settings = dict(settings, style_guides=[losses.layer_guides(m, settings['style_layer_weights'])
                                                for m in masks])
    return graph_terms(net, x, content, styles, settings)(x)


def differences(tiled, untiled):
    """The relative difference of every loss term and of the gradient (largest element against the largest)."""
    (terms, gradient), (expected, expected_gradient) = tiled, untiled
    out = {name: abs(terms[name] / expected[name] - 1) for name in expected if expected[name]}
    out['gradient'] = np.abs(gradient - expected_gradient).max() / np.abs(expected_gradient).max()
    return out


@pytest.fixture(scope='module')
def default_case(net):
    """The paper's layers at an odd size, a style image of another size: the untiled terms and gradient."""
    x, content, style = random_image(203, 157, seed=4), random_image(203, 157, seed=1), random_image(120, 140, 2)
    settings = objective_settings()
    return x, content, style, settings, untiled_terms(net, x, content, [style], settings)


def test_tiled_equals_untiled_with_the_papers_layers(net, default_case):
    """96 px tiles divide neither side of 203x157; the halo (80 px) cuts every crop. The targets, tile by
    tile, equal layer_features'."""
    x, content, style, settings, untiled = default_case
    terms, gradient, P, A = tiled_terms(net, x, content, [style], settings, 96)
    errors = differences((terms, gradient), untiled)
    assert max(errors.values()) < EXACT, errors
    (P_untiled, _, _), (_, A_untiled, _) = losses.layer_features(
        net, [content, style], ['relu4_2'], list(stylize.STYLE_LAYERS), 'avg', 'zero', '/cpu:0')
    np.testing.assert_allclose(P['relu4_2'], P_untiled['relu4_2'], rtol=EXACT, atol=EXACT * P_untiled['relu4_2'].max())
    for name in stylize.STYLE_LAYERS:
        np.testing.assert_allclose(A[0][name], A_untiled[name], rtol=EXACT, atol=EXACT * np.abs(A_untiled[name]).max())


@pytest.mark.parametrize('break_it', ['halo one alignment step short', 'origin off the alignment'])
def test_the_comparison_fails_when_the_exactness_argument_is_broken(net, default_case, break_it):
    x, content, style, settings, untiled = default_case
    halo, step = tiling.halo('relu5_1'), tiling.alignment('relu5_1')
    override = {'margin': halo - step} if break_it.startswith('halo') else {'origin': step // 2}
    terms, gradient, _, _ = tiled_terms(net, x, content, [style], settings, 96, **override)
    errors = differences((terms, gradient), untiled)
    assert max(errors.values()) > 10 * EXACT, errors


@pytest.mark.parametrize('size, tile_size, changes, masks', [
    # Several content layers, two styles blended 3:1, max pooling, TV (down to relu4_2: alignment 8, halo 48).
    ((161, 299), 64, dict(content_layer_weights={'relu2_2': 0.3, 'relu4_2': 0.7}, style_blend_weights=[3.0, 1.0],
                          style_layer_weights={'relu1_1': 1.0, 'relu3_1': 1.0, 'relu4_1': 0.5}, pooling='max',
                          tv_weight=0.5), None),
    # A tile size that divides the image (alignment 4 for relu3_1), guided Grams with two masks, TV.
    ((96, 128), 32, dict(content_layer_weights={'relu2_2': 1.0}, style_blend_weights=[1.0, 2.0], tv_weight=0.1,
                         style_layer_weights={'relu1_1': 0.5, 'relu2_1': 1.0, 'relu3_1': 2.0}), 'masks'),
    # Mirrored padding: exact too, a crop's edge on the image's border padded as the image is.
    ((161, 150), 64, dict(padding='reflect', tv_weight=0.5), None),
    # One tile larger than the image: the untiled computation.
    ((45, 37), 256, {}, None),
])
def test_tiled_equals_untiled(net, size, tile_size, changes, masks):
    height, width = size
    x, content = random_image(height, width, seed=4), random_image(height, width, seed=1)
    styles = [random_image(70, 90, seed=2), random_image(height, width, seed=3)]
    settings = objective_settings(**changes)
    styles = styles[:len(settings['style_blend_weights'])]
    if masks:
        rng = np.random.default_rng(5)
        left = np.zeros(size)
        left[:, :width // 3] = 1.0
        masks = [np.clip(left + 0.2 * rng.uniform(size=size), 0, 1), 1.0 - left]
    untiled = untiled_terms(net, x, content, styles, settings, masks)
    terms, gradient, _, _ = tiled_terms(net, x, content, styles, settings, tile_size, masks)
    errors = differences((terms, gradient), untiled)
    assert max(errors.values()) < EXACT, errors


# The command line, tiled

SHALLOW = ['--content-layers', 'relu2_2', '--style-layers', 'relu1_1', 'relu2_1', 'relu3_1', '--device', '/cpu:0',
           '--seed', '0']  # alignment 4, halo 12: 8 px tiles cut the 30x40 image into 20 crops


def read_rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize('optimizer', ['lbfgs', 'adam'])
def test_a_tiled_run_repeats_the_untiled_one(inputs, capsys, optimizer):
    """Five iterations from the same seed: the progress CSVs agree to 1e-4 (L-BFGS's steps depend on the
    gradient, so the small differences of the sums' order grow a little from iteration to iteration)."""
    rows = {}
    for tiled in (False, True):
        name = 'tiled' if tiled else 'untiled'
        argv = ['--content', inputs['content'], '--styles', inputs['style'], '--network', inputs['network'],
                '--output', str(inputs['dir'] / f'{name}.png'), '--progress-write', str(inputs['dir'] / f'{name}.csv'),
                '--iterations', '5', '--optimizer', optimizer, '--tv-weight', '1'] + SHALLOW
        assert neural_style.main(argv + (['--tile-size', '8'] if tiled else [])) == 0
        out = capsys.readouterr().out
        plan = ', tiled, 20 tiles of 8 px with a 12 px halo, ' if tiled else ', untiled, '
        assert re.search(r'^40x30: beta [^\n]*' + re.escape(plan), out, re.M), out
        rows[name] = read_rows(inputs['dir'] / f'{name}.csv')
    assert len(rows['tiled']) == len(rows['untiled']) == 6
    for tiled, untiled in zip(rows['tiled'], rows['untiled']):
        for term in ('content', 'style', 'tv', 'total'):
            assert float(tiled[term]) == pytest.approx(float(untiled[term]), rel=1e-4), (tiled, untiled)


def test_a_tile_size_off_the_alignment_is_one_sentence(inputs, capsys):
    argv = ['--content', inputs['content'], '--styles', inputs['style'], '--network', inputs['network'],
            '--output', str(inputs['dir'] / 'out.png'), '--tile-size', '100']
    assert neural_style.main(argv) == 1
    assert capsys.readouterr().err.strip() == ('neural_style.py: error: --tile-size 100 is not a multiple of 16, '
                                               'the stride of relu5_1 (the deepest loss layer)')


def test_a_tile_covering_the_image_is_no_tiling():
    """--tile-size larger than a stage evaluates that stage untiled (one pass, not two); smaller, tiled."""
    layers = dict(optimizer='lbfgs', lbfgs_history=10)
    for shape, expected in (((341, 512), None), ((681, 1024), None), ((1362, 2048), 1024), ((1024, 1040), 1024)):
        chosen = tiling.plan(shape, ['relu4_2'], stylize.STYLE_LAYERS, tile_size=1024, max_memory=None, **layers)
        assert chosen.tile_size == expected, shape


def test_automatic_tiling_takes_the_largest_tile_that_fits():
    layers = dict(optimizer='adam', lbfgs_history=10)
    untiled = tiling.estimate_peak(3072, 4096, ['relu4_2'], list(stylize.STYLE_LAYERS), None, **layers)
    assert tiling.plan((3072, 4096), ['relu4_2'], stylize.STYLE_LAYERS, tile_size=None, max_memory=untiled,
                       **layers).tile_size is None
    budget = 5e9
    chosen = tiling.plan((3072, 4096), ['relu4_2'], stylize.STYLE_LAYERS, tile_size=None, max_memory=budget, **layers)
    assert chosen.peak <= budget < tiling.estimate_peak(3072, 4096, ['relu4_2'], list(stylize.STYLE_LAYERS),
                                                         chosen.tile_size + 16, **layers)
    assert tiling.plan((384, 512), ['relu4_2'], stylize.STYLE_LAYERS, tile_size=None, max_memory=None,
                       **layers).tile_size is None  # no budget, no tile size: untiled, as before


def peak_rss_of_runs(commands):
    """(the estimate printed in the set-up line, the measured peak RSS), both in bytes, of each run, the runs side
    by side, each in a fresh process."""
    # VmHWM, not getrusage's ru_maxrss, which keeps the forking parent's size across exec.
    program = ('import runpy, sys; sys.argv = sys.argv[1:]\n'
               'try:\n    runpy.run_path(sys.argv[0], run_name="__main__")\n'
               'except SystemExit as exit:\n    assert not exit.code\n'
               'with open("/proc/self/status") as f:\n'
               '    print("peak", next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM")))')
    results = []
    for status, out, err in side_by_side([[sys.executable, '-c', program, os.path.join(ROOT, 'neural_style.py')] + argv
                                          for argv in commands], timeout=600):
        assert status == 0, err[-2000:]
        estimate = float(re.search(r'estimated peak memory ([\d.]+) GB', out).group(1)) * 1e9
        results.append((estimate, int(re.search(r'^peak (\d+)$', out, re.M).group(1))))
    return results


MEASURED_OPTIONS = [
    ['--width', '64', '--optimizer', 'adam'],
    ['--width', '128', '--tile-size', '64', '--optimizer', 'adam'],
    ['--width', '128', '--tile-size', '64', '--optimizer', 'lbfgs'],
]


@pytest.fixture(scope='module')
def measured_runs(tmp_path_factory, network_path):
    """Options (a tuple) -> (estimate, measured peak) of a run with each of MEASURED_OPTIONS, on the inputs
    fixture's images; from a filled weights cache, so that every run loads the network from it, as any run but
    the first does."""
    inputs = write_inputs(tmp_path_factory.mktemp('measured'), network_path)
    vgg.load_net_cached(network_path, vgg.converted_cache_dir())
    commands = [['--content', inputs['content'], '--styles', inputs['style'], '--network', network_path, '--output',
                 str(inputs['dir'] / f'out{index}.png'), '--iterations', '2', '--seed', '0'] + options
                for index, options in enumerate(MEASURED_OPTIONS)]
    return dict(zip(map(tuple, MEASURED_OPTIONS), peak_rss_of_runs(commands)))


@pytest.mark.parametrize('options', MEASURED_OPTIONS)
def test_the_memory_estimate_bounds_the_measured_peak_tiled_and_untiled(measured_runs, options):
    """An upper bound, at most a quarter over the peak, so that a run is tiled when it must be and not far sooner."""
    estimate, measured = measured_runs[tuple(options)]
    assert measured <= estimate <= 1.25 * measured, (estimate, measured)
