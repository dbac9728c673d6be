"""Colour preservation (arXiv 1606.05897) on synthetic images, against statistics computed here with NumPy."""
import numpy as np
import pytest

from styletransfer.media import colors

# NTSC RGB -> YIQ, written out here rather than taken from the module under test.
YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def yiq(image):
    return np.einsum('ij,hwj->hwi', YIQ, np.asarray(image, np.float64))


def correlated_image(seed, mean, mixing, shape=(40, 50)):
    """Pixels mean + mixing @ standard normal: colours with a chosen mean and covariance mixing mixing'."""
    rng = np.random.default_rng(seed)
    return (np.asarray(mean) + rng.normal(size=shape + (3,)) @ np.asarray(mixing).T).astype(np.float32)


@pytest.fixture
def content():
    return correlated_image(1, [120, 100, 80], [[20, 0, 0], [12, 10, 0], [5, 4, 8]])


@pytest.fixture
def style():
    return correlated_image(2, [60, 90, 170], [[6, 0, 0], [-3, 15, 0], [2, -6, 25]])


def test_histogram_matching_gives_the_style_the_contents_mean_and_covariance(content, style):
    matched = colors.match_histogram(style, content)
    assert matched.min() > 0 and matched.max() < 255  # the images are chosen so that nothing is clipped
    pixels, target = matched.reshape(-1, 3).astype(np.float64), content.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(pixels.mean(axis=0), target.mean(axis=0), atol=1e-3)
    # The covariance is the content's up to the tiny regularizer added to both (COVARIANCE_EPSILON).
    np.testing.assert_allclose(np.cov(pixels.T, bias=True), np.cov(target.T, bias=True), rtol=1e-4, atol=1e-3)
    # A linear map of the style's pixels: an affine least-squares fit reproduces the result exactly.
    design = np.hstack([style.reshape(-1, 3), np.ones((pixels.shape[0], 1))])
    fit = np.linalg.lstsq(design, pixels, rcond=None)[0]
    np.testing.assert_allclose(design @ fit, pixels, atol=1e-3)


def test_histogram_matching_of_a_flat_style_does_not_fail(content):
    flat = np.full((10, 12, 3), 90.0, np.float32)
    matched = colors.match_histogram(flat, content)
    np.testing.assert_allclose(matched, np.broadcast_to(content.reshape(-1, 3).mean(axis=0), matched.shape),
                               atol=1e-3)


def test_luminance_matching_is_grey_with_the_contents_luminance_statistics(content, style):
    grey = colors.match_luminance(style, content)
    np.testing.assert_array_equal(grey[:, :, 0], grey[:, :, 1])
    np.testing.assert_array_equal(grey[:, :, 0], grey[:, :, 2])
    L, target = grey[:, :, 0].astype(np.float64), yiq(content)[:, :, 0]
    assert L.mean() == pytest.approx(target.mean(), abs=1e-3)
    assert L.std() == pytest.approx(target.std(), rel=1e-4)
    # an increasing affine function of the style's own luminance
    assert np.corrcoef(L.ravel(), yiq(style)[:, :, 0].ravel())[0, 1] == pytest.approx(1.0, abs=1e-6)


def test_grey_images_have_no_chroma(content):
    grey_yiq = yiq(colors.luminance_image(content))
    np.testing.assert_allclose(grey_yiq[:, :, 1:], 0.0, atol=1e-4)
    np.testing.assert_allclose(grey_yiq[:, :, 0], yiq(content)[:, :, 0], atol=1e-3)


def test_luminance_transfer_keeps_the_contents_chroma_exactly(content, style):
    result = colors.transfer_luminance(style, content)
    inside = np.all((result > 0) & (result < 255), axis=2)  # the clip to 0..255 changes clipped pixels only
    assert inside.mean() > 0.95
    np.testing.assert_allclose(yiq(result)[inside][:, 1:], yiq(content)[inside][:, 1:], atol=1e-3)
    np.testing.assert_allclose(yiq(result)[inside][:, 0], yiq(style)[inside][:, 0], atol=1e-3)
