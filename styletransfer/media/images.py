"""Image files: read as RGB floats (in sRGB, from their colour profile), resized, written atomically (or rescued
beside their path) with the settings that made them and an sRGB profile inside, in 8 or 16 bits, and the output
paths checked before a run; the progress CSV. Images are float32 [height, width, 3] in 0..255 throughout."""
import csv
import functools
import io
import json
import os
import struct
import warnings
import zlib

import numpy as np

from styletransfer.media import files

MAX_MEGAPIXELS = 50  # larger images are refused before they are decoded: 50 MP is 600 MB as float32 RGB
PIXEL_RANGE = (0.0, 255.0)


class ImageError(Exception):
    """An image that cannot be read or written: one sentence for the user."""


# Reading

def read_image(path, max_megapixels=MAX_MEGAPIXELS):
    """An image file as RGB float32 [height, width, 3] in 0..255, in sRGB: an embedded colour profile other
    than sRGB is converted from (in_srgb); greyscale, palette, RGBA, CMYK and 16-bit images are converted, and
    the EXIF orientation is applied. An image of more than `max_megapixels` is refused from its header, before
    its pixels are decoded."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not os.path.exists(path):
        raise ImageError(f'image {path} does not exist')
    if os.path.isdir(path):
        raise ImageError(f'image {path} is a directory, not an image file')
    if os.path.getsize(path) == 0:
        raise ImageError(f'image {path} is empty')
    try:
        with open_image(path) as image:
            check_megapixels(f'image {path}', image.height, image.width, max_megapixels)
            profile = image.info.get('icc_profile')
            image = in_srgb(path, ImageOps.exif_transpose(image), profile)
            if image.mode in ('I', 'I;16', 'I;16B', 'I;16L'):  # 16-bit greyscale: scale, don't clip, to 8 bits
                grey = np.asarray(image, dtype=np.float64 if image.mode == 'I' else np.float32)
                if image.mode == 'I':  # 32-bit integers: 16-bit values in a wider container, or refused
                    _check_16_bit(path, grey)
                return np.repeat((grey / 257.0).astype(np.float32)[:, :, None], 3, axis=2)
            if image.mode == 'F':  # 32-bit float greyscale (TIFF): 0..1 is black to white
                return np.repeat(_float_grey(path, np.asarray(image, dtype=np.float32))[:, :, None], 3, axis=2)
            if image.mode != 'RGB':
                image = image.convert('RGBA' if 'transparency' in image.info else image.mode).convert('RGB')
            return np.asarray(image, dtype=np.float32)
    except Image.DecompressionBombError as error:
        raise ImageError(f'image {path} is too large to decode: {error}') from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise ImageError(f'image {path} could not be read: {error}') from None


# Colour: inputs converted to sRGB from their profile, outputs tagged sRGB

@functools.cache
def srgb_profile():
    """Little CMS's sRGB profile, as ImageCms opens it; outputs carry it (srgb_profile().tobytes())."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile('sRGB'))


def _profile(path, data):
    """The colour profile embedded in an image (bytes) opened, or ImageError: never a silent wrong colour."""
    from PIL import ImageCms

    try:
        return ImageCms.ImageCmsProfile(io.BytesIO(data))
    except (ImageCms.PyCMSError, OSError, ValueError) as error:
        raise ImageError(f'image {path} has a colour profile that cannot be read ({error}); convert the image to '
                         f'sRGB, or remove its profile, with an image editor') from None


def converted_profile(path):
    """The name of the colour profile an image is converted to sRGB from when read, or None (no profile, or an
    sRGB one); ImageError for a profile that cannot be read."""
    from PIL import ImageCms

    with open_image(path) as image:
        data = image.info.get('icc_profile')
    if not data:
        return None
    name = ImageCms.getProfileDescription(_profile(path, data)).strip()
    return None if 'sRGB' in name else name or 'unnamed'


def in_srgb(path, image, profile):
    """A Pillow image in its colour profile (bytes, or None: taken as sRGB) converted to sRGB with Little CMS
    (ImageCms, perceptual intent); one in sRGB already is returned as it is. RGB, greyscale and CMYK profiles
    are converted, with any alpha or palette dropped first."""
    from PIL import ImageCms

    if not profile:
        return image
    source = _profile(path, profile)
    if 'sRGB' in ImageCms.getProfileDescription(source):
        return image
    mode = {'RGBA': 'RGB', 'P': 'RGB', 'PA': 'RGB', 'LA': 'L', 'RGBX': 'RGB'}.get(image.mode, image.mode)
    if mode not in ('RGB', 'L', 'CMYK'):
        raise ImageError(f'image {path} has a colour profile on {image.mode} pixels, which cannot be converted to '
                         f'sRGB here; convert the image to 8-bit sRGB with an image editor')
    try:
        return ImageCms.profileToProfile(image.convert(mode), source, srgb_profile(), outputMode='RGB')
    except ImageCms.PyCMSError as error:
        raise ImageError(f'image {path} has a colour profile that does not fit its {mode} pixels ({error}); '
                         f'convert the image to sRGB with an image editor') from None


