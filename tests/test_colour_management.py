"""Colour management: inputs converted to sRGB from their embedded profile, outputs tagged sRGB, and
16-bit outputs."""
import io
import struct

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms

import neural_style
from styletransfer.media import images
from helpers import args, fails, random_image

# Adobe RGB (1998)'s primaries adapted to D50, as in Adobe's profile, and its gamma 563/256.
ADOBE_RGB_D50 = np.array([[0.60974, 0.20528, 0.14919], [0.31111, 0.62567, 0.06322], [0.01947, 0.06087, 0.74457]])
ADOBE_GAMMA = 563 / 256
SRGB_D50 = np.array([[0.43607, 0.38515, 0.14307], [0.22249, 0.71687, 0.06061], [0.01392, 0.09708, 0.71410]])


def adobe_rgb_profile():
    """An ICC v2 matrix/TRC display profile of Adobe RGB (1998), built tag by tag, then opened and written again
    by ImageCms."""
    def s15(value):
        return struct.pack('>i', round(value * 65536))

    def xyz(x, y, z):
        return b'XYZ \0\0\0\0' + s15(x) + s15(y) + s15(z)
    name = b'Adobe RGB (1998) test'
    curve = b'curv\0\0\0\0' + struct.pack('>IH', 1, round(ADOBE_GAMMA * 256)) + b'\0\0'
    tags = [(b'desc', b'desc\0\0\0\0' + struct.pack('>I', len(name) + 1) + name + b'\0' + b'\0' * 12 + b'\0' * 67),
            (b'cprt', b'text\0\0\0\0public domain\0\0\0'), (b'wtpt', xyz(0.9642, 1.0, 0.8249)),
            (b'rXYZ', xyz(*ADOBE_RGB_D50[:, 0])), (b'gXYZ', xyz(*ADOBE_RGB_D50[:, 1])),
            (b'bXYZ', xyz(*ADOBE_RGB_D50[:, 2])), (b'rTRC', curve), (b'gTRC', curve), (b'bTRC', curve)]
    offset, table, data = 128 + 4 + 12 * len(tags), b'', b''
    for signature, body in tags:
        body += b'\0' * (-len(body) % 4)
        table += signature + struct.pack('>II', offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack('>I', size) + b'\0' * 4 + bytes([2, 0x10, 0, 0]) + b'mntrRGB XYZ ' + b'\0' * 12 + b'acsp' +
              b'\0' * 24 + b'\0' * 4 + s15(0.9642) + s15(1.0) + s15(0.8249) + b'\0' * 48)
    assert len(header) == 128
    return ImageCms.ImageCmsProfile(io.BytesIO(header + struct.pack('>I', len(tags)) + table + data)).tobytes()


def srgb_by_hand(adobe):
    """Adobe RGB 8-bit pixels to sRGB 0..255 through XYZ (D50), written out: decode, two matrices, encode."""
    linear = (adobe / 255.0) ** ADOBE_GAMMA
    srgb = np.clip(linear @ (np.linalg.inv(SRGB_D50) @ ADOBE_RGB_D50).T, 0, 1)
    encoded = np.where(srgb <= 0.0031308, 12.92 * srgb, 1.055 * srgb ** (1 / 2.4) - 0.055)
    return encoded * 255


@pytest.fixture
def adobe(tmp_path):
    """A photograph of smooth colours in Adobe RGB, its profile embedded: (path, its pixels as stored)."""
    ramp = np.linspace(20, 235, 16)
    pixels = np.stack(np.broadcast_arrays(ramp[None, :], ramp[::-1, None] * 0.8, 128.0), axis=2).astype(np.uint8)
    path = str(tmp_path / 'adobe.png')
    Image.fromarray(pixels).save(path, icc_profile=adobe_rgb_profile())
    return path, pixels


def test_an_adobe_rgb_image_is_read_in_srgb_as_imagecms_converts_it(adobe):
    path, stored = adobe
    read = images.read_image(path)
    with Image.open(path) as image:
        expected = ImageCms.profileToProfile(image, ImageCms.ImageCmsProfile(io.BytesIO(image.info['icc_profile'])),
                                             ImageCms.createProfile('sRGB'), outputMode='RGB')
    np.testing.assert_array_equal(read, np.asarray(expected, np.float32))
    assert np.abs(read - stored).mean() > 5  # Adobe RGB's numbers are not sRGB's: a conversion that did nothing
    assert np.abs(read - srgb_by_hand(stored.astype(np.float64))).max() <= 2  # the colours, computed independently
    assert images.converted_profile(path) == 'Adobe RGB (1998) test'


def test_the_run_says_so_and_its_output_is_tagged_srgb(inputs, adobe, capsys):
    argv = args(inputs, '--iterations', '1', output='out.jpg')
    argv[argv.index('--content') + 1] = adobe[0]
    assert neural_style.main(argv) == 0
    assert f'colour: {adobe[0]} converted to sRGB from its profile, Adobe RGB (1998) test' in capsys.readouterr().out
    with Image.open(inputs['dir'] / 'out.jpg') as out:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(out.info['icc_profile']))
    assert ImageCms.getProfileDescription(profile).strip() == 'sRGB built-in'
    assert images.converted_profile(str(inputs['dir'] / 'out.jpg')) is None  # read back as it is


def test_a_profile_that_cannot_be_read_is_one_sentence(inputs, capsys):
    broken = str(inputs['dir'] / 'broken-profile.png')
    Image.fromarray(random_image(12, 16, seed=3).astype(np.uint8)).save(broken, icc_profile=b'not a profile' * 20)
    argv = args(inputs)
    argv[argv.index('--styles') + 1] = broken
    line = fails(argv, capsys)
    assert line.startswith(f'neural_style.py: error: image {broken} has a colour profile that cannot be read (')


@pytest.mark.parametrize('extension', ['.png', '.tif'])
def test_a_16_bit_output_keeps_the_float_image_to_1_in_65535(tmp_path, extension):
    image = random_image(6, 9, seed=4)
    image[0, :3] = [[0, 0, 0], [255, 255, 255], [127.4, 127.6, 0.3]]
    path = str(tmp_path / f'deep{extension}')
    images.write_image(path, image, {'Seed': '1'}, bit_depth=16)
    stored = cv2.imread(path, cv2.IMREAD_UNCHANGED)  # OpenCV's decoder, not ours
    assert stored.dtype == np.uint16 and stored.shape == (6, 9, 3)
    back = stored[:, :, ::-1] / 65535 * 255  # BGR
    assert np.abs(back - image).max() <= 0.5 / 65535 * 255 + 1e-9  # rounded to the nearest of 65536 levels
    assert images.read_settings(path) == {'Seed': '1'}
    with Image.open(path) as read:
        assert ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(read.info['icc_profile']))).strip() \
            == 'sRGB built-in'


def test_bit_depth_16_from_the_command_line(inputs, capsys):
    assert neural_style.main(args(inputs, '--bit-depth', '16', output='deep.png')) == 0
    stored = cv2.imread(str(inputs['dir'] / 'deep.png'), cv2.IMREAD_UNCHANGED)
    assert stored.dtype == np.uint16 and stored.shape == (30, 40, 3)
    assert np.any(stored % 257)  # not 8-bit values widened
    assert images.read_settings(str(inputs['dir'] / 'deep.png'))['Iterations'] == '3 of 3'
    assert 'writes a .png or .tif output, not' in fails(args(inputs, '--bit-depth', '16', output='deep.jpg'), capsys)
