"""The command line's controls end to end: colour preservation, coarse-to-fine stages, style masks and scales."""
import csv

import numpy as np
import pytest
from PIL import Image

import neural_style
import stylize
from helpers import args, fails, save

# NTSC RGB -> YIQ, written out here rather than taken from the module under test.
YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
# The most that rounding RGB to integers moves I and Q: half a level times the sum of each row's magnitudes.
ROUNDING = 0.5 * np.abs(YIQ[1:]).sum(axis=1)


def yiq(image):
    return np.einsum('ij,hwj->hwi', YIQ, np.asarray(image, np.float64))


def read(path):
    with Image.open(path) as image:
        return np.asarray(image, np.float64)


@pytest.fixture
def photo(inputs):
    """A content image of moderate colours, so that few results leave the RGB cube when recoloured."""
    rng = np.random.default_rng(4)
    tint = np.array([40.0, -10.0, -30.0]) * np.linspace(-1, 1, 40)[None, :, None]
    image = np.clip(128 + tint + rng.normal(0, 20, (30, 40, 3)), 0, 255)
    inputs['content'] = save(inputs['dir'] / 'photo.png', image)
    return read(inputs['content'])


def assert_chroma_kept(output, content):
    """The output's I and Q are the content's, up to rounding, wherever no channel was clipped."""
    inside = np.all((output > 0) & (output < 255), axis=2)
    assert inside.mean() > 0.8
    difference = np.abs(yiq(output) - yiq(content))[inside]
    assert np.all(difference[:, 1:] <= ROUNDING + 1e-6)
    return inside


def test_luminance_and_post_keep_the_contents_chroma(inputs, photo):
    extra = ['--max-size', '40', '--style-layers', 'relu1_1', '--content-layers', 'relu1_2']
    for mode in ('luminance', 'post'):
        assert neural_style.main(args(inputs, '--preserve-colors', mode, *extra, output=f'{mode}.png')) == 0
        assert_chroma_kept(read(inputs['dir'] / f'{mode}.png'), photo)
    # post only recolours: its luminance is the luminance of the same run without colour preservation
    assert neural_style.main(args(inputs, *extra, output='plain.png')) == 0
    inside = assert_chroma_kept(read(inputs['dir'] / 'post.png'), photo)
    plain_luminance = yiq(read(inputs['dir'] / 'plain.png'))[:, :, 0]
    np.testing.assert_allclose(yiq(read(inputs['dir'] / 'post.png'))[:, :, 0][inside], plain_luminance[inside],
                               atol=1.0)


@pytest.fixture
def captured(monkeypatch):
    """stylize.stylize replaced by a recorder of what the command line hands it (no optimization)."""
    calls = []

    def fake(net, content, styles, settings, **options):
        calls.append(dict(content=content, styles=styles, **options))
        yield stylize.Progress(iteration=settings.iterations, content=0.0, style=0.0, tv=0.0, total=0.0,
                               seconds=0.0, evaluations=0, best_total=0.0,
                               best_image=np.asarray(content, np.float32))

    monkeypatch.setattr(stylize, 'stylize', fake)
    return calls


def test_luminance_shows_the_network_grey_images_with_matched_luminance(inputs, photo, captured):
    assert neural_style.main(args(inputs, '--preserve-colors', 'luminance', '--max-size', '40')) == 0
    (call,) = captured
    for image in [call['content']] + call['styles']:
        np.testing.assert_allclose(yiq(image)[:, :, 1:], 0.0, atol=1e-3)  # grey: no chroma
    np.testing.assert_allclose(call['content'][:, :, 0], yiq(photo)[:, :, 0], atol=1e-3)
    # The style is 25x25 here, scaled to the output's width afterwards; its luminance statistics were matched
    # at its own size, so after the resize they are the content's up to the resampling.
    style_luminance = call['styles'][0][:, :, 0]
    assert style_luminance.mean() == pytest.approx(yiq(photo)[:, :, 0].mean(), abs=1.0)
    assert style_luminance.std() == pytest.approx(yiq(photo)[:, :, 0].std(), rel=0.1)


