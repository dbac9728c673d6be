#!/usr/bin/env python3
"""Paint a photograph in the style of an artwork (Gatys, Ecker & Bethge, arXiv 1508.06576; CVPR 2016).

This file is the command line: it parses options, reads and writes images, and prints progress. The
objective and the optimizers are in stylize.py, the network and its weights file in vgg.py, a video's
per-frame loop in video.py and its optical flow in flow.py.
"""
import argparse
import csv
import io
import json
import math
import os
import signal
import stat
import sys
import tempfile
import time
import warnings

import numpy as np

import cluster
import colors
import flow
import stylize
import tiling
import vgg
import video

MAX_SIZE = 512  # the longest side of the output; the paper's figures are about 512 px wide
PRINT_ITERATIONS = 10
MAX_MEGAPIXELS = 50  # larger images are refused before they are decoded: 50 MP is 600 MB as float32 RGB


class UserError(Exception):
    """Bad input from the user: reported as one sentence, without a traceback."""


class Stopped(Exception):
    """The run stopped early (interrupted, or a loss not finite) after writing what it had; `code`: exit status."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


# Images

def read_image(path, max_megapixels=MAX_MEGAPIXELS):
    """An image file as RGB float32 [height, width, 3] in 0..255; greyscale, palette, RGBA, CMYK and 16-bit
    images are converted, and the EXIF orientation is applied. An image of more than `max_megapixels` is
    refused from its header, before its pixels are decoded."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not os.path.exists(path):
        raise UserError(f'image {path} does not exist')
    if os.path.isdir(path):
        raise UserError(f'image {path} is a directory, not an image file')
    if os.path.getsize(path) == 0:
        raise UserError(f'image {path} is empty')
    try:
        with _open_image(path) as image:
            _check_megapixels(f'image {path}', image.height, image.width, max_megapixels)
            image = ImageOps.exif_transpose(image)
            if image.mode in ('I', 'I;16', 'I;16B', 'I;16L'):  # 16-bit greyscale: scale, don't clip, to 8 bits
                grey = np.asarray(image, dtype=np.float32) / 257.0
                return np.repeat(grey[:, :, None], 3, axis=2)
            if image.mode == 'F':  # 32-bit float greyscale (TIFF): 0..1 is black to white
                return np.repeat(_float_grey(path, np.asarray(image, dtype=np.float32))[:, :, None], 3, axis=2)
            if image.mode != 'RGB':
                image = image.convert('RGBA' if 'transparency' in image.info else image.mode).convert('RGB')
            return np.asarray(image, dtype=np.float32)
    except Image.DecompressionBombError as error:
        raise UserError(f'image {path} is too large to decode: {error}') from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise UserError(f'image {path} could not be read: {error}') from None


def _float_grey(path, grey):
    """A floating-point greyscale image in 0..1 scaled to 0..255; any other range is ambiguous and refused."""
    if not np.all(np.isfinite(grey)) or grey.min() < 0 or grey.max() > 1:
        raise UserError(f'image {path} holds floating-point values from {np.nanmin(grey):g} to '
                        f'{np.nanmax(grey):g}; only 0..1 (black to white) is understood: convert it to 8 or '
                        f'16 bits')
    return grey * 255.0


def _open_image(path):
    """Pillow's Image.open (which reads only the header), without its warning about large images:
    _check_megapixels is the limit that counts."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter('ignore', Image.DecompressionBombWarning)
        return Image.open(path)


def _check_megapixels(what, height, width, max_megapixels):
    if height * width > max_megapixels * 1e6:
        raise UserError(f'{what} is {width}x{height} pixels ({height * width / 1e6:.4g} megapixels), more than the '
                        f'limit of {max_megapixels:g} megapixels (--max-megapixels)')


def resize(image, height, width):
    """An RGB float image resized to height x width with Lanczos filtering."""
    from PIL import Image

    if image.shape[:2] == (height, width):
        return image
    channels = [Image.fromarray(image[:, :, c].astype(np.float32), mode='F').resize((width, height), Image.LANCZOS)
                for c in range(3)]
    return np.clip(np.stack([np.asarray(c) for c in channels], axis=2), 0, 255).astype(np.float32)


def output_size(shape, width, max_size):
    """(height, width) of the output: `width` wide if given, else the content's size with its longest side
    at most `max_size`; the aspect ratio is kept."""
    height_in, width_in = shape[:2]
    if width:
        scale = width / width_in
    else:
        scale = min(1.0, max_size / max(height_in, width_in))
    return max(1, round(height_in * scale)), max(1, round(width_in * scale))


def scaled_style(style, output_width, style_scale):
    """The style image resized so that its width is `style_scale` times the output's (as in the peers)."""
    scale = style_scale * output_width / style.shape[1]
    return resize(style, max(1, round(style.shape[0] * scale)), max(1, round(style.shape[1] * scale)))


def pixels(image):
    """An RGB 0..255 float image as the 8-bit pixels written."""
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def write_image(path, image):
    """Writes RGB 0..255 atomically: to a temporary file beside `path`, then renamed over it."""
    from PIL import Image

    fmt = Image.registered_extensions()[os.path.splitext(path)[1].lower()]
    write_atomically(path, lambda f: Image.fromarray(pixels(image)).save(f, format=fmt))


def _temporary_beside(path):
    """A new hidden temporary file in `path`'s directory, to be renamed over `path`: (descriptor, its path).
    It has the mode the file will keep: an existing file's, else what open() gives a new file under the umask
    (mkstemp makes it owner-only, and the mode survives the rename)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=directory, prefix='.' + os.path.basename(path) + '.', suffix='.tmp')
    try:
        os.fchmod(fd, stat.S_IMODE(os.stat(path).st_mode) if os.path.exists(path) else 0o666 & ~_umask())
    except BaseException:
        os.close(fd)
        os.unlink(temporary)
        raise
    return fd, temporary


def _umask():
    """The process's umask, which can only be read by setting it: set to the usual value and put back."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomically(path, write):
    fd, temporary = _temporary_beside(path)
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


class ProgressLog:
    """The progress CSV: written to a temporary file as rows come, renamed to its path when closed; without a
    row, nothing is left behind. A coarse-to-fine run has a first column more, the stage (1, 2, ...)."""
    HEADER = ('iteration', 'content', 'style', 'tv', 'total', 'seconds')

    def __init__(self, path, staged=False):
        self.path, self.rows = path, 0
        fd, self.temporary = _temporary_beside(path)
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


