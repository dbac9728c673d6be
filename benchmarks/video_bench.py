#!/usr/bin/env python3
"""Video benchmarks: seconds per frame (first and later frames, with optical flow's share), and the temporal
error of a clip stylized frame by frame, with the temporal loss, with long-term consistency and multi-pass.

    python benchmarks/video_bench.py speed --sizes 256,512          # random-weight VGG-19 of the real size
    python benchmarks/video_bench.py coherence                       # a generated texture clip
    python benchmarks/video_bench.py clip --out clip.mp4             # such a clip over examples/chelsea.png, to try
    python benchmarks/video_bench.py coherence --image photo.jpg --style painting.jpg \\
        --network imagenet-vgg-verydeep-19.mat --motions pan-zoom,zoom,rotation --methods warped,temporal \\
        --sheet frames.png --gif frames.gif

The coherence clips are generated here: a window over an image (or a smooth random texture) that pans and
zooms in, zooms out, or turns a little every frame (MOTIONS), so its true optical flow is known in closed form.
Each stylized clip x gets three scores: its temporal error, the paper's measure, the mean over frames k > 1 of
(1/D) sum c (x_k - w(x_{k-1}))^2 with the true flow for w and c (the consistency weights of the true flows: 0
only where a pixel came from outside the previous frame); its sharpness, the last frame's mean gradient
magnitude over the first's, divided by the content's own ratio; and the standard deviation and mean of the
entering strip (the last frame's pixels from outside the first frame) against the same pixels of the first
frame, which a strip painted like the rest matches.
"""
import argparse
import os
import statistics
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from styletransfer.compute import devices  # noqa: E402
from styletransfer.media import files  # noqa: E402
from styletransfer.media import flow  # noqa: E402
from styletransfer.media import images  # noqa: E402
import sheets  # noqa: E402
import stylize  # noqa: E402
import vgg  # noqa: E402
from styletransfer.media import video  # noqa: E402

ASPECT = 3 / 4
WINDOW = 0.6  # the first frame's window: this fraction of the source image's width
# The clips' motions, per frame: the window's shift (x and y, fractions of the frame's width, so that a clip is
# the same motion at every size), its scale (source pixels per output pixel; below 1 zooms in) and its rotation
# (degrees). All keep the true optical flow known in closed form.
MOTIONS = {
    # right and down, zooming in by 1.5 %: a strip enters at the right (2 px and 0.7 px a frame at 160 px)
    'pan-zoom': ((2.0 / 160, 0.7 / 160), 0.985, 0.0),
    'zoom': ((0.0, 0.0), 1 / 0.985, 0.0),  # zooming out by 1.5 %: a border enters on every side
    'rotation': ((0.0, 0.0), 1.0, 1.0),  # turning by 1 degree: the corners enter
}
GIF_FPS = 4  # --gif: slow enough to follow a stroke from frame to frame
# see methods()
METHODS = ('independent', 'warped', 'temporal', 'temporal/10', 'temporal-content', 'long-term', 'multi-pass')
# The earlier default gamma_t: the authors' temporal/content balance (artistic_video.lua: -temporal_weight
# 1e3 against -content_weight 5, a mean over relu4_2's N M values), in ours gamma_t = (1e3 / 5) alpha N M / 2
AUTHORS_TEMPORAL_OVER_CONTENT = 1e3 / 5


# The generated clip

def window(k, motion, source_shape, start_scale):
    """The window of frame k: its centre in source pixels (x, y), source pixels per output pixel, and its
    rotation in radians."""
    shift, zoom, degrees = MOTIONS[motion]
    step = source_shape[1] * WINDOW  # a frame's width in source pixels, at the first frame's scale
    centre = (source_shape[1] * 0.45 + k * shift[0] * step, source_shape[0] * 0.5 + k * shift[1] * step)
    return np.array(centre), start_scale * zoom ** k, np.radians(degrees * k)


def _rotation(angle):
    return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])


def source_points(k, motion, height, width, source_shape, start_scale):
    """Where each pixel of frame k lies in the source image: [height, width, 2] of (x, y)."""
    centre, scale, angle = window(k, motion, source_shape, start_scale)
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float64)
    offsets = np.stack([columns - (width - 1) / 2, rows - (height - 1) / 2], axis=2)
    return centre + scale * offsets @ _rotation(angle).T


