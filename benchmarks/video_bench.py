#!/usr/bin/env python3
"""Video benchmarks: seconds per frame (first and later frames, with optical flow's share), and the temporal
error of a clip stylized frame by frame, with the temporal loss, with long-term consistency and multi-pass.

    python benchmarks/video_bench.py speed --sizes 256,512          # random-weight VGG-19 of the real size
    python benchmarks/video_bench.py coherence                       # a generated texture clip
    python benchmarks/video_bench.py coherence --image photo.jpg --style painting.jpg \\
        --network imagenet-vgg-verydeep-19.mat --sheet frames.png

The coherence clip is generated here: a window over an image (or a smooth random texture) that moves and
zooms in a little every frame, so its true optical flow is known in closed form. The temporal error of a
stylized clip x is the paper's measure, the mean over frames k > 1 of (1/D) sum c (x_k - w(x_{k-1}))^2, with
the true flow for w and c (the consistency weights of the true flows: 0 only where a pixel came from outside
the previous frame).
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'tests')]
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import devices  # noqa: E402
import flow  # noqa: E402
import images  # noqa: E402
import stylize  # noqa: E402
import vgg  # noqa: E402
import video  # noqa: E402

ASPECT = 3 / 4
SHIFT = (2.0, 0.7)  # the window's motion per frame, in output pixels
ZOOM = 0.985  # the window's scale per frame: zooming in by 1.5 %
SETTINGS = dict(seed=0)  # every run from the same white noise, on the CPU (PLACEMENT)


# The generated clip

def window(k, height, width, source_shape, start_scale):
    """The window of frame k: its centre in source pixels (x, y) and source pixels per output pixel."""
    scale = start_scale * ZOOM ** k
    centre = (source_shape[1] * 0.45 + k * SHIFT[0] * start_scale, source_shape[0] * 0.5 + k * SHIFT[1] * start_scale)
    return np.array(centre), scale


def true_flow(k, j, height, width, source_shape, start_scale):
    """The exact flow of frame k towards frame j: where each pixel's source point appears in frame j."""
    centre_k, scale_k = window(k, height, width, source_shape, start_scale)
    centre_j, scale_j = window(j, height, width, source_shape, start_scale)
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float64)
    middle = np.array([(width - 1) / 2, (height - 1) / 2])
    points = np.stack([columns, rows], axis=2)
    source = centre_k + (points - middle) * scale_k
    return (middle + (source - centre_j) / scale_j - points).astype(np.float32)


def make_clip(source, count, height, width):
    """`count` frames of the moving, zooming window over `source` (RGB 0..255), and the window's first scale."""
    from scipy.ndimage import gaussian_filter, map_coordinates
    start_scale = source.shape[1] * 0.6 / width
    blurred = gaussian_filter(source, (0.5 * start_scale, 0.5 * start_scale, 0))  # no aliasing when sampling
    frames = []
    for k in range(count):
        centre, scale = window(k, height, width, source.shape, start_scale)
        rows, columns = np.mgrid[0:height, 0:width].astype(np.float64)
        x = centre[0] + (columns - (width - 1) / 2) * scale
        y = centre[1] + (rows - (height - 1) / 2) * scale
        frames.append(np.stack([map_coordinates(blurred[:, :, c], [y, x], order=3, mode='reflect')
                                for c in range(3)], axis=2).clip(0, 255).astype(np.float32))
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


def run_clip(net, frames, styles, directory, **clip):
    """video.stylize_clip with these ClipSettings to the end; returns the finished frames and the seconds it
    took."""
    started = time.perf_counter()
    clip = video.ClipSettings(**clip)
    for _ in video.stylize_clip(net, frames, styles, directory, stylize.Settings(**SETTINGS), clip,
                                devices.Placement(('/cpu:0',))):
        pass
    paths = video.finished_frames(directory, len(frames), clip.passes)
    return [images.read_image(path) for path in paths], time.perf_counter() - started