def test_histogram_matches_the_style_colours_before_the_run(inputs, photo, captured):
    assert neural_style.main(args(inputs, '--preserve-colors', 'histogram', '--max-size', '40',
                                  '--style-scales', '0.625')) == 0  # 25 px: the style keeps its own size
    style = captured[0]['styles'][0].reshape(-1, 3).astype(np.float64)
    target = photo.reshape(-1, 3)
    np.testing.assert_allclose(style.mean(axis=0), target.mean(axis=0), atol=3.0)  # clipping at 0 and 255
    np.testing.assert_allclose(np.cov(style.T, bias=True), np.cov(target.T, bias=True), rtol=0.1, atol=15)


def test_style_scales_are_per_style(inputs, captured):
    second = save(inputs['dir'] / 'second.png', np.full((10, 20, 3), 99, np.uint8))
    argv = args(inputs, '--max-size', '40', '--style-scales', '0.5', '2')
    argv[argv.index('--styles') + 1:argv.index('--styles') + 2] = [inputs['style'], second]
    assert neural_style.main(argv) == 0
    assert [s.shape[:2] for s in captured[0]['styles']] == [(20, 20), (40, 80)]  # widths 0.5 and 2 times 40


def test_stages_and_masks_end_to_end(inputs):
    left = np.zeros((30, 40), np.uint8)
    left[:, :20] = 255
    masks = [save(inputs['dir'] / 'left.png', left, 'L'), save(inputs['dir'] / 'right.png', 255 - left, 'L')]
    argv = args(inputs, '--scales', '16,32', '--iterations', '2,1', '--progress-write', str(inputs['dir'] / 'p.csv'),
                '--style-masks', *masks, '--checkpoint-output', str(inputs['dir'] / 'c%s.png'),
                '--checkpoint-iterations', '1')
    argv[argv.index('--styles') + 1:argv.index('--styles') + 2] = [inputs['style'], inputs['content']]
    assert neural_style.main(argv) == 0
    with Image.open(inputs['dir'] / 'out.png') as image:
        assert image.size == (32, 24)
    with open(inputs['dir'] / 'p.csv') as f:
        rows = list(csv.reader(f))
    assert rows[0] == ['stage', 'iteration', 'content', 'style', 'tv', 'total', 'seconds']
    assert [(int(r[0]), int(r[1])) for r in rows[1:]] == [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1)]
    # checkpoints are numbered over all stages: stage 1's 16 px images, then none at the end (the output)
    for number, size in ((1, (16, 12)), (2, (16, 12))):
        with Image.open(inputs['dir'] / f'c{number}.png') as image:
            assert image.size == size


@pytest.mark.parametrize('extra, expected', [
    (['--scales', '32,16'], 'from smallest to largest'),
    (['--scales', '16,0'], 'must be a positive integer'),
    (['--iterations', '2,1'], '--iterations has 2 values but there are no --scales'),
    (['--scales', '8,16,32', '--iterations', '1,2'], '--iterations has 2 values for 3 scales'),
    (['--scales', '16,32', '--width', '20'], 'leave out --width'),
    (['--style-masks', 'a.png', 'b.png'], '--style-masks has 2 values for 1 style images'),
    (['--preserve-colors', 'sepia'], "invalid choice: 'sepia'"),
])
def test_control_option_errors(inputs, capsys, extra, expected):
    assert expected in fails(args(inputs, *extra), capsys)


def test_unreadable_and_black_masks(inputs, capsys):
    (inputs['dir'] / 'mask.png').write_text('not an image')
    assert 'could not be read' in fails(args(inputs, '--style-masks', str(inputs['dir'] / 'mask.png')), capsys)
    black = save(inputs['dir'] / 'black.png', np.zeros((30, 40)), 'L')
    assert 'black everywhere' in fails(args(inputs, '--style-masks', black), capsys)
    assert 'does not exist' in fails(args(inputs, '--style-masks', str(inputs['dir'] / 'none.png')), capsys)