def true_flow(k, j, motion, height, width, source_shape, start_scale):
    """The exact flow of frame k towards frame j: where each pixel's source point appears in frame j."""
    source = source_points(k, motion, height, width, source_shape, start_scale)
    centre, scale, angle = window(j, motion, source_shape, start_scale)
    middle = np.array([(width - 1) / 2, (height - 1) / 2])
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float64)
    seen = middle + (source - centre) @ _rotation(-angle).T / scale
    return (seen - np.stack([columns, rows], axis=2)).astype(np.float32)


def make_clip(source, count, height, width, motion):
    """`count` frames of the moving window over `source` (RGB 0..255), and the window's first scale."""
    from scipy.ndimage import gaussian_filter, map_coordinates
    start_scale = source.shape[1] * WINDOW / width
    blurred = gaussian_filter(source, (0.5 * start_scale, 0.5 * start_scale, 0))  # no aliasing when sampling
    frames = []
    for k in range(count):
        points = source_points(k, motion, height, width, source.shape, start_scale)
        channels = [map_coordinates(blurred[:, :, c], [points[:, :, 1], points[:, :, 0]], order=3, mode='reflect')
                    for c in range(3)]
        frames.append(np.stack(channels, axis=2).clip(0, 255).astype(np.float32))
    return frames, start_scale


def texture(height, width, seed=0):
    from scipy.ndimage import gaussian_filter
    noise = gaussian_filter(np.random.default_rng(seed).uniform(0, 255, (height, width, 3)), (6, 6, 0))
    return (noise - noise.min()) / (noise.max() - noise.min()) * 255


def temporal_error(stylized, flows):
    """Mean over k > 1 of (1/D) sum c (x_k - w(x_{k-1}))^2; flows[k] = (backward k -> k-1, forward k-1 -> k)."""
    errors = []
    for k in range(1, len(stylized)):
        backward, forward = flows[k]
        c = flow.consistency(backward, forward)
        warped, _ = flow.warp(stylized[k - 1], backward)
        errors.append(np.sum(c[:, :, None] * (stylized[k] - warped) ** 2) / stylized[k].size)
    return float(np.mean(errors))


def sharpness(image):
    """The mean gradient magnitude of an image's luma (central differences)."""
    rows, columns = np.gradient(np.asarray(image, np.float64) @ np.array([0.299, 0.587, 0.114]))
    return float(np.mean(np.hypot(rows, columns)))


def strip_statistics(image, strip):
    """The standard deviation (the channels' mean) and the mean pixel of an image over a mask."""
    pixels = np.asarray(image, np.float64)[strip]
    return float(np.mean(pixels.std(axis=0))), pixels.mean(axis=0)


def scores(stylized, frames, flows, strip):
    """The temporal error under the true flows; the last frame's sharpness over the first's, divided by the
    content's own ratio (1: as sharp as the first frame, for this content); the entering strip's standard
    deviation and mean in the last frame and over the same pixels in the first."""
    ratio = sharpness(stylized[-1]) / sharpness(stylized[0]) / (sharpness(frames[-1]) / sharpness(frames[0]))
    return dict(error=temporal_error(stylized, flows), sharpness=ratio, last=strip_statistics(stylized[-1], strip),
                first=strip_statistics(stylized[0], strip))


def frame_settings(style_weight, height, width, **changes):
    """The settings the command line gives frames of this size for --style-weight (beta scaled to their pixels),
    every run from seed 0's white noise."""
    return stylize.Settings(seed=0, style_weight=stylize.style_weight_at(style_weight, height, width), **changes)


def run_clip(net, frames, styles, directory, style_weight, **clip):
    """video.stylize_clip with these ClipSettings to the end, with the settings the command line gives a clip
    (a single pass stops a frame early as the authors' code does); returns the finished frames and the seconds
    it took."""
    started = time.perf_counter()
    clip = video.ClipSettings(**clip)
    settings = frame_settings(style_weight, *frames[0].shape[:2],
                              tolerance=video.FRAME_TOLERANCE if clip.passes == 1 else 0.0)
    for _ in video.stylize_clip(net, frames, styles, directory, settings, clip, devices.Placement(('/cpu:0',))):
        pass
    paths = video.finished_frames(directory, len(frames), clip.passes)
    return [images.read_image(path) for path in paths], time.perf_counter() - started