def coherence(args):
    width = args.size
    height = round(width * ASPECT)
    source = images.read_image(args.image) if args.image else texture(600, 800)
    frames, start_scale = make_clip(source, args.frames, height, width)
    flows = [None] + [(true_flow(k, k - 1, height, width, source.shape, start_scale),
                       true_flow(k - 1, k, height, width, source.shape, start_scale)) for k in range(1, args.frames)]
    estimated = [flow.optical_flow(frames[k], frames[k - 1]) for k in range(1, args.frames)]
    endpoint = np.mean([np.hypot(*(e - f[0]).transpose(2, 0, 1))[8:-8, 8:-8].mean()
                        for e, f in zip(estimated, flows[1:])])
    print(f'clip: {args.frames} frames of {width}x{height}; DIS flow vs the true flow: mean endpoint error '
          f'{endpoint:.3f} px (8 px from the borders)', flush=True)
    style = images.read_image(args.style) if args.style else texture(height, width, seed=1)
    styles = [images.scaled_style(style, width, 1.0)]
    if args.network:
        net = vgg.load_net(args.network)
    else:
        import synthetic_vgg
        path = os.path.join(tempfile.mkdtemp(), 'random-vgg19.mat')
        synthetic_vgg.write_current(path, synthetic_vgg.random_conv_weights(seed=0))
        net = vgg.load_net(path)
    first, later = args.iterations
    runs = [
        ('frame by frame (each from white noise, gamma_t = 0)', 'independent', {}),
        ('previous frame warped as start, gamma_t = 0', 'single', dict(temporal_weight=0.0)),
        ('+ temporal loss (short-term, default gamma_t)', 'single', {}),
        ('+ temporal loss, gamma_t / 10', 'single', dict(temporal_weight=video.default_temporal_weight(
            height, width, stylize.CONTENT_WEIGHT, stylize.CONTENT_LAYERS[0]) / 10)),
        (f'+ long-term consistency, J = {args.long_term}', 'single', dict(long_term=args.long_term)),
        (f'multi-pass, {args.passes} passes of {args.pass_iterations} iterations', 'multi',
         dict(passes=args.passes, iterations=(args.pass_iterations,))),
    ]
    rows, results = [], {}
    with tempfile.TemporaryDirectory() as scratch:
        for number, (name, kind, options) in enumerate(runs):
            directory = os.path.join(scratch, str(number))
            if kind == 'independent':
                stylized, seconds = [], 0.0
                for k, frame in enumerate(frames):
                    result, took = run_clip(net, [frame], styles, os.path.join(directory, str(k)),
                                            iterations=(first,))
                    stylized += result
                    seconds += took
            else:
                options.setdefault('iterations', (first, later))
                stylized, seconds = run_clip(net, frames, styles, directory, **options)
            error = temporal_error(stylized, flows)
            rows.append((name, error, seconds))
            results[name] = stylized
            print(f'{name}: temporal error {error:.1f}  ({seconds:.0f} s)', flush=True)
    print('\n| method | temporal error | time |\n| --- | --- | --- |')
    for name, error, seconds in rows:
        print(f'| {name} | {error:.1f} | {seconds:.0f} s |')
    if args.sheet:
        write_sheet(args.sheet, frames, [(name, results[name]) for name, _, _ in rows])


def write_sheet(path, frames, rows):
    """The content frames above each method's frames, side by side, unlabelled rows in the table's order."""
    from PIL import Image
    height, width = frames[0].shape[:2]
    sheet = np.full(((len(rows) + 1) * (height + 4), len(frames) * (width + 4), 3), 255, np.uint8)
    for r, row in enumerate([frames] + [stylized for _, stylized in rows]):
        for k, image in enumerate(row):
            sheet[r * (height + 4):r * (height + 4) + height, k * (width + 4):k * (width + 4) + width] = \
                images.to_uint8(image)
    Image.fromarray(sheet).save(path)
    print(f'wrote {path}')


def speed(args):
    import synthetic_vgg
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
            frames, _ = make_clip(texture(600, 800), 2, height, size)
            style = texture(height, size, seed=1)
            stamps = {0: [], 1: []}
            done = {}
            started = time.perf_counter()
            for step in video.stylize_clip(net, frames, [style], os.path.join(scratch, str(size)),
                                           stylize.Settings(**SETTINGS),
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


def main():
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
    table.add_argument('--frames', type=int, default=5)
    table.add_argument('--iterations', type=lambda text: [int(v) for v in text.split(',')], default=[80, 40],
                       help='first frame, later frames (and each frame of frame by frame: the first number)')
    table.add_argument('--long-term', type=int, default=3)
    table.add_argument('--passes', type=int, default=6)
    table.add_argument('--pass-iterations', type=int, default=15)
    table.add_argument('--sheet', help='write the frames side by side to this image')
    args = parser.parse_args()
    (speed if args.command == 'speed' else coherence)(args)


if __name__ == '__main__':
    main()
