#!/usr/bin/env python3
"""The fine grain and the border fringe of results, against the painting's own texture.

    python benchmarks/grain.py run --out grain --tv-weights 0,1,3 --paddings zero,reflect
    python benchmarks/grain.py report --out grain --tv-weights 0,1,3 --paddings zero,reflect --at 150,300,500
    python benchmarks/grain.py sheet --out grain --tv-weights 0,1,3 --paddings zero,reflect --at 500 --to grain.jpg

`run` makes, for each content:style pair, one neural_style.py run per total-variation weight gamma (at --size px,
--iterations L-BFGS iterations from seed 0's white noise in float32, the defaults otherwise), keeping the best image every
50 iterations (--checkpoint-output), so one run gives every iteration count. Runs are reused when their last
output exists. `report` prints, for each run and iteration count, three numbers on the luminance Y (0..255):

- grain: the fine texture left in the photograph's flat parts. The median, over the pixels where the photograph
  is flat (the third of its pixels with the least local contrast), of the local energy of Y minus Y blurred
  with a Gaussian of sigma 1 px (periods below about 4 px), divided by the same median over the whole painting
  at the size the run sees it. 1: as fine-grained as the painting; above 1: a grain the painting does not have.
- checker: the same ratio for the pixel-level checkerboard, the response to [[1, -1], [-1, 1]] / 4.
- fringe: the mean Y of the outermost 3 px band minus that of the band 8 to 24 px in, the result's minus the
  photograph's: below 0, a dark frame the photograph does not have.

`sheet` puts full-size crops from the flat corner of each photograph side by side (a row per pair).
"""
import argparse
import os

import numpy as np
from scipy import ndimage

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from styletransfer.media import images  # noqa: E402
import sheets  # noqa: E402

PAIRS = 'chelsea:starry_night.jpg,coffee:the_scream.jpg,astronaut:shipwreck.jpg'  # the gallery's pairs
CHECKPOINT_EVERY = 50
FLAT_SHARE = 1 / 3  # the photograph's flattest third of pixels
WINDOW = 9  # px: the local energy's and the local contrast's window
BORDER, INSIDE = 3, (8, 24)  # px: the fringe's outer band, and the band it is compared with


def luminance(image):
    return np.asarray(image, np.float64)[..., :3] @ np.array([0.299, 0.587, 0.114])


def local_energy(y, kind):
    """The mean over a WINDOW x WINDOW neighbourhood of the squared fine-scale response of Y."""
    if kind == 'grain':
        response = y - ndimage.gaussian_filter(y, 1.0)
    else:
        response = ndimage.convolve(y, np.array([[1.0, -1.0], [-1.0, 1.0]]) / 4)
    return ndimage.uniform_filter(response ** 2, WINDOW)


def flat_mask(photo):
    """Where the photograph is flat: the FLAT_SHARE of its pixels with the least local contrast."""
    y = ndimage.gaussian_filter(luminance(photo), 1.0)
    contrast = ndimage.uniform_filter(y ** 2, WINDOW) - ndimage.uniform_filter(y, WINDOW) ** 2
    return contrast <= np.quantile(contrast, FLAT_SHARE)


def band_mean(y, outer, inner):
    """The mean of Y over the pixels between `outer` and `inner` px from the nearest edge."""
    height, width = y.shape
    rows, columns = np.arange(height)[:, None], np.arange(width)[None, :]
    distance = np.minimum(np.minimum(rows, height - 1 - rows), np.minimum(columns, width - 1 - columns))
    return y[(distance >= outer) & (distance < inner)].mean()


def fringe(y):
    return band_mean(y, 0, BORDER) - band_mean(y, *INSIDE)


def measure(result, photo, painting):
    """grain, checker and fringe of a result (see the module's help); photo at the result's size, painting at the
    size the run saw it."""
    y, flat = luminance(result), flat_mask(photo)
    painting_y = luminance(painting)
    return {kind: float(np.median(local_energy(y, kind)[flat]) / np.median(local_energy(painting_y, kind)))
            for kind in ('grain', 'checker')} | {'fringe': float(fringe(y) - fringe(luminance(photo)))}


def pairs(args):
    return [pair.split(':') for pair in args.pairs.split(',')]


def variants(args):
    """(gamma, padding) of each run."""
    return [(tv, padding) for padding in args.paddings.split(',') for tv in args.tv_weights.split(',')]


def run_prefix(args, content_name, variant):
    tv, padding = variant
    return f'{args.out}-{content_name}-{args.size}-tv{tv}' + ('' if padding == 'zero' else f'-{padding}')


def checkpoint(args, content_name, variant, iteration):
    """The best image after `iteration` iterations: a checkpoint, or the output after the last (also when the
    run stopped before `iteration`: L-BFGS's line search found no lower point)."""
    output = f'{run_prefix(args, content_name, variant)}.png'
    saved = f'{run_prefix(args, content_name, variant)}-{iteration}.png'
    return saved if int(iteration) < args.iterations and os.path.exists(saved) else output


