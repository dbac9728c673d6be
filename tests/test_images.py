"""Property-based tests of the image helpers of neural_style.py: reading, sizing and resizing."""
import os
import tempfile

import numpy as np
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from styletransfer.media import images

sides = st.integers(1, 5000)
pixels = hnp.arrays(np.uint8, hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=9).map(
    lambda shape: shape[:2] + (3,)))


@given(height=sides, width=sides, max_size=st.integers(1, 2000))
def test_output_size_fits_max_size_keeps_aspect_and_never_scales_up(height, width, max_size):
    out_height, out_width = images.output_size((height, width, 3), None, max_size)
    if max(height, width) <= max_size:
        assert (out_height, out_width) == (height, width)
        return
    assert max(out_height, out_width) == max_size
    scale = max_size / max(height, width)
    for out, side in ((out_height, height), (out_width, width)):
        assert 1 <= out <= side
        assert abs(out - side * scale) <= 0.5 + 1e-9 or out == 1


@given(height=sides, width=sides, out_width=st.integers(1, 4000))
def test_output_size_with_a_width_has_that_width_and_the_aspect(height, width, out_width):
    out_height, got_width = images.output_size((height, width, 3), out_width, 512)
    assert got_width == out_width
    assert abs(out_height - height * out_width / width) <= 0.5 + 1e-9 or out_height == 1


@settings(deadline=None)
@given(image=pixels, height=st.integers(1, 12), width=st.integers(1, 12))
def test_resize_gives_the_size_asked_within_the_pixel_range(image, height, width):
    resized = images.resize(image.astype(np.float32), height, width)
    assert resized.shape == (height, width, 3) and resized.dtype == np.float32
    assert resized.min() >= 0 and resized.max() <= 255


@settings(deadline=None)
@given(colour=st.tuples(*[st.integers(0, 255)] * 3), shape=st.tuples(st.integers(1, 9), st.integers(1, 9)),
       height=st.integers(1, 12), width=st.integers(1, 12))
def test_resize_keeps_a_flat_colour(colour, shape, height, width):
    flat = np.broadcast_to(np.array(colour, np.float32), shape + (3,)).copy()
    np.testing.assert_allclose(images.resize(flat, height, width),
                               np.broadcast_to(np.array(colour, np.float32), (height, width, 3)), atol=0.01)


@given(image=pixels)
def test_resize_to_the_same_size_is_the_identity(image):
    image = image.astype(np.float32)
    np.testing.assert_array_equal(images.resize(image, *image.shape[:2]), image)


@settings(deadline=None)
@given(image=pixels, output_width=st.integers(1, 40), scale=st.floats(0.1, 3))
def test_scaled_style_width_is_the_scale_times_the_output_width(image, output_width, scale):
    styled = images.scaled_style(image.astype(np.float32), output_width, scale)
    height, width = image.shape[:2]
    assert abs(styled.shape[1] - scale * output_width) <= 0.5 + 1e-9 or styled.shape[1] == 1
    assert abs(styled.shape[0] - height * scale * output_width / width) <= 0.5 + 1e-9 or styled.shape[0] == 1


@settings(deadline=None)
@given(image=pixels, mode=st.sampled_from(['RGB', 'L', 'RGBA']), extension=st.sampled_from(['.png', '.bmp', '.tif']))
def test_lossless_files_read_back_exactly(image, mode, extension):
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, 'image' + extension)
        stored = Image.fromarray(image).convert(mode)
        stored.save(path)
        expected = np.asarray(stored.convert('RGB'), np.float32)  # L: grey in all three; RGBA: alpha dropped
        got = images.read_image(path)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


# What each EXIF orientation asks for, as an array operation on the stored pixels (the EXIF 2.3 definitions).
ORIENTATIONS = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: a[::-1, ::-1],  # rotated 180 degrees
    4: lambda a: a[::-1, :],  # mirrored top-bottom
    5: lambda a: a.transpose(1, 0, 2),  # transposed
    6: lambda a: np.rot90(a, -1),  # stored turned 90 degrees left: shown turned right
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),  # transversed
    8: lambda a: np.rot90(a, 1),
}


@settings(deadline=None)
@given(image=pixels, orientation=st.integers(1, 8))
def test_exif_orientation_is_honoured(image, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, 'image.png')
        Image.fromarray(image).save(path, exif=exif)
        got = images.read_image(path)
    np.testing.assert_array_equal(got, ORIENTATIONS[orientation](image).astype(np.float32))
