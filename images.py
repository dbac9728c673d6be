"""Image files: read as RGB floats, resized, written atomically (or rescued beside their path), and the output
paths checked before a run; the progress CSV. Images are float32 [height, width, 3] in 0..255 throughout."""
import csv
import io
import os
import warnings

import numpy as np

import files

MAX_MEGAPIXELS = 50  # larger images are refused before they are decoded: 50 MP is 600 MB as float32 RGB
PIXEL_RANGE = (0.0, 255.0)


class ImageError(Exception):
    """An image that cannot be read or written: one sentence for the user."""


# Reading

def read_image(path, max_megapixels=MAX_MEGAPIXELS):
    """An image file as RGB float32 [height, width, 3] in 0..255; greyscale, palette, RGBA, CMYK and 16-bit
    images are converted, and the EXIF orientation is applied. An image of more than `max_megapixels` is
    refused from its header, before its pixels are decoded."""
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
            image = ImageOps.exif_transpose(image)
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


def write_image(path, image):
    """Writes RGB 0..255 atomically (files.write_atomically), in the format its extension names."""
    from PIL import Image

    fmt = Image.registered_extensions()[os.path.splitext(path)[1].lower()]
    files.write_atomically(path, lambda f: Image.fromarray(to_uint8(image)).save(f, format=fmt))


def write_result(path, image):
    """Writes a run's image to `path` or, should that fail after all the checks, to a new PNG beside it: an
    hour of computation is never lost to a file name. Returns (the path written, why not `path`, or None);
    ImageError when neither could be written."""
    try:
        write_image(path, image)
        return path, None
    except (OSError, ValueError) as error:
        stem, number = os.path.splitext(path)[0], 1
        while os.path.exists(f'{stem}-rescued-{number}.png'):
            number += 1
        rescue = f'{stem}-rescued-{number}.png'
        try:
            write_image(rescue, image)
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