def methods(args, height, width):
    """The methods compared: key -> (name, kind, ClipSettings options)."""
    return {
        'independent': ('frame by frame (each from white noise, gamma_t = 0)', 'independent', {}),
        'warped': ('previous frame warped as start, gamma_t = 0', 'single', dict(temporal_weight=0.0)),
        'temporal': ('+ temporal loss (short-term, default gamma_t)', 'single', {}),
        'temporal/10': ('+ temporal loss, gamma_t / 10', 'single', dict(temporal_weight=video.default_temporal_weight(
            frame_settings(args.style_weight, height, width).style_weight, stylize.Settings().style_weights()) / 10)),
        'temporal-content': ('+ temporal loss, gamma_t on the content term (the earlier default)', 'single', dict(
            temporal_weight=content_anchored_temporal_weight(height, width))),
        'long-term': (f'+ long-term consistency, J = {args.long_term}', 'single', dict(long_term=args.long_term)),
        'multi-pass': (f'multi-pass, {args.passes} passes of {args.pass_iterations} iterations', 'multi',
                       dict(passes=args.passes, iterations=(args.pass_iterations,))),
    }


def content_anchored_temporal_weight(height, width):
    """The earlier default gamma_t: (1e3 / 5) alpha N M / 2 for the default content layer (N channels, M positions)."""
    layer = stylize.CONTENT_LAYERS[0]
    positions = float(np.prod(vgg.layer_shape(height, width, vgg.strides(layer)[layer])))
    return AUTHORS_TEMPORAL_OVER_CONTENT * stylize.CONTENT_WEIGHT * vgg.channels(layer) * positions / 2


def load_network(path):
    if path:
        return vgg.load_net(path)
    from styletransfer.testing import synthetic_vgg
    path = os.path.join(tempfile.mkdtemp(), 'random-vgg19.mat')
    synthetic_vgg.write_current(path, synthetic_vgg.random_conv_weights(seed=0))
    return vgg.load_net(path)


def coherence(args):
    width = args.size
    height = round(width * ASPECT)
    source = images.read_image(args.image) if args.image else texture(600, 800)
    style = images.read_image(args.style) if args.style else texture(height, width, seed=1)
    styles = [images.scaled_style(style, width, 1.0)]
    net = load_network(args.network)
    first, later = args.iterations
    runs = methods(args, height, width)
    rows, sheet, animated = [], [], []
    for motion in args.motions:
        frames, start_scale = make_clip(source, args.frames, height, width, motion)
        flows = [None] + [(true_flow(k, k - 1, motion, height, width, source.shape, start_scale),
                           true_flow(k - 1, k, motion, height, width, source.shape, start_scale))
                          for k in range(1, args.frames)]
        # the entering strip: the last frame's pixels whose source lies outside the first frame
        _, seen_first = flow.warp(np.zeros((height, width)), true_flow(args.frames - 1, 0, motion, height, width,
                                                                       source.shape, start_scale))
        strip = ~seen_first
        estimated = [flow.optical_flow(frames[k], frames[k - 1]) for k in range(1, args.frames)]
        endpoint = np.mean([np.hypot(*(e - f[0]).transpose(2, 0, 1))[8:-8, 8:-8].mean()
                            for e, f in zip(estimated, flows[1:])])
        content = scores(frames, frames, flows, strip)
        print(f'{motion}: {args.frames} frames of {width}x{height}; DIS flow vs the true flow: mean endpoint error '
              f'{endpoint:.3f} px (8 px from the borders); the content\'s own temporal error '
              f'{content["error"]:.1f}; entering strip {100 * strip.mean():.1f} % of the last frame', flush=True)
        sheet.append((f'{motion}: content', frames))
        animated.append([])
        with tempfile.TemporaryDirectory() as scratch:
            for key in args.methods:
                name, kind, options = runs[key]
                directory = os.path.join(scratch, key.replace('/', '-'))
                if kind == 'independent':
                    stylized, seconds = [], 0.0
                    for k, frame in enumerate(frames):
                        result, took = run_clip(net, [frame], styles, os.path.join(directory, str(k)),
                                                args.style_weight, iterations=(first,))
                        stylized += result
                        seconds += took
                else:
                    stylized, seconds = run_clip(net, frames, styles, directory, args.style_weight,
                                                 **{'iterations': (first, later), **options})
                score = scores(stylized, frames, flows, strip)
                rows.append((motion, name, score, seconds))
                sheet.append((f'{motion}: {name}', stylized))
                animated[-1].append((name, stylized))
                print(f'{motion}, {name}: temporal error {score["error"]:.1f}, sharpness {score["sharpness"]:.2f}, '
                      f'entering strip std {score["last"][0]:.0f} (first frame {score["first"][0]:.0f})  '
                      f'({seconds:.0f} s)', flush=True)
    print('\n| clip | method | temporal error | sharpness, last / first | entering strip std, last (first) | '
          'its mean, last (first) | time |\n| --- | --- | --- | --- | --- | --- | --- |')
    for motion, name, score, seconds in rows:
        means = [' '.join(f'{v:.0f}' for v in score[frame][1]) for frame in ('last', 'first')]
        print(f'| {motion} | {name} | {score["error"]:.1f} | {score["sharpness"]:.2f} | {score["last"][0]:.0f} '
              f'({score["first"][0]:.0f}) | {means[0]} ({means[1]}) | {seconds:.0f} s |')
    if args.sheet:
        write_sheet(args.sheet, sheet, args.sheet_frames)
    if args.gif:
        write_gif(args.gif, animated)