def inputs(args, content_name, style_name):
    """The photograph at the run's size and the painting as the run sees it (scaled to the output's width)."""
    photo = images.read_image(sheets.example_path(f'{content_name}.png'))
    photo = images.resize(photo, *images.output_size(photo.shape, None, args.size))
    painting = images.scaled_style(images.read_image(sheets.example_path(style_name)), photo.shape[1], 1.0)
    return photo, painting


def finished(args, content_name):
    """The variants whose run for this photograph has finished (report and sheet skip the others)."""
    return [variant for variant in variants(args)
            if os.path.exists(f'{run_prefix(args, content_name, variant)}.png')]


def run(args):
    for content_name, style_name in pairs(args):
        for variant in variants(args):
            tv, padding = variant
            if os.path.exists(f'{run_prefix(args, content_name, variant)}.png'):
                continue
            sheets.stylized(checkpoint(args, content_name, variant, args.iterations), [
                '--content', sheets.example_path(f'{content_name}.png'), '--styles', sheets.example_path(style_name),
                '--max-size', str(args.size), '--iterations', str(args.iterations), '--seed', '0',
                *(['--network', args.network] if args.network else []), '--tv-weight', tv, '--padding', padding,
                '--precision', 'float32',
                '--print-iterations', '50', '--checkpoint-output', f'{run_prefix(args, content_name, variant)}-%s.png',
                '--checkpoint-iterations', str(CHECKPOINT_EVERY), '--overwrite', *args.options])


def report(args):
    print('| pair | gamma (tv) | padding | iterations | grain | checker | fringe |\n'
          '| --- | --- | --- | --- | --- | --- | --- |')
    for content_name, style_name in pairs(args):
        photo, painting = inputs(args, content_name, style_name)
        for variant in finished(args, content_name):
            for iteration in args.at.split(','):
                result = images.read_image(checkpoint(args, content_name, variant, iteration))
                m = measure(result, photo, painting)
                print(f'| {content_name} x {style_name.split(".")[0]} | {variant[0]} | {variant[1]} | {iteration} | '
                      f'{m["grain"]:.2f} | {m["checker"]:.2f} | {m["fringe"]:+.1f} |')
    print(f'(the painting itself: grain 1, checker 1 by definition; flat: the photograph\'s flattest '
          f'{FLAT_SHARE:.0%}; {args.size} px)')


def flat_corner(photo, crop):
    """The top-left corner of the crop x crop window where the photograph is flattest."""
    flat = ndimage.uniform_filter(flat_mask(photo).astype(np.float64), crop)
    half = crop // 2
    inner = flat[half:photo.shape[0] - half, half:photo.shape[1] - half]
    row, column = np.unravel_index(np.argmax(inner), inner.shape)
    return row, column


def sheet(args):
    rows = []
    for content_name, style_name in pairs(args):
        photo, painting = inputs(args, content_name, style_name)
        row, column = flat_corner(photo, args.crop)
        pictures, captions = [], []
        for variant in finished(args, content_name):
            for iteration in args.at.split(','):
                result = images.read_image(checkpoint(args, content_name, variant, iteration))
                m = measure(result, photo, painting)
                crop = result[row:row + args.crop, column:column + args.crop]
                pictures.append(np.kron(crop, np.ones((args.zoom, args.zoom, 1))))
                captions.append(f'{content_name}, gamma {variant[0]}, {variant[1]}, {iteration} its\n'
                                f'grain {m["grain"]:.2f} checker {m["checker"]:.2f}')
        rows.append((pictures, captions))
    parts = []
    for index, (pictures, captions) in enumerate(rows):
        part = f'{args.to}.row{index}.png'
        sheets.write_sheet(part, pictures, captions)
        parts.append(images.read_image(part))
        os.remove(part)
    width = max(part.shape[1] for part in parts)
    stacked = np.concatenate([np.pad(part, ((0, sheets.GAP), (0, width - part.shape[1]), (0, 0)),
                                     constant_values=255) for part in parts])
    images.write_image(args.to, stacked)
    print(args.to)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('command', choices=('run', 'report', 'sheet'))
    parser.add_argument('--network', help='weights file (default: as neural_style.py finds or fetches it)')
    parser.add_argument('--out', required=True, help="prefix of the runs' files")
    parser.add_argument('--size', type=int, default=256)
    parser.add_argument('--iterations', type=int, default=500)
    parser.add_argument('--pairs', default=PAIRS, help='content:style of examples/, comma-separated')
    parser.add_argument('--tv-weights', default='0,1,3,10', help='gamma of each run, as written in file names')
    parser.add_argument('--paddings', default='zero', help='--padding of each run: zero, reflect or both')
    parser.add_argument('--at', default='150,300,500', help='iteration counts to report (multiples of 50)')
    parser.add_argument('--crop', type=int, default=96, help='sheet: the crop\'s side in pixels')
    parser.add_argument('--zoom', type=int, default=2, help='sheet: each pixel shown as zoom x zoom')
    parser.add_argument('--to', help='sheet: the file to write')
    parser.add_argument('options', nargs='*', help='more neural_style.py options for `run`, after --')
    return parser


def main():
    args = build_parser().parse_args()
    {'run': run, 'report': report, 'sheet': sheet}[args.command](args)


if __name__ == '__main__':
    main()