# Options

def _number(text, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'must be {"an integer" if kind is int else "a number"}, not {text}') from None


def positive_int(text):
    value = _number(text, int)
    if value <= 0:
        raise argparse.ArgumentTypeError(f'must be a positive integer, not {text}')
    return value


def _positive_ints(text):
    """One positive integer, or several separated by commas (one per stage of --scales)."""
    return [positive_int(value) for value in text.split(',')]


def _scales(text):
    sizes = _positive_ints(text)
    if any(b <= a for a, b in zip(sizes, sizes[1:])):
        raise argparse.ArgumentTypeError(f'must be sizes in pixels from smallest to largest, such as '
                                         f'256,512,1024, not {text}')
    return sizes


def _non_negative_int(text):
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f'must be 0 or more, not {text}')
    return value


def _positive_float(text):
    value = _number(text, float)
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f'must be a positive number, not {text}')
    return value


def _non_negative_float(text):
    value = _number(text, float)
    if not value >= 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f'must be 0 or a positive number, not {text}')
    return value


def _fraction(text):
    value = _number(text, float)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f'must be between 0 and 1, not {text}')
    return value


def _layer(text):
    if text not in vgg.LAYERS:
        raise argparse.ArgumentTypeError(f'unknown layer {text!r}; layers are named conv1_1, relu1_1, '
                                         f'..., pool5 (see --help)')
    return text