def _check_16_bit(path, grey):
    """A 32-bit integer greyscale image (mode I) is read as 16-bit (0..65535 black to white) when its values
    fit; any other range is ambiguous and refused."""
    if grey.size and (grey.min() < 0 or grey.max() > 65535):
        raise ImageError(f'image {path} holds 32-bit integer values from {grey.min():.0f} to {grey.max():.0f}; '
                         f'only 0..65535 (16-bit, black to white) is understood: convert it to 8 or 16 bits')


def _float_grey(path, grey):
    """A floating-point greyscale image in 0..1 scaled to 0..255; any other range is ambiguous and refused."""
    if not np.all(np.isfinite(grey)) or grey.min() < 0 or grey.max() > 1:
        raise ImageError(f'image {path} holds floating-point values from {np.nanmin(grey):g} to '
                         f'{np.nanmax(grey):g}; only 0..1 (black to white) is understood: convert it to 8 or '
                         f'16 bits')
    return grey * 255.0


def open_image(path):
    """Pillow's Image.open (which reads only the header), without its warning about large images:
    check_megapixels is the limit that counts."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter('ignore', Image.DecompressionBombWarning)
        return Image.open(path)


def is_still_image(path):
    """Whether Pillow reads the file as an image of one frame (an animated GIF has several)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open_image(path) as image:
            return getattr(image, 'n_frames', 1) == 1
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return False


def check_megapixels(what, height, width, max_megapixels):
    if height * width > max_megapixels * 1e6:
        raise ImageError(f'{what} is {width}x{height} pixels ({height * width / 1e6:.4g} megapixels), more than the '
                         f'limit of {max_megapixels:g} megapixels (--max-megapixels)')


# Sizes

def resize(image, height, width):
    """An RGB float image resized to height x width with Lanczos filtering."""
    from PIL import Image

    if image.shape[:2] == (height, width):
        return image
    channels = [Image.fromarray(image[:, :, c].astype(np.float32), mode='F').resize((width, height), Image.LANCZOS)
                for c in range(3)]
    return np.clip(np.stack([np.asarray(c) for c in channels], axis=2), *PIXEL_RANGE).astype(np.float32)


def output_size(shape, width, max_size):
    """(height, width) of the output: `width` wide if given, else the content's size with its longest side
    at most `max_size`; the aspect ratio is kept."""
    height_in, width_in = shape[:2]
    if width:
        scale = width / width_in
    else:
        scale = min(1.0, max_size / max(height_in, width_in))
    return max(1, round(height_in * scale)), max(1, round(width_in * scale))


def longest_side(shape, size):
    """(height, width) of an image of `shape` scaled, up or down, so that its longest side is `size`."""
    height, width = shape[:2]
    return max(1, round(height * size / max(height, width))), max(1, round(width * size / max(height, width)))


def scaled_style(style, output_width, style_scale):
    """The style image resized so that its width is `style_scale` times the output's (as in the peers)."""
    scale = style_scale * output_width / style.shape[1]
    return resize(style, max(1, round(style.shape[0] * scale)), max(1, round(style.shape[1] * scale)))


def mask_at(mask, height, width):
    """A mask image (RGB 0..255) resized to height x width: the weight 0..1 of each pixel, its grey level."""
    return resize(mask, height, width).mean(axis=2) / 255.0


# Writing

def to_uint8(image):
    """An RGB 0..255 float image as the 8-bit pixels written."""
    return np.clip(np.rint(image), *PIXEL_RANGE).astype(np.uint8)


def to_uint16(image):
    """An RGB 0..255 float image as 16-bit pixels, 0..65535: rounded to 1/65535 of the range, not to 1/255."""
    return np.rint(np.clip(image, *PIXEL_RANGE) * (65535 / PIXEL_RANGE[1])).astype(np.uint16)


SIXTEEN_BIT_FORMATS = ('PNG', 'TIFF')
PROFILE_FORMATS = ('PNG', 'JPEG', 'TIFF', 'WEBP')  # the formats Pillow embeds a colour profile in