def write_sheet(path, rows, shown=None):
    """Rows of frames side by side in the order printed (each clip's content, then its methods), each row's name
    and frame numbers above it. shown: the frames to show (0-based), default all."""
    shown = range(len(rows[0][1])) if shown is None else shown
    strips = [sheets.captioned([frames[k] for k in shown],
                               [f'{name if column == 0 else ""}\nframe {k + 1}' for column, k in enumerate(shown)])
              for name, frames in rows]
    _write_picture(path, np.concatenate([np.asarray(strip) for strip in strips]))


def write_gif(path, rows):
    """An animated GIF of each clip's methods side by side, one row per clip, each picture named."""
    pictures = []
    for k in range(len(rows[0][0][1])):
        strips = [sheets.captioned([frames[k] for _, frames in clip], [f'{name}\nframe {k + 1}' for name, _ in clip])
                  for clip in rows]
        pictures.append(np.concatenate([np.asarray(strip) for strip in strips]))
    video.write_clip(path, pictures, GIF_FPS, overwrite=True)
    print(f'wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB)')


def _write_picture(path, picture):
    from PIL import Image
    files.write_atomically(path, lambda f: Image.fromarray(picture).save(f, format=Image.registered_extensions()[
        os.path.splitext(path)[1].lower()], quality=90))
    print(f'wrote {path}')


def speed(args):
    from styletransfer.testing import synthetic_vgg
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        path = args.network
        if path is None:
            path = os.path.join(scratch, 'random-vgg19.mat')
            synthetic_vgg.write_current(path, synthetic_vgg.random_conv_weights(seed=0))
        net = vgg.load_net(path)
        flow.optical_flow(texture(16, 32), texture(16, 32))  # OpenCV's import is not the flow's time
        for size in args.sizes:
            height = round(size * ASPECT)
            frames, _ = make_clip(texture(600, 800), 2, height, size, 'pan-zoom')
            style = texture(height, size, seed=1)
            stamps = {0: [], 1: []}
            done = {}
            started = time.perf_counter()
            for step in video.stylize_clip(net, frames, [style], os.path.join(scratch, str(size)),
                                           frame_settings(stylize.STYLE_WEIGHT, height, size),
                                           video.ClipSettings(iterations=(args.iterations, args.iterations)),
                                           devices.Placement(('/cpu:0',))):
                if isinstance(step, video.FrameDone):
                    done[step.frame] = step
                    started = time.perf_counter()
                else:
                    stamps[step.frame].append(time.perf_counter() - started)
            for frame, name in ((0, 'first'), (1, 'later')):
                per_iteration = statistics.median(np.diff(stamps[frame])[1:])
                flow_seconds = done[frame].flow_seconds
                setup = stamps[frame][0] - flow_seconds
                default = video.FIRST_ITERATIONS if frame == 0 else video.LATER_ITERATIONS
                total = setup + flow_seconds + default * per_iteration
                rows.append((f'{size}x{height}', name, per_iteration, setup, flow_seconds, default, total))
                print(f'{size}x{height} {name} frame: {per_iteration:.2f} s/iteration, set-up {setup:.1f} s, '
                      f'optical flow {flow_seconds:.3f} s; at {default} iterations {total / 60:.1f} min, '
                      f'flow {100 * flow_seconds / total:.3f} %', flush=True)
    print('\n| size | frame | s / iteration | set-up | optical flow and c | iterations | s / frame | flow share |')
    print('| --- | --- | --- | --- | --- | --- | --- | --- |')
    for size, name, per_iteration, setup, flow_seconds, default, total in rows:
        print(f'| {size} | {name} | {per_iteration:.2f} | {setup:.1f} s | {flow_seconds:.3f} s | {default} | '
              f'{total:.0f} | {100 * flow_seconds / total:.3f} % |')