def build_parser():
    p = argparse.ArgumentParser(
        prog='neural_style.py', description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    io = p.add_argument_group('images')
    io.add_argument('--content', required=True, help='the photograph, or a video (see the video options); the '
                    'output has its aspect ratio')
    io.add_argument('--styles', required=True, nargs='+', help='one or more style images')
    io.add_argument('--output', required=True, help='output image; its extension (.jpg, .png, ...) sets the format; '
                    'for a video, a video file (.mp4, .mov, .mkv, .avi, .m4v), a .gif or a directory of PNG frames')
    io.add_argument('--overwrite', action='store_true', help='replace the output, progress and checkpoint files '
                    'if they exist (by default an existing file stops the run before it starts)')
    io.add_argument('--max-size', type=positive_int, default=MAX_SIZE,
                    help='longest side of the output in pixels (the content is scaled down to it, never up)')
    io.add_argument('--width', type=positive_int, help='output width in pixels, overriding --max-size')
    io.add_argument('--style-scales', type=_positive_float, nargs='+',
                    help='per style image: its width relative to the output width (default 1.0 each)')
    io.add_argument('--style-masks', nargs='+', metavar='MASK',
                    help='per style image: a greyscale image over the output, white where that style governs '
                    '(spatial control with guided Gram matrices, Gatys et al. 2017)')
    io.add_argument('--preserve-colors', choices=colors.PRESERVE_COLORS,
                    help="keep the content's colours (Gatys et al., arXiv 1606.05897): luminance-only transfer, "
                    "the style's colours matched to the content's first, or the result's luminance put on the "
                    "content's colours after the run")
    io.add_argument('--max-megapixels', type=_positive_float, default=MAX_MEGAPIXELS,
                    help='refuse input images, and an output, larger than this')
    io.add_argument('--network', help=f'VGG-19 weights: MatConvNet\'s {vgg.WEIGHTS_FILE} or Keras\'s '
                    f'{vgg.KERAS_WEIGHTS_FILE} (default: ${vgg.NETWORK_ENV} if set, else the first found of '
                    f'{", ".join(vgg.default_locations())}; get it with `{vgg.GET_COMMAND}`)')

    loss = p.add_argument_group('objective (the paper\'s alpha, beta, layers and w_l)')
    loss.add_argument('--content-weight', type=_non_negative_float, default=stylize.CONTENT_WEIGHT,
                      help='alpha, the weight of L_content')
    loss.add_argument('--style-weight', type=_non_negative_float, default=stylize.STYLE_WEIGHT,
                      help='beta, the weight of L_style')
    loss.add_argument('--tv-weight', type=_non_negative_float, default=stylize.TV_WEIGHT,
                      help='weight of a total-variation smoothness term (not in the paper)')
    loss.add_argument('--content-layers', type=_layer, nargs='+', default=list(stylize.CONTENT_LAYERS),
                      help='layers whose features the content loss matches, each named once')
    loss.add_argument('--content-layer-weights', type=_non_negative_float, nargs='+',
                      help='one weight per content layer (default 1/number of content layers)')
    loss.add_argument('--style-layers', type=_layer, nargs='+', default=list(stylize.STYLE_LAYERS),
                      help='layers whose Gram matrices the style loss matches, each named once')
    loss.add_argument('--style-layer-weights', type=_non_negative_float, nargs='+',
                      help='w_l, one per style layer (default 1/number of style layers, as in the paper)')
    loss.add_argument('--style-blend-weights', type=_non_negative_float, nargs='+',
                      help='one weight per style image, normalized to sum 1 (default equal)')
    loss.add_argument('--pooling', choices=vgg.POOLING_METHODS, default=stylize.POOLING,
                      help='pooling in the network; the paper replaces max by average pooling')

    opt = p.add_argument_group('optimization')
    opt.add_argument('--optimizer', choices=stylize.OPTIMIZERS, default=stylize.OPTIMIZER,
                     help='L-BFGS (the paper\'s) or Adam')
    opt.add_argument('--iterations', type=_positive_ints,
                     help=f'optimizer iterations (default {stylize.ITERATIONS}); with --scales, one number for every '
                     f'stage or one per stage (e.g. 500,200,100); for a video, the first frame\'s and the later '
                     f'frames\' (default {video.FIRST_ITERATIONS},{video.LATER_ITERATIONS}), or per frame and pass '
                     f'with --passes (default {video.PASS_ITERATIONS})')
    opt.add_argument('--scales', type=_scales, metavar='SIZES',
                     help='coarse to fine (Gatys et al. 2017): the longest side of each stage in pixels, e.g. '
                     '256,512,1024; each stage starts from the last one\'s result upsampled, and the last size '
                     'is the output\'s (instead of --max-size)')
    opt.add_argument('--lbfgs-history', type=positive_int, default=stylize.LBFGS_HISTORY,
                     help='L-BFGS: number of stored corrections')
    opt.add_argument('--learning-rate', type=_positive_float, default=stylize.LEARNING_RATE,
                     help='Adam: learning rate, in pixel values')
    opt.add_argument('--beta1', type=_fraction, default=stylize.BETA1, help='Adam: beta1')
    opt.add_argument('--beta2', type=_fraction, default=stylize.BETA2, help='Adam: beta2')
    opt.add_argument('--eps', type=_positive_float, default=stylize.EPSILON, help='Adam: epsilon')
    opt.add_argument('--init', choices=('noise', 'content', 'style'), default='noise',
                     help='starting image: white noise (the paper\'s), the content, or the (first) style image')
    opt.add_argument('--initial', help='starting image from a file, overriding --init')
    opt.add_argument('--initial-noiseblend', type=_fraction, default=0.0,
                     help='fraction of white noise blended into a content, style or --initial start')
    opt.add_argument('--seed', type=int, help='random seed of the white noise: a CPU run repeats exactly')
    opt.add_argument('--precision', choices=stylize.PRECISIONS, default=stylize.PRECISION,
                     help='float32 (faithful) or mixed: convolutions in float16 on a GPU, bfloat16 on a CPU, '
                     'losses in float32; fast on GPUs, slower on CPUs without native bfloat16 (see README)')
    opt.add_argument('--device', help='TensorFlow device, e.g. /cpu:0 or /gpu:0, one that TensorFlow sees here '
                     '(default: the GPU if TensorFlow sees one, else the CPU)')

    machines = p.add_argument_group('devices and machines (README, Many devices and machines)')
    machines.add_argument('--devices', metavar='LIST', help='spread each evaluation\'s tiles over these devices, '
                          'e.g. /gpu:0,/gpu:1, or all (every GPU TensorFlow sees); the image is then tiled so that '
                          'each device has a tile')
    machines.add_argument('--cluster', metavar='HOST:PORT,...', help='spread the tiles over the devices of these '
                          'workers, each started with `python cluster.py worker --port PORT` (every GPU of a '
                          'worker, else its CPU); the first worker coordinates')

    memory = p.add_argument_group('memory (exact tiled evaluation: README, Large outputs)')
    memory.add_argument('--tile-size', type=positive_int, metavar='PX',
                        help='evaluate the objective over tiles of this many pixels square (a multiple of 16 for '
                        'the default layers), each with a halo: exact, in bounded memory (default: tiled only when '
                        'the estimated peak exceeds --max-memory)')
    memory.add_argument('--max-memory', type=_positive_float, metavar='GB',
                        help=f'memory budget in GB for choosing the tiling (default: '
                        f'{tiling.MEMORY_SHARE:.0%} of the machine\'s RAM)')

    clip = p.add_argument_group('video (Ruder, Dosovitskiy & Brox, "Artistic style transfer for videos", 2016)')
    clip.add_argument('--start', type=_non_negative_float, metavar='SECONDS', help='take the clip from this time')
    clip.add_argument('--end', type=_positive_float, metavar='SECONDS', help='take the clip up to this time')
    clip.add_argument('--frames', type=positive_int, metavar='N', help='take at most N frames')
    clip.add_argument('--temporal-weight', type=_non_negative_float, metavar='GAMMA',
                      help='gamma_t, the weight of the temporal loss (default: the authors\' balance against the '
                      'content loss, 200 alpha N M / 2 at the content layer, 100 alpha N M / 2 with --passes; '
                      'see README); 0 for frame-by-frame stylization from the warped previous frame')
    clip.add_argument('--long-term', type=positive_int, default=video.LONG_TERM, metavar='J',
                      help='tie each frame to the previous J stylized frames (long-term consistency); 1: the '
                      'previous frame only')
    clip.add_argument('--passes', type=positive_int, default=1, metavar='N',
                      help=f'the multi-pass algorithm with N passes over the clip, alternately forward and backward '
                      f'(the authors use {video.MULTIPASS_PASSES}); 1: the single-pass algorithm')
    clip.add_argument('--flow', choices=flow.FLOW_METHODS, default=flow.FLOW_METHOD,
                      help='optical flow: OpenCV\'s DIS or Farneback')

    out = p.add_argument_group('progress')
    out.add_argument('--print-iterations', type=_non_negative_int, default=PRINT_ITERATIONS,
                     help='print the losses every this many iterations (0: only at the end)')
    out.add_argument('--progress-write', metavar='PATH',
                     help='write a CSV of the losses at every iteration (row 0: the initial image)')
    out.add_argument('--progress-plot', metavar='PATH',
                     help='write a PNG plot of the losses against the iteration (log scale; needs matplotlib, '
                     'from requirements-app.txt), at each checkpoint and at the end')
    out.add_argument('--checkpoint-output', help='checkpoint file name: every %%s in it becomes the iteration '
                     'number, any other %% stays as it is, e.g. checkpoint_%%s.jpg')
    out.add_argument('--checkpoint-iterations', type=positive_int,
                     help='write the best image so far every this many iterations')
    return p


def check_options(args):
    """Checks the options against each other and the file system, before anything is computed."""
    if args.iterations is None:
        args.iterations = [stylize.ITERATIONS]
    counts = [('--style-scales', args.style_scales, len(args.styles), 'style images'),
              ('--style-blend-weights', args.style_blend_weights, len(args.styles), 'style images'),
              ('--style-masks', args.style_masks, len(args.styles), 'style images'),
              ('--style-layer-weights', args.style_layer_weights, len(args.style_layers), 'style layers'),
              ('--content-layer-weights', args.content_layer_weights, len(args.content_layers), 'content layers')]
    for option, values, expected, what in counts:
        if values is not None and len(values) != expected:
            raise UserError(f'{option} has {len(values)} values for {expected} {what}')
    _check_layers(args)
    if args.style_blend_weights is not None and sum(args.style_blend_weights) <= 0:
        raise UserError('--style-blend-weights must not all be 0')
    for option, value, unset in VIDEO_OPTIONS:
        if getattr(args, value) != unset:
            raise UserError(f'{option} applies to a video content only; {args.content} is an image')
    if args.scales is None and len(args.iterations) > 1:
        raise UserError(f'--iterations has {len(args.iterations)} values but there are no --scales; give one number')
    if args.scales is not None and len(args.iterations) not in (1, len(args.scales)):
        raise UserError(f'--iterations has {len(args.iterations)} values for {len(args.scales)} scales; '
                        f'give one number or one per scale')
    if args.scales is not None and args.width is not None:
        raise UserError('--scales sets the output size (its last value); leave out --width')
    if (args.checkpoint_output is None) != (args.checkpoint_iterations is None):
        raise UserError('--checkpoint-output and --checkpoint-iterations go together')
    if args.checkpoint_output is not None and '%s' not in args.checkpoint_output:
        raise UserError(f'--checkpoint-output {args.checkpoint_output} has no %s for the iteration number')
    if args.tile_size is not None:
        deepest = max(args.content_layers + args.style_layers, key=vgg.LAYERS.index)
        if args.tile_size % tiling.alignment(deepest):
            raise UserError(f'--tile-size {args.tile_size} is not a multiple of {tiling.alignment(deepest)}, the '
                            f'stride of {deepest} (the deepest loss layer)')
    if args.device is not None and not _is_device(args.device):
        raise UserError(f'--device {args.device} is not a device name such as /cpu:0 or /gpu:0')
    chosen = [option for option, value in (('--device', args.device), ('--devices', args.devices),
                                           ('--cluster', args.cluster)) if value is not None]
    if len(chosen) > 1:
        raise UserError(f'{" and ".join(chosen)} each say where the run goes: give one of them')
    outputs = [args.output]
    if args.checkpoint_output:
        outputs += [checkpoint_path(args.checkpoint_output, i)
                    for i in range(args.checkpoint_iterations, sum(stage_iterations(args)), args.checkpoint_iterations)]
    _check_distinct([('--output', args.output)] + [('--checkpoint-output', path) for path in outputs[1:]] +
                    [('--progress-write', args.progress_write)] * bool(args.progress_write) +
                    [('--progress-plot', args.progress_plot)] * bool(args.progress_plot))
    for path in outputs:
        check_image_path(path, args.overwrite)
    if args.progress_write:
        _check_writable(args.progress_write, args.overwrite)
    if args.progress_plot:
        check_plot_path(args.progress_plot, args.overwrite)
    _check_device(args)  # last: asking TensorFlow which devices it sees imports it


def _check_layers(args):
    for option, layers in (('--content-layers', args.content_layers), ('--style-layers', args.style_layers)):
        repeated = sorted({layer for layer in layers if layers.count(layer) > 1}, key=vgg.LAYERS.index)
        if repeated:
            raise UserError(f'{option} names {" and ".join(repeated)} more than once; give each layer once '
                            f'(its weight goes in {option[:-1]}-weights)')


def _check_device(args):
    if args.device is not None:
        try:
            stylize.existing_device(args.device)
        except ValueError as error:
            raise UserError(f'--device: {error}') from None


def _check_distinct(outputs):
    """Refuses two outputs, (option, path), on one file: the later write would replace the earlier silently."""
    seen = {}
    for option, path in outputs:
        earlier = seen.setdefault(os.path.realpath(path), (option, path))
        if earlier != (option, path):
            raise UserError(f'{earlier[0]} {earlier[1]} and {option} {path} are the same file; give each output '
                            f'a name of its own')


def checkpoint_path(pattern, iteration):
    """--checkpoint-output's file for an iteration: every %s replaced by its number, any other % kept."""
    return pattern.replace('%s', str(iteration))


def _is_device(name):
    kind, _, index = name.lower().lstrip('/').replace('device:', '').partition(':')
    return kind in ('cpu', 'gpu') and index.isdigit()


def check_image_path(path, overwrite):
    from PIL import Image

    extension = os.path.splitext(path)[1].lower()
    fmt = Image.registered_extensions().get(extension)
    if fmt is None or fmt not in Image.SAVE:
        raise UserError(f'cannot write images of type "{extension or path}"; use .jpg, .png, .bmp or .tif')
    try:  # Pillow knows formats it cannot write an RGB image in (XBM, MSP, ...) or has no writer for (HDF5, ...)
        Image.new('RGB', (1, 1)).save(io.BytesIO(), format=fmt)
    except Exception as error:  # Pillow's plugins raise OSError, ValueError, KeyError...
        raise UserError(f'cannot write an RGB image as {fmt} ("{extension}"): {error}; use .jpg, .png, .bmp '
                        f'or .tif') from None
    _check_writable(path, overwrite)


def check_plot_path(path, overwrite):
    if os.path.splitext(path)[1].lower() != '.png':
        raise UserError(f'--progress-plot {path} must name a .png file')
    try:
        import matplotlib  # noqa: F401  (only the plot needs it, so only its option asks for it)
    except ImportError:
        raise UserError('--progress-plot needs matplotlib: python -m pip install -r requirements-app.txt') from None
    _check_writable(path, overwrite)


def _check_writable(path, overwrite):
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.exists(path) and not overwrite:
        raise UserError(f'{path} exists; choose another name or pass --overwrite')
    if os.path.isdir(path):
        raise UserError(f'{path} is a directory')
    if not os.path.isdir(directory):
        raise UserError(f'cannot write {path}: directory {directory} does not exist')
    if not os.access(directory, os.W_OK):
        raise UserError(f'cannot write {path}: directory {directory} is not writable')
    try:  # the file system has the last word (/proc, a read-only mount, a name too long): try it
        fd, temporary = _temporary_beside(path)
        os.close(fd)
        os.unlink(temporary)
    except OSError as error:
        raise UserError(f'cannot write {path}: {error.strerror or error}') from None


def format_duration(seconds):
    seconds = int(round(seconds))
    return f'{seconds // 3600}h{seconds // 60 % 60:02d}m{seconds % 60:02d}s' if seconds >= 3600 else \
        f'{seconds // 60}m{seconds % 60:02d}s'


def _progress_line(progress, iterations):
    remaining = ''
    if progress.iteration:
        remaining = f'  remaining {format_duration(progress.seconds / progress.iteration * (iterations - progress.iteration))}'
    return (f'iteration {progress.iteration:>{len(str(iterations))}}/{iterations}  '
            f'content {progress.content:.4g}  style {progress.style:.4g}  tv {progress.tv:.4g}  '
            f'total {progress.total:.4g}  elapsed {format_duration(progress.seconds)}{remaining}')


# Coarse to fine

def stage_sizes(shape, args):
    """(height, width) of each stage: one per --scales value, that value the longest side (the content is
    enlarged when it is smaller: the sizes asked for are kept), or the one output size of --width / --max-size."""
    if args.scales is None:
        return [output_size(shape, args.width, args.max_size)]
    height, width = shape[:2]
    return [(max(1, round(height * size / max(height, width))), max(1, round(width * size / max(height, width))))
            for size in args.scales]


def stage_iterations(args):
    """The iterations of each stage: --iterations, one number for all stages or one per stage."""
    stages = len(args.scales) if args.scales else 1
    return args.iterations * stages if len(args.iterations) == 1 else args.iterations


def mask_at(mask, height, width):
    """A mask image (RGB 0..255) resized to a stage: the weight 0..1 of each pixel, its grey level."""
    return resize(mask, height, width).mean(axis=2) / 255.0


def stylize_in_stages(net, content, styles, sizes, iterations, *, style_scales, style_masks=None, init='noise',
                      initial=None, noise_blend=0.0, **options):
    """Coarse to fine (Gatys et al. 2017, "Controlling Perceptual Factors in Neural Style Transfer", scale
    control for high resolutions): a stylize.stylize run at each size of `sizes`, smallest first, every one
    after the first starting from the previous result upsampled; yields (stage, Progress). One size: one run.

    content, styles, style_masks (RGB, white where that style governs) and initial may have any size: each
    stage resizes them, the styles to style_scales times the stage's width. Without `initial`, the first stage
    starts from `init`: 'noise', 'content', or 'style' (the first style image); noise_blend applies there.
    """
    previous = None
    for stage, ((height, width), count) in enumerate(zip(sizes, iterations)):
        stage_content = resize(content, height, width)
        stage_styles = [scaled_style(style, width, scale) for style, scale in zip(styles, style_scales)]
        masks = None if style_masks is None else [mask_at(mask, height, width) for mask in style_masks]
        blend = 0.0
        if previous is not None:
            start = resize(previous.best_image, height, width)
        elif initial is not None or init != 'noise':
            start = {'content': stage_content, 'style': stage_styles[0]}[init] if initial is None else initial
            start, blend = resize(start, height, width), noise_blend
        else:
            start = None
        for progress in stylize.stylize(net, stage_content, stage_styles, initial=start, noise_blend=blend,
                                        style_masks=masks, iterations=count, **options):
            yield stage, progress
        previous = progress


class Run:
    """One run of the command line's options, shared by the command line, which prints its steps, and the page
    (app.py), which shows them. Made, it has checked the options, read the images and loaded the network
    (`net`, the loaded network, lets a caller reuse it across runs); steps() optimizes."""

    def __init__(self, args, net=None):
        check_options(args)
        self.placement = _placement(args)  # before any work: every worker of --cluster answers
        content = read_image(args.content, args.max_megapixels)
        styles = [read_image(path, args.max_megapixels) for path in args.styles]
        masks = [read_image(path, args.max_megapixels) for path in args.style_masks] if args.style_masks else None
        initial = read_image(args.initial, args.max_megapixels) if args.initial else None
        sizes, iterations = stage_sizes(content.shape, args), stage_iterations(args)
        _check_megapixels('the output', *sizes[-1], args.max_megapixels)
        for path, mask in zip(args.style_masks or [], masks or []):
            if not all(mask_at(mask, height, width).any() for height, width in sizes):
                raise UserError(f'mask {path} is black everywhere: its style would govern no part of the output')
        self.net = net or vgg.load_net_cached(args.network, vgg.converted_cache_dir())

        self.photo = content
        if args.preserve_colors == 'histogram':
            styles = [colors.match_histogram(style, self.photo) for style in styles]
        elif args.preserve_colors == 'luminance':
            styles = [colors.match_luminance(style, self.photo) for style in styles]
            content = colors.luminance_image(self.photo)
            initial = None if initial is None else colors.luminance_image(initial)
        self.args, self.content, self.styles, self.masks, self.initial = args, content, styles, masks, initial
        self.sizes, self.iterations = sizes, iterations
        self.budget = (args.max_memory or tiling.default_memory()) * 1e9 if args.tile_size is None else None
        self.losses = []  # (iteration over all stages, content, style, tv, total) of each step: the plot's rows

    def finish(self, image):
        """An image as written: on the photograph's colours with luminance and post colour preservation."""
        if self.args.preserve_colors in ('luminance', 'post'):
            return colors.transfer_luminance(image, resize(self.photo, *image.shape[:2]))
        return image

    def plan(self):
        """What the run will do, in a line (two with --scales)."""
        height, width = self.sizes[-1]
        args = self.args
        text = (f'output {width}x{height}, {len(self.styles)} style image(s), {args.optimizer}, '
                f'{sum(self.iterations)} iterations, on {", ".join(self.placement.devices)}')
        for size in self.sizes:
            text += '\n' + _plan_line(size, tiling.plan(
                size, args.content_layers, args.style_layers, tile_size=args.tile_size, max_memory=self.budget,
                optimizer=args.optimizer, lbfgs_history=args.lbfgs_history, devices=len(self.placement.devices)), args)
        if args.scales is not None:
            text += '\nstages: ' + ', '.join(f'{w}x{h} ({n} iterations)'
                                             for (h, w), n in zip(self.sizes, self.iterations))
        return text

    def line(self, stage, progress):
        """A step's progress line: iteration, losses, elapsed and remaining time."""
        return _stage_prefix(stage, self.sizes) + _progress_line(progress, self.iterations[stage])

    def steps(self):
        """Optimizes, yielding (stage, Progress) after every iteration; writes the CSV and the plot as it goes,
        the checkpoints, and the output at the end. An interrupt or a loss that is not finite writes the best
        image so far and raises Stopped; so does an interrupt thrown in at a yield (steps.throw). Closing the
        generator early (the page's Stop) writes the best image so far too."""
        args, iterations = self.args, self.iterations
        staged = args.scales is not None
        log = ProgressLog(args.progress_write, staged) if args.progress_write else None
        progress, stop = None, None
        steps = stylize_in_stages(
            self.net, self.content, self.styles, self.sizes, iterations,
            style_scales=args.style_scales or [1.0] * len(self.styles), style_masks=self.masks, init=args.init,
            initial=self.initial, placement=self.placement, tile_size=args.tile_size, max_memory=self.budget,
            **stylize_options(args))
        try:
            for stage, progress in steps:
                done = sum(iterations[:stage]) + progress.iteration  # over all stages: names the checkpoints
                self.losses.append((done, progress.content, progress.style, progress.tv, progress.total))
                if log:
                    log.add(progress, stage + 1 if staged else None)
                if (args.checkpoint_iterations and progress.iteration
                        and done % args.checkpoint_iterations == 0 and done < sum(iterations)):
                    write_image(checkpoint_path(args.checkpoint_output, done), self.finish(progress.best_image))
                    self._write_plot()
                yield stage, progress
        except (KeyboardInterrupt, stylize.NonFiniteLoss, stylize.DeviceLost) as error:
            stop = error
        except GeneratorExit:  # the consumer stopped early: nothing is lost
            if progress is not None:
                _write_result(args.output, self.finish(progress.best_image))
            raise
        finally:
            steps.close()  # stops the optimizer's worker thread
            if log:
                log.close()
            self._write_plot()
        if stop is not None:
            raise _stopped(args, stop, progress, self.finish)
        try:
            written, error = _write_result(args.output, self.finish(progress.best_image))
        except KeyboardInterrupt as interrupt:  # the run is over: its image is written all the same
            raise _stopped(args, interrupt, progress, self.finish, finished=True) from None
        if error:
            raise Stopped(f'error: could not write {args.output} ({error}); wrote the result to {written} instead', 1)

    def plot(self):
        """The loss plot of the steps so far, stages marked: a matplotlib Figure (needs matplotlib)."""
        import progress_plot
        boundaries = [sum(self.iterations[:stage]) for stage in range(1, len(self.iterations))]
        return progress_plot.figure(self.losses, boundaries)

    def _write_plot(self):
        if self.args.progress_plot and self.losses:
            import progress_plot
            figure = self.plot()
            write_atomically(self.args.progress_plot, lambda f: progress_plot.save(figure, f))


def run(args, net=None):
    """One run of the command line, printing its progress; `net`, the loaded network, lets a caller reuse it."""
    if content_is_video(args.content):
        return run_video(args, net)
    job = Run(args, net)
    print(job.plan(), flush=True)
    started, progress, last = time.perf_counter(), None, {}
    steps = job.steps()
    try:
        for stage, progress in steps:
            last[stage] = progress
            if args.print_iterations and progress.iteration % args.print_iterations == 0:
                print(job.line(stage, progress), flush=True)
    except KeyboardInterrupt as interrupt:  # came while printing: stopped as if it came during the optimization
        steps.throw(interrupt)
    try:
        for stage, stage_progress in last.items():
            if stage_progress.iteration < job.iterations[stage]:
                print(f'{_stage_prefix(stage, job.sizes)}L-BFGS stopped after {stage_progress.iteration} iterations: '
                      f'no further decrease was possible')
        if not args.print_iterations or progress.iteration % args.print_iterations:
            print(job.line(len(job.sizes) - 1, progress))
        print(f'wrote {args.output} (total loss {progress.best_total:.6g}) '
              f'in {format_duration(time.perf_counter() - started)}')
    except KeyboardInterrupt as interrupt:
        raise Stopped(f'interrupted ({_signal_name(interrupt)}) after the run; wrote the finished image to '
                      f'{args.output}', _signal_exit_code(interrupt)) from None


def stylize_options(args):
    """The options of stylize.stylize that are the command line's own, the same for an image and a video."""
    return dict(noise_blend=args.initial_noiseblend, seed=args.seed,
                content_layers=args.content_layers, content_layer_weights=args.content_layer_weights,
                style_layers=args.style_layers, style_layer_weights=args.style_layer_weights,
                style_blend_weights=args.style_blend_weights, content_weight=args.content_weight,
                style_weight=args.style_weight, tv_weight=args.tv_weight, pooling=args.pooling,
                optimizer=args.optimizer, lbfgs_history=args.lbfgs_history, learning_rate=args.learning_rate,
                beta1=args.beta1, beta2=args.beta2, epsilon=args.eps, precision=args.precision)


def _placement(args):
    """Where the run's graphs go: the devices of --cluster's workers, --devices, or --device (default: the GPU
    if TensorFlow sees one, else the CPU). Reaches every worker before any work (ClusterError)."""
    try:
        if args.cluster:
            return cluster.remote_placement(cluster.parse_addresses(args.cluster))
        if args.devices:
            return cluster.local_placement(args.devices)
    except ValueError as error:
        raise UserError(str(error)) from None
    return stylize.Placement((stylize.existing_device(args.device) if args.device else stylize.default_device(),))


def _plan_line(size, memory_plan, args):
    """How a stage is evaluated, tiled or not, and its estimated peak memory."""
    height, width = size
    deepest = max(args.content_layers + args.style_layers, key=vgg.LAYERS.index)
    peak = f'estimated peak memory {memory_plan.peak / 1e9:.2f} GB'
    if memory_plan.budget is not None:
        peak += f' of {memory_plan.budget / 1e9:.1f} GB (--max-memory)'
    if memory_plan.tile_size is None:
        return f'{width}x{height}: untiled, {peak}'
    tiles = tiling.make_tiles(height, width, memory_plan.tile_size, deepest)
    return (f'{width}x{height}: tiled, {len(tiles)} tiles of {memory_plan.tile_size} px with a '
            f'{tiling.halo(deepest)} px halo, {peak}')

# Video

VIDEO_OPTIONS = [('--start', 'start', None), ('--end', 'end', None), ('--frames', 'frames', None),
                 ('--temporal-weight', 'temporal_weight', None), ('--long-term', 'long_term', video.LONG_TERM),
                 ('--passes', 'passes', 1)]
IMAGE_OPTIONS = [('--scales', 'scales'), ('--style-masks', 'style_masks'), ('--initial', 'initial'),
                 ('--checkpoint-output', 'checkpoint_output'), ('--progress-write', 'progress_write'),
                 ('--progress-plot', 'progress_plot'), ('--tile-size', 'tile_size'), ('--max-memory', 'max_memory'),
                 ('--devices', 'devices'), ('--cluster', 'cluster')]
# Options that do not change the frames, left out of the frames directory's key.
UNKEYED_OPTIONS = ('content', 'styles', 'output', 'overwrite', 'network', 'device', 'print_iterations',
                   'max_megapixels', 'checkpoint_output', 'checkpoint_iterations', 'progress_write')


def content_is_video(path):
    """Whether the content is a video, told by its contents: a file that Pillow does not read as a still image
    and ffmpeg reads as a video (an animated GIF is a video). A file named like a video that neither reads
    gets ffmpeg's complaint as a UserError; any other unreadable file is left to read_image to report."""
    from PIL import Image, UnidentifiedImageError

    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return False
    try:
        with _open_image(path) as image:
            if getattr(image, 'n_frames', 1) == 1:
                return False
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        pass
    try:
        video.probe(path)
    except video.ClipError as error:
        if os.path.splitext(path)[1].lower() in video.VIDEO_EXTENSIONS:
            raise UserError(str(error)) from None
        return False
    return True


def check_video_options(args):
    """The options of a video run, checked before anything is computed; returns the output's kind."""
    for option, value in IMAGE_OPTIONS:
        if getattr(args, value) is not None:
            raise UserError(f'{option} is not supported for a video content')
    iterations = args.iterations or []
    if len(iterations) > (1 if args.passes > 1 else 2):
        raise UserError(f'--iterations has {len(iterations)} values; for a video give one number, or two (the '
                        f'first frame\'s and the later frames\'), or one with --passes')
    if args.passes > 1 and args.long_term > 1:
        raise UserError('--long-term and --passes do not combine (the multi-pass algorithm ties each frame to its '
                        'neighbour only)')
    if args.start is not None and args.end is not None and args.end <= args.start:
        raise UserError(f'--end {args.end:g} is not after --start {args.start:g}')
    _check_layers(args)
    if args.device is not None and not _is_device(args.device):
        raise UserError(f'--device {args.device} is not a device name such as /cpu:0 or /gpu:0')
    try:
        kind = video.output_kind(args.output)
    except video.ClipError as error:
        raise UserError(str(error)) from None
    output = args.output.rstrip('/') or args.output
    if os.path.isdir(output) and kind != 'directory':
        raise UserError(f'{output} is a directory')
    directory = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(directory):
        raise UserError(f'cannot write {output}: directory {directory} does not exist')
    if not os.access(directory, os.W_OK):
        raise UserError(f'cannot write {output}: directory {directory} is not writable')
    _check_device(args)
    return kind


def _frames_settings(args, styles_paths):
    """What changes the frames: the options and the contents of the input files (the network by path, size and
    time: hashing 550 MB at every run would cost seconds)."""
    settings = {name: value for name, value in sorted(vars(args).items()) if name not in UNKEYED_OPTIONS}
    settings['content_sha256'] = video.file_digest(args.content)
    settings['styles_sha256'] = [video.file_digest(path) for path in styles_paths]
    network = vgg.find_weights(args.network)
    if os.path.exists(network):
        info = os.stat(network)
        settings['network'] = [os.path.abspath(network), info.st_size, info.st_mtime_ns]
    return settings


def run_video(args, net=None):
    """A video content: its frames stylized with temporal consistency (video.py) and written as a clip."""
    kind = check_video_options(args)
    styles = [read_image(path, args.max_megapixels) for path in args.styles]
    settings = _frames_settings(args, args.styles)
    directory = video.frames_directory(args.output, settings)
    _check_video_output(args, directory)
    sizes = {}

    def prepare(frame):
        if 'size' not in sizes:
            height, width = output_size(frame.shape, args.width, args.max_size)
            sizes['size'] = video.even_size(height, width) if kind == 'video' else (height, width)
            _check_megapixels('the output', *sizes['size'], args.max_megapixels)
        return resize(frame, *sizes['size'])

    try:
        photos, fps = video.read_clip(args.content, prepare, args.start, args.end, args.frames)
    except video.ClipError as error:
        raise UserError(str(error)) from None
    height, width = photos[0].shape[:2]
    if args.flow == 'dis' and len(photos) > 1 and min(height, width) < flow.DIS_MIN_SIDE:
        raise UserError(f'frames of {width}x{height} are too small for DIS optical flow (both sides at least '
                        f'{flow.DIS_MIN_SIDE} pixels): use a larger --max-size or --width, or --flow farneback')
    frames = photos
    if args.preserve_colors == 'histogram':
        styles = [colors.match_histogram(style, photos[0]) for style in styles]
    elif args.preserve_colors == 'luminance':
        styles = [colors.match_luminance(style, photos[0]) for style in styles]
        frames = [colors.luminance_image(photo) for photo in photos]
    styles = [scaled_style(style, width, scale)
              for style, scale in zip(styles, args.style_scales or [1.0] * len(styles))]

    def finish(image, frame):
        if args.preserve_colors in ('luminance', 'post'):
            return colors.transfer_luminance(image, photos[frame])
        return image

    net = net or vgg.load_net_cached(args.network, vgg.converted_cache_dir())
    device = stylize.existing_device(args.device) if args.device else stylize.default_device()  # the graph's
    gamma_t = args.temporal_weight
    if gamma_t is None:
        gamma_t = video.default_temporal_weight(height, width, args.content_weight, args.content_layers[0],
                                                args.passes > 1)
    initial = {'noise': None, 'content': lambda k: frames[k], 'style': lambda k: resize(styles[0], height, width)}
    print(f'output {width}x{height}, {len(frames)} frames at {fps:g} fps, {len(styles)} style image(s), '
          f'{args.optimizer}, {"single pass" if args.passes == 1 else f"{args.passes} passes"}, '
          f'gamma_t {gamma_t:.4g}, on {device}; finished frames in {directory}', flush=True)
    steps = video.stylize_clip(
        net, frames, styles, directory, settings=settings, passes=args.passes, long_term=args.long_term,
        iterations=args.iterations, temporal_weight=gamma_t, flow_method=args.flow, initial=initial[args.init],
        device=device, **stylize_options(args))
    started, stop, resumed = time.perf_counter(), None, 0
    try:
        for step in steps:
            if isinstance(step, video.FrameDone):
                if step.resumed:
                    resumed += 1
                else:
                    print(f'{_frame_prefix(step)}done in {format_duration(step.seconds)} (optical flow '
                          f'{step.flow_seconds:.2f} s)', flush=True)
                continue
            if resumed:
                print(f'resuming: {resumed} finished frame(s) found in {directory}', flush=True)
                resumed = 0
            p = step.progress
            if args.print_iterations and p.iteration % args.print_iterations == 0 or p.iteration == step.iterations:
                remaining = '' if math.isnan(step.remaining_seconds) else \
                    f'  remaining {format_duration(step.remaining_seconds)}'
                print(f'{_frame_prefix(step)}iteration {p.iteration:>{len(str(step.iterations))}}/{step.iterations}  '
                      f'content {p.content:.4g}  style {p.style:.4g}  temporal {p.temporal:.4g}  '
                      f'total {p.total:.4g}{remaining}', flush=True)
    except (KeyboardInterrupt, stylize.NonFiniteLoss) as error:
        stop = error
    finally:
        steps.close()
    finished = video.finished_frames(directory, len(frames), args.passes)
    if stop is None and resumed:
        print(f'all {len(finished)} frames were already finished in {directory}')
    if finished:
        clip = [np.clip(np.rint(finish(video.read_png(path), k)), 0, 255).astype(np.uint8)
                for k, path in enumerate(finished)]
        video.write_clip(args.output, clip, fps, overwrite=True)
        _remember_partial(directory, args.output, partial=len(finished) < len(frames) or stop is not None)
    if stop is not None:
        if isinstance(stop, KeyboardInterrupt):
            what, code = f'interrupted ({_signal_name(stop)})', _signal_exit_code(stop)
        else:
            what, code = f'error: {stop} ({_likely_cause(stop.term)})', 1
        saved = f'wrote the {len(finished)} finished frame(s) to {args.output}' if finished else 'no frame finished'
        raise Stopped(f'{what}; {saved}; run the same command again to continue', code)
    print(f'wrote {args.output} ({len(finished)} frames at {fps:g} fps) in '
          f'{format_duration(time.perf_counter() - started)}')


PARTIAL = 'partial-output.json'


def _remember_partial(directory, output, partial):
    """Records that `output` holds this run's unfinished clip, so that a rerun may replace it."""
    record = os.path.join(directory, PARTIAL)
    if partial:
        info = os.stat(output)
        write_atomically(record, lambda f: f.write(json.dumps(
            [os.path.abspath(output), info.st_size, info.st_mtime_ns]).encode()))
    elif os.path.exists(record):
        os.unlink(record)


def _check_video_output(args, directory):
    """An existing output is replaced only with --overwrite, or when it is this run's own unfinished clip."""
    output = args.output.rstrip('/') or args.output
    if not os.path.exists(output) or args.overwrite:
        return
    record = os.path.join(directory, PARTIAL)
    if os.path.exists(record):
        with open(record) as f:
            path, size, mtime = json.load(f)
        info = os.stat(output)
        if path == os.path.abspath(output) and (info.st_size, info.st_mtime_ns) == (size, mtime):
            return
    raise UserError(f'{output} exists; choose another name or pass --overwrite')


def _frame_prefix(step):
    passes = f'pass {step.pass_}/{step.passes}  ' if step.passes > 1 else ''
    return f'{passes}frame {step.frame + 1:>{len(str(step.count))}}/{step.count}  '


def _stage_prefix(stage, sizes):
    return f'stage {stage + 1}/{len(sizes)}  ' if len(sizes) > 1 else ''


def _stopped(args, reason, progress, finish, finished=False):
    """Writes the best image so far to the output, for an interrupt or a loss that is not finite, and says so.
    finished: the interrupt came after the last iteration, while the finished image was being written."""
    if isinstance(reason, KeyboardInterrupt):
        what, code = f'interrupted ({_signal_name(reason)})', _signal_exit_code(reason)
        resume = f'; continue with --initial {args.output}'
        if finished:
            what, resume = f'{what} after the last iteration', ''
    elif isinstance(reason, stylize.DeviceLost):
        addresses = cluster.parse_addresses(args.cluster)
        task, lost = cluster.lost_worker(addresses, reason)
        what, code = f'error: {lost} ({reason})', 1
        remaining = ','.join(address for k, address in enumerate(addresses) if k != task)
        resume = (f'; continue with --initial {args.output} --cluster {remaining}' if task is not None and remaining
                  else f'; continue with --initial {args.output} once the workers run again')
    else:
        iteration = progress.iteration + 1 if progress else 0
        what, code = f'error: {reason} at iteration {iteration} ({_likely_cause(reason.term)})', 1
        resume = ''
    if progress is None:
        return Stopped(f'{what}; nothing written', code)
    written, error = _write_result(args.output, finish(progress.best_image))
    saved = (f'wrote the finished image to {written}' if finished else
             f'wrote the best image so far (iteration {progress.iteration}) to {written}')
    if error:
        saved, resume = f'{saved} (could not write {args.output}: {error})', resume.replace(args.output, written)
    if args.progress_write:
        saved += f' and the losses to {args.progress_write}'
    if args.progress_plot:
        saved += f' and the plot to {args.progress_plot}'
    return Stopped(f'{what}; {saved}{resume}', code)


def _write_result(path, image):
    """Writes the run's image to `path` or, should that fail after all the checks, to a new PNG beside it: an
    hour of computation is never lost to a file name. Returns (the path written, why not `path`, or None)."""
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
            raise Stopped(f'error: could not write {path} ({error}) nor {rescue} ({second}): the result is '
                          f'lost', 1) from None
        return rescue, error


def _likely_cause(term):
    weight = {'content': '--content-weight', 'style': '--style-weight or --style-layer-weights',
              'tv': '--tv-weight', 'temporal': '--temporal-weight'}.get(term, 'a loss weight')
    return f'{weight} too large for 32-bit floats?' + (' With Adam, --learning-rate?' if term == 'gradient' else '')


def _raise_interrupt(signum, frame):
    """SIGTERM stops a run as Ctrl-C does: the best image so far is written."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _signal_name(interrupt):
    return interrupt.args[0] if interrupt.args else 'SIGINT'


def _signal_exit_code(interrupt):
    return 128 + signal.Signals[_signal_name(interrupt)].value


def main(argv=None):
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')  # TensorFlow's start-up chatter is not for users
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    tiling.limit_malloc_arenas()
    try:
        run(args)
    except (UserError, vgg.WeightsError, cluster.ClusterError) as error:
        print(f'{parser.prog}: error: {error}', file=sys.stderr)
        return 1
    except Stopped as stop:
        print(f'\n{parser.prog}: {stop}', file=sys.stderr)
        return stop.code
    except KeyboardInterrupt as interrupt:
        print(f'\n{parser.prog}: interrupted ({_signal_name(interrupt)}) before the optimization started; '
              f'nothing written', file=sys.stderr)
        return _signal_exit_code(interrupt)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == '__main__':
    sys.exit(main())