def write_image(path, image, settings=None, bit_depth=8):
    """Writes RGB 0..255 atomically (files.write_atomically), in the format its extension names, tagged sRGB
    where the format holds a profile. settings: None, or {field: text} recorded inside the file where its format
    allows (read_settings): a PNG's text chunks, a JPEG's comment, a TIFF's ImageDescription, as JSON in the
    latter two. bit_depth 16 (PNG and TIFF only): without rounding to 8 bits."""
    from PIL import Image

    fmt = Image.registered_extensions()[os.path.splitext(path)[1].lower()]
    if bit_depth == 16:
        if fmt not in SIXTEEN_BIT_FORMATS:
            raise ValueError(f'16-bit images are written as PNG or TIFF, not {fmt}')
        encode = _png16 if fmt == 'PNG' else _tiff16
        files.write_atomically(path, lambda f: f.write(encode(to_uint16(image), settings or {})))
        return
    options = _settings_options(fmt, settings) if settings else {}
    if fmt in PROFILE_FORMATS:
        options['icc_profile'] = srgb_profile().tobytes()
    files.write_atomically(path, lambda f: Image.fromarray(to_uint8(image)).save(f, format=fmt, **options))


def _png16(pixels, settings):
    """A PNG of 16-bit RGB pixels (which Pillow does not write), with the sRGB profile and the settings as iTXt."""
    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
    height, width = pixels.shape[:2]
    rows = pixels.astype('>u2').reshape(height, width * 3).view(np.uint8)
    scanlines = np.hstack([np.zeros((height, 1), np.uint8), rows])  # filter type 0 before each row
    return b''.join([b'\x89PNG\r\n\x1a\n', chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 16, 2, 0, 0, 0)),
                     chunk(b'iCCP', b'sRGB\0\0' + zlib.compress(srgb_profile().tobytes())),
                     *(chunk(b'iTXt', field.encode('latin-1') + b'\0\0\0\0\0' + text.encode('utf-8'))
                       for field, text in settings.items()),
                     chunk(b'IDAT', zlib.compress(scanlines.tobytes(), 6)), chunk(b'IEND', b'')])


def _tiff16(pixels, settings):
    """A baseline little-endian TIFF of 16-bit RGB pixels, one uncompressed strip, with the sRGB profile and the
    settings as its ImageDescription (JSON, as write_image's TIFFs)."""
    height, width = pixels.shape[:2]
    data = pixels.astype('<u2').tobytes()
    description = (json.dumps({SETTINGS_KEY: settings}, indent=1).encode('utf-8') + b'\0') if settings else b''
    profile = srgb_profile().tobytes()
    # (tag, type, count, value): type 2 ASCII, 3 SHORT, 4 LONG, 7 UNDEFINED; values of more than 4 bytes go after
    # the directory, each at an even offset.
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 3, struct.pack('<3H', 16, 16, 16)),
               (259, 3, 1, 1), (262, 3, 1, 2)] + [(270, 2, len(description), description)] * bool(description) + [
               (273, 4, 1, None), (277, 3, 1, 3), (278, 4, 1, height), (279, 4, 1, len(data)), (284, 3, 1, 1),
               (34675, 7, len(profile), profile)]
    offset = 8 + 2 + 12 * len(entries) + 4
    extra = b''.join(value + b'\0' * (len(value) % 2) for _, _, _, value in entries if isinstance(value, bytes))
    directory, placed = struct.pack('<H', len(entries)), 0
    for tag, kind, count, value in entries:
        if isinstance(value, bytes):
            directory += struct.pack('<HHII', tag, kind, count, offset + placed)
            placed += len(value) + len(value) % 2
            continue
        value = offset + len(extra) if value is None else value  # the strip: after everything else
        directory += struct.pack('<HHI', tag, kind, count) + (struct.pack('<I', value) if kind == 4 else
                                                              struct.pack('<HH', value, 0))
    return b'II*\0' + struct.pack('<I', 8) + directory + struct.pack('<I', 0) + extra + data


SETTINGS_KEY = 'neural-style'  # in a JPEG's comment and a TIFF's description: {SETTINGS_KEY: {field: text}}


def _settings_options(fmt, settings):
    """Pillow's save options that put `settings` into a file of format `fmt` ({} where the format has no place)."""
    from PIL import PngImagePlugin

    if fmt == 'PNG':
        chunks = PngImagePlugin.PngInfo()
        for field, text in settings.items():
            chunks.add_itxt(field, text)
        return {'pnginfo': chunks}
    document = json.dumps({SETTINGS_KEY: settings}, indent=1)
    if fmt == 'JPEG':
        return {'comment': document}
    if fmt == 'TIFF':
        return {'description': document}
    return {}


