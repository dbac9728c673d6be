"""Optical flow, warping and the consistency weights of flow.py, against references written here."""
import math

import numpy as np
import pytest

from styletransfer.media import flow


def bilinear_reference(image, x, y):
    """One pixel of a bilinear sample, from the four neighbours' weights written out."""
    height, width = image.shape[:2]
    left, top = min(int(math.floor(x)), width - 2), min(int(math.floor(y)), height - 2)
    a, b = x - left, y - top
    return ((1 - a) * (1 - b) * image[top, left] + a * (1 - b) * image[top, left + 1] +
            (1 - a) * b * image[top + 1, left] + a * b * image[top + 1, left + 1])


def test_warp_matches_a_bilinear_reference():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (9, 11, 3))
    displacement = rng.uniform(-3, 3, (9, 11, 2))
    warped, inside = flow.warp(image, displacement)
    for row in range(9):
        for column in range(11):
            x, y = column + displacement[row, column, 0], row + displacement[row, column, 1]
            assert inside[row, column] == (0 <= x <= 10 and 0 <= y <= 8)
            expected = bilinear_reference(image, min(max(x, 0), 10), min(max(y, 0), 8))  # outside: the border's
            np.testing.assert_allclose(warped[row, column], expected, rtol=1e-12, atol=1e-9)
    assert 0 < inside.mean() < 1  # both cases were exercised


def test_warping_by_an_integer_translation_is_exact():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (12, 15, 3)).astype(np.float64)
    dx, dy = 3, -2
    b = np.zeros_like(a)  # a's content moved by (dx, dy): b(p) = a(p - d)
    b[max(dy, 0):12 + min(dy, 0), max(dx, 0):15 + min(dx, 0)] = a[max(-dy, 0):12 - max(dy, 0),
                                                                   max(-dx, 0):15 - max(dx, 0)]
    displacement = np.broadcast_to(np.array([dx, dy], np.float32), (12, 15, 2))
    warped, inside = flow.warp(b, displacement)  # b brought back onto a's grid
    expected_inside = np.zeros((12, 15), bool)
    expected_inside[max(-dy, 0):12 - max(dy, 0), max(-dx, 0):15 - max(dx, 0)] = True
    np.testing.assert_array_equal(inside, expected_inside)
    np.testing.assert_array_equal(warped[inside], a[inside])


def cubic_polynomials(x, y):
    """Three cubic polynomials of the position, one per channel, spanning a few hundred levels."""
    return np.stack([0.002 * (x - 20) ** 3 + 0.05 * (y - 10) ** 2 + 0.001 * x * y * (x - 30),
                     0.5 * (x - 25) ** 2 - 0.3 * y ** 2 + 0.2 * x * y, 0.001 * y ** 3 + 0.003 * x ** 2 * y], axis=2)


def test_cubic_warp_reproduces_cubic_polynomials_away_from_the_borders():
    """Interpolating cubic B-splines reproduce polynomials up to degree 3 exactly on an unbounded grid; the
    border's influence decays by 0.27 a pixel, so 12 px in it is below 1e-5 of the range. Bilinear
    interpolation errs by a tenth of a level on the same field, which the test would see."""
    y, x = np.mgrid[0:40, 0:52].astype(np.float64)
    displacement = np.stack([0.37 + 0.3 * np.sin(x / 7), -0.61 + 0.3 * np.cos(y / 5)], axis=2)  # sub-pixel, varying
    expected = cubic_polynomials(x + displacement[:, :, 0], y + displacement[:, :, 1])
    interior = (slice(12, -12), slice(12, -12))
    errors = {interpolation: np.abs(flow.warp(cubic_polynomials(x, y), displacement, interpolation)[0] - expected)
              [interior].max() for interpolation in flow.INTERPOLATIONS}
    assert errors['cubic'] < 1e-5 * np.ptp(expected)
    assert errors['bilinear'] > 0.05


def sharp_sinusoids(height, width, dx):
    """A grey texture of 30 plane waves of up to 1.5 radians a pixel, its content moved by dx."""
    rng = np.random.default_rng(2)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    texture = sum(np.cos(fx * (x - dx) + fy * y + phase)
                  for fx, fy, phase in zip(*rng.uniform(-1.5, 1.5, (2, 30)), rng.uniform(0, 2 * np.pi, 30)))
    return (128 + 100 * texture / 12)[:, :, None]


def test_repeated_cubic_warps_keep_a_texture_sharp():
    """A video warps each stylized frame onto the next: ten half-pixel warps (the worst case), there and back,
    keep a fine texture's mean gradient above 0.9 of the exact texture's with cubic B-splines; bilinear
    interpolation halves it."""
    exact = sharp_sinusoids(40, 52, 0.0)
    half = np.broadcast_to(np.array([0.5, 0.0]), (40, 52, 2))

    def gradient(image):
        return np.hypot(*np.gradient(image[:, :, 0]))[12:-12, 12:-12].mean()

    kept = {}
    for interpolation in flow.INTERPOLATIONS:
        image = exact
        for _ in range(5):
            image = flow.warp(flow.warp(image, half, interpolation)[0], -half, interpolation)[0]
        kept[interpolation] = gradient(image) / gradient(exact)
    assert kept['cubic'] > 0.9
    assert kept['bilinear'] < 0.6


