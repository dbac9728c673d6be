"""Winograd's F(4x4, 3x3) against direct summation in float64 (reference.conv3x3, loops over kernel offsets)."""
import numpy as np
import pytest

import reference
from styletransfer.network import winograd

TOLERANCE = 1e-5  # of the output's largest value; measured 2e-7 to 2.3e-6 in these cases


def convolved(x, kernel, padding):
    import tensorflow.compat.v1 as tf
    graph = tf.Graph()
    with graph.as_default():
        image = tf.placeholder(tf.float32, [1, None, None, x.shape[-1]])
        y = winograd.conv3x3(image, tf.constant(winograd.transformed_kernel(kernel)), padding)
    with tf.Session(graph=graph) as session:
        return session.run(y, {image: x[None].astype(np.float32)})[0]


def direct(x, kernel, padding):
    """reference.conv3x3 takes MatConvNet's [width, height, in, out]; VALID is SAME's output without its border."""
    out = reference.conv3x3(x.astype(np.float64), np.transpose(kernel, (1, 0, 2, 3)), np.zeros(kernel.shape[3]))
    return out if padding == 'SAME' else out[1:-1, 1:-1]


def error(x, kernel, padding):
    expected = direct(x, kernel, padding)
    got = convolved(x, kernel, padding)
    assert got.shape == expected.shape
    return np.abs(got - expected).max() / np.abs(expected).max()


@pytest.fixture
def kernel():
    return np.random.default_rng(1).normal(size=(3, 3, 5, 7)).astype(np.float32)  # no symmetry


# Sizes of outputs that 4x4 blocks divide, that they do not (the last blocks reach past the edge), one block,
# one pixel.
OUTPUT_SIZES = [(8, 12), (13, 6), (4, 4), (1, 1), (3, 17)]


@pytest.mark.parametrize('padding, height, width', [('SAME', h, w) for h, w in OUTPUT_SIZES] +
                         [('VALID', h + 2, w + 2) for h, w in OUTPUT_SIZES])
def test_winograd_equals_direct_summation(kernel, padding, height, width):
    x = np.random.default_rng(2).normal(size=(height, width, 5))
    assert error(x, kernel, padding) < TOLERANCE


@pytest.mark.parametrize('break_it', ['the kernel flipped (correlation taken for convolution)',
                                      'one entry of G off by 0.1%'])
def test_the_comparison_fails_when_the_transforms_are_broken(kernel, monkeypatch, break_it):
    x = np.random.default_rng(2).normal(size=(13, 6, 5))
    if break_it.startswith('the kernel'):
        expected_kernel, kernel = kernel, kernel[::-1, ::-1]
    else:
        expected_kernel = kernel
        monkeypatch.setattr(winograd, 'G', winograd.G * np.where(np.arange(18).reshape(6, 3) == 10, 1.001, 1.0))
    got = convolved(x, kernel, 'SAME')
    expected = direct(x, expected_kernel, 'SAME')
    assert np.abs(got - expected).max() / np.abs(expected).max() > 10 * TOLERANCE


def test_the_transformed_kernel_is_g_g_gt_for_each_channel_pair(kernel):
    u = winograd.transformed_kernel(kernel).reshape(6, 6, 5, 7)
    for c, k in [(0, 0), (4, 6), (2, 3)]:
        np.testing.assert_allclose(u[:, :, c, k], winograd.G @ kernel[:, :, c, k] @ winograd.G.T, rtol=1e-6, atol=1e-6)