def read_settings(path):
    """The settings recorded inside an image by write_image: {field: text}, {} if it holds none; ImageError if it
    cannot be read."""
    from PIL import UnidentifiedImageError

    try:
        with open_image(path) as image:
            if image.format == 'PNG':
                return dict(getattr(image, 'text', {}))
            document = image.info.get('comment') if image.format == 'JPEG' else None
            if image.format == 'TIFF':
                document = image.tag_v2.get(270)
    except FileNotFoundError:
        raise ImageError(f'image {path} does not exist') from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise ImageError(f'image {path} could not be read: {error}') from None
    try:
        recorded = json.loads(document)[SETTINGS_KEY]
    except (TypeError, ValueError, KeyError):  # no comment, or another program's
        return {}
    return {str(field): str(text) for field, text in recorded.items()} if isinstance(recorded, dict) else {}


def write_result(path, image, settings=None, bit_depth=8):
    """Writes a run's image to `path` or, should that fail after all the checks, to a new PNG beside it: an
    hour of computation is never lost to a file name. Returns (the path written, why not `path`, or None);
    ImageError when neither could be written."""
    try:
        write_image(path, image, settings, bit_depth)
        return path, None
    except (OSError, ValueError) as error:
        stem, number = os.path.splitext(path)[0], 1
        while os.path.exists(f'{stem}-rescued-{number}.png'):
            number += 1
        rescue = f'{stem}-rescued-{number}.png'
        try:
            write_image(rescue, image, settings, bit_depth)
        except (OSError, ValueError) as second:
            raise ImageError(f'could not write {path} ({error}) nor {rescue} ({second}): the result is '
                             f'lost') from None
        return rescue, error


def check_image_path(path, overwrite):
    """Raises ImageError or files.PathError unless an RGB image can be written at `path`: Pillow writes its
    format (tried on a 1x1 image in memory) and the file system lets it be written."""
    from PIL import Image

    if os.path.isdir(path):  # before its "type": a directory's name has no extension
        raise files.PathError(f'{path} is a directory; give an image file name, such as '
                              f'{os.path.join(path, "out.png")}')
    extension = os.path.splitext(path)[1].lower()
    fmt = Image.registered_extensions().get(extension)
    if fmt is None or fmt not in Image.SAVE:
        raise ImageError(f'cannot write images of type "{extension or path}"; use .jpg, .png, .bmp or .tif')
    try:  # Pillow knows formats it cannot write an RGB image in (XBM, MSP, ...) or has no writer for (HDF5, ...)
        Image.new('RGB', (1, 1)).save(io.BytesIO(), format=fmt)
    except Exception as error:  # Pillow's plugins raise OSError, ValueError, KeyError...
        raise ImageError(f'cannot write an RGB image as {fmt} ("{extension}"): {error}; use .jpg, .png, .bmp '
                         f'or .tif') from None
    files.check_writable(path, overwrite)


def check_plot_path(path, overwrite):
    """As check_image_path for --progress-plot's PNG, which needs matplotlib."""
    if os.path.splitext(path)[1].lower() != '.png':
        raise ImageError(f'--progress-plot {path} must name a .png file')
    try:
        import matplotlib  # noqa: F401  (only the plot needs it, so only its option asks for it)
    except ImportError:
        raise ImageError('--progress-plot needs matplotlib: python -m pip install -r requirements-app.txt') from None
    files.check_writable(path, overwrite)


# The progress CSV

class ProgressLog:
    """The progress CSV: written to a temporary file as rows come, renamed to its path when closed; without a
    row, nothing is left behind. A coarse-to-fine run has a first column more, the stage (1, 2, ...)."""
    HEADER = ('iteration', 'content', 'style', 'tv', 'total', 'seconds')

    def __init__(self, path, staged=False):
        self.path, self.rows = path, 0
        fd, self.temporary = files.temporary_beside(path)
        self.file = os.fdopen(fd, 'w', newline='')
        self.writer = csv.writer(self.file)
        self.writer.writerow(('stage',) * staged + self.HEADER)

    def add(self, progress, stage=None):
        self.writer.writerow([stage] * (stage is not None) + [progress.iteration] +
                             [repr(getattr(progress, name)) for name in self.HEADER[1:]])
        self.file.flush()
        self.rows += 1

    def close(self):
        self.file.close()
        if self.rows:
            os.replace(self.temporary, self.path)
        else:
            os.unlink(self.temporary)