def clip(args):
    """Writes the generated clip of one motion over an image as a video, for trying neural_style.py on a clip."""
    width = args.size
    frames, _ = make_clip(images.read_image(args.image), args.frames, round(width * ASPECT), width, args.motion)
    video.write_clip(args.out, [images.to_uint8(frame) for frame in frames], args.fps)
    print(f'wrote {args.out}: {args.frames} frames of {width}x{round(width * ASPECT)} at {args.fps:g} fps')


def names(allowed):
    """An argparse type: comma-separated names, each one of `allowed`."""
    def parse(text):
        chosen = text.split(',')
        unknown = [name for name in chosen if name not in allowed]
        if unknown:
            raise argparse.ArgumentTypeError(f'unknown {", ".join(unknown)}; choose from {", ".join(allowed)}')
        return chosen
    return parse


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    commands = parser.add_subparsers(dest='command', required=True)
    fast = commands.add_parser('speed', help='seconds per frame')
    fast.add_argument('--sizes', type=lambda text: [int(v) for v in text.split(',')], default=[256, 512])
    fast.add_argument('--iterations', type=int, default=6, help='measured iterations per frame')
    fast.add_argument('--network', help='a VGG-19 weights file (default: a random-weight one made here)')
    table = commands.add_parser('coherence', help='the temporal error table')
    table.add_argument('--image', help='the image the clip moves over (default: a smooth random texture)')
    table.add_argument('--style', help='the style image (default: another texture)')
    table.add_argument('--network', help='a VGG-19 weights file (default: a random-weight one made here)')
    table.add_argument('--size', type=int, default=128, help='frame width')
    table.add_argument('--style-weight', type=float, default=stylize.STYLE_WEIGHT,
                       help='beta for a 512x384 frame, scaled to the frames\' pixels as by neural_style.py')
    table.add_argument('--frames', type=int, default=5)
    table.add_argument('--iterations', type=lambda text: [int(v) for v in text.split(',')], default=[80, 40],
                       help='first frame, later frames (and each frame of frame by frame: the first number)')
    table.add_argument('--long-term', type=int, default=3)
    table.add_argument('--passes', type=int, default=6)
    table.add_argument('--pass-iterations', type=int, default=15)
    table.add_argument('--motions', type=names(MOTIONS), default=['pan-zoom'],
                       help=f'the clips, comma-separated: {", ".join(MOTIONS)}')
    table.add_argument('--methods', type=names(METHODS), default=list(METHODS),
                       help=f'the methods compared, comma-separated: {", ".join(METHODS)}')
    table.add_argument('--sheet', help='write the frames side by side to this image (PNG or JPEG)')
    table.add_argument('--sheet-frames', type=lambda text: [int(v) - 1 for v in text.split(',')],
                       help='the frames the sheet shows, counted from 1 (default all)')
    table.add_argument('--gif', help=f'write an animated GIF of the methods side by side, one row per clip, at '
                                     f'{GIF_FPS} frames a second')
    sample = commands.add_parser('clip', help='write a generated clip over an image, to try a video with')
    sample.add_argument('--image', default=os.path.join(ROOT, 'examples', 'chelsea.png'),
                        help='the image the window moves over')
    sample.add_argument('--out', required=True, help='the clip: a video file (.mp4, ...), a .gif or a directory/')
    sample.add_argument('--size', type=int, default=256, help='frame width')
    sample.add_argument('--frames', type=int, default=48)
    sample.add_argument('--fps', type=float, default=12)
    sample.add_argument('--motion', choices=MOTIONS, default='pan-zoom')
    return parser


def main():
    args = build_parser().parse_args()
    {'speed': speed, 'coherence': coherence, 'clip': clip}[args.command](args)


if __name__ == '__main__':
    main()