def sinusoids(height, width, dx, dy, seed=0):
    """A grey texture of 30 plane waves, its content moved by (dx, dy): exact at any sub-pixel offset."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    texture = sum(np.cos(fx * (x - dx) + fy * (y - dy) + phase)
                  for fx, fy, phase in zip(*rng.uniform(-0.5, 0.5, (2, 30)), rng.uniform(0, 2 * np.pi, 30)))
    return np.repeat((128 + 100 * texture / 12)[:, :, None], 3, axis=2)


@pytest.mark.parametrize('method', flow.FLOW_METHODS)
@pytest.mark.parametrize('dx, dy', [(0.3, -0.6), (1.7, 0.45), (-2.25, 1.1)])
def test_flow_of_a_translated_texture_is_within_a_quarter_pixel(method, dx, dy):
    a, b = sinusoids(64, 80, 0, 0), sinusoids(64, 80, dx, dy)
    estimated = flow.optical_flow(a, b, method)
    assert estimated.shape == (64, 80, 2)
    error = np.hypot(estimated[..., 0] - dx, estimated[..., 1] - dy)[12:-12, 12:-12]  # away from the borders
    assert error.max() < 0.25


def occlusion_scene(shift=4):
    """A textured square moving `shift` px right over a static textured background: frames (previous,
    current), the true flows of current -> previous and previous -> current, and where the square was."""
    rng = np.random.default_rng(2)
    background = rng.uniform(0, 255, (32, 40, 3))
    square = rng.uniform(0, 255, (10, 10, 3))
    previous, current = background.copy(), background.copy()
    previous[10:20, 10:20] = square
    current[10:20, 10 + shift:20 + shift] = square
    backward, forward = np.zeros((32, 40, 2)), np.zeros((32, 40, 2))
    backward[10:20, 10 + shift:20 + shift, 0] = -shift
    forward[10:20, 10:20, 0] = shift
    disoccluded = np.zeros((32, 40), bool)
    disoccluded[10:20, 10:10 + shift] = True  # covered by the square before, background now
    return previous, current, backward, forward, disoccluded


def far_from(region, distance):
    """Pixels at more than `distance` (chessboard) from any pixel of region."""
    from scipy.ndimage import binary_dilation
    return ~binary_dilation(region, np.ones((2 * distance + 1, 2 * distance + 1), bool))


def test_consistency_is_zero_where_disoccluded_and_one_away_from_it():
    _, _, backward, forward, disoccluded = occlusion_scene()
    c = flow.consistency(backward, forward)
    assert c.shape == (32, 40) and c.dtype == np.float32
    assert np.all(c[disoccluded] == 0)
    moving = np.zeros((32, 40), bool)
    moving[10:20, 10:24] = True  # the square's path: its edges are motion boundaries
    away = far_from(moving, 3)
    assert np.all(c[away] == 1)
    assert np.all(c[14:16, 17:21] == 1)  # inside the moving square, away from its edges: the flows agree
    # Without the forward-backward check the disoccluded strip would count as consistent: the test can fail.
    unchecked = flow.consistency(backward, -flow.warp(backward, backward)[0])
    assert unchecked[disoccluded].mean() > 0.5


def test_consistency_from_estimated_flow_marks_the_disocclusion():
    """The same with DIS's flows on smooth textures (DIS needs some structure to match)."""
    from scipy.ndimage import gaussian_filter
    rng = np.random.default_rng(4)
    background, square = (gaussian_filter(rng.uniform(0, 255, shape), (1, 1, 0)) for shape in ((64, 80, 3),
                                                                                              (20, 20, 3)))
    background, square = ((x - x.min()) / (x.max() - x.min()) * 255 for x in (background, square))
    previous, current = background.copy(), background.copy()
    previous[20:40, 20:40] = square
    current[20:40, 24:44] = square
    c = flow.consistency(flow.optical_flow(current, previous), flow.optical_flow(previous, current))
    disoccluded, moving = np.zeros((64, 80), bool), np.zeros((64, 80), bool)
    disoccluded[20:40, 20:24] = True
    moving[20:40, 20:44] = True
    assert c[disoccluded].mean() < 0.25
    assert c[far_from(moving, 4)].mean() > 0.9


def test_pixels_whose_flow_leaves_the_frame_get_zero():
    backward = np.zeros((16, 20, 2))
    backward[..., 0] = 5.0  # everything seen 5 px to the right in the other frame
    forward = -backward
    c = flow.consistency(backward, forward)
    assert np.all(c[:, 17:] == 0)  # x + 5 > 19: outside; the blur spreads the ones 2 px at most
    assert np.all(c[:, :13] == 1)


def test_long_term_weights_take_the_closest_frame_first():
    rng = np.random.default_rng(3)
    c = [rng.uniform(0, 1, (4, 5)) for _ in range(3)]
    c_long = flow.long_term_weights(c)
    np.testing.assert_allclose(c_long[0], c[0], rtol=1e-6)
    np.testing.assert_allclose(c_long[1], np.maximum(c[1] - c[0], 0), rtol=1e-6)
    np.testing.assert_allclose(c_long[2], np.maximum(c[2] - c[0] - c[1], 0), rtol=1e-6)
    binary = [np.array([[1, 0, 0, 1]]), np.array([[1, 1, 0, 0]]), np.array([[1, 1, 1, 0]])]
    np.testing.assert_array_equal(flow.long_term_weights(binary),
                                  [[[1, 0, 0, 1]], [[0, 1, 0, 0]], [[0, 0, 1, 0]]])
