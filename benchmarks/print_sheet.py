#!/usr/bin/env python3
"""A print: a photograph stylized at 2048 px, coarse to fine (--scales) with its last stage tiled, and a sheet
of it at full size where its tiles meet.

    python benchmarks/print_sheet.py --network vgg19q.mat --out print

The run is neural_style.py as a user types it (its command is printed), written to OUT.png and reused when that
exists. Its last stage is tiled because --max-memory leaves it no room untiled, and the tiles are the ones
tiling.plan chose for that budget. The sheet, OUT-crops.jpg, shows the whole print scaled down, with the two
crops outlined, then two crops at full size (one pixel of the print per pixel): one centred on the corner where
four tiles meet, one on a detail of the subject.
"""
import argparse
import os

import numpy as np
from PIL import Image, ImageDraw

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from styletransfer.media import images  # noqa: E402
import sheets  # noqa: E402
import stylize  # noqa: E402
from styletransfer.method import tiling  # noqa: E402
import vgg  # noqa: E402

# The print of docs/large-outputs.md: three stages, the last the size of the print. beta 2e4 taken as eq. 7's at
# every stage (--raw-style-weight), as the print shown there was made: it predates the scaling of --style-weight
# with each stage's pixels, and was chosen between the balances that then suited the first stage and the last.
SCALES = '512,1024,2048'
ITERATIONS = '200,60,15'
STYLE_WEIGHT = '2e4'
MAX_MEMORY_GB = 9  # under 2048x1362's untiled estimate, above 1024x681's: only the last stage is tiled
CROP = 512
OVERVIEW_HEIGHT = 512


def tile_corner(shape):
    """The corner where the first four tiles of the last stage meet, (y, x), as the run plans them."""
    plan = tiling.plan(shape, stylize.CONTENT_LAYERS, stylize.STYLE_LAYERS, tile_size=None,
                       max_memory=MAX_MEMORY_GB * 1e9, optimizer=stylize.OPTIMIZER,
                       lbfgs_history=stylize.LBFGS_HISTORY)
    deepest = vgg.deepest(list(stylize.CONTENT_LAYERS) + list(stylize.STYLE_LAYERS))
    first = tiling.make_tiles(*shape, plan.tile_size, deepest)[0]
    return first.own[2], first.own[3]


def crop_around(picture, y, x):
    """The CROP-square window of `picture` centred on (y, x), moved inside the picture; its top-left corner too."""
    top = min(max(0, y - CROP // 2), picture.shape[0] - CROP)
    left = min(max(0, x - CROP // 2), picture.shape[1] - CROP)
    return picture[top:top + CROP, left:left + CROP], (top, left)


def overview(picture, corners):
    """The picture scaled to OVERVIEW_HEIGHT, each crop outlined."""
    scale = OVERVIEW_HEIGHT / picture.shape[0]
    small = Image.fromarray(images.to_uint8(images.resize(picture, OVERVIEW_HEIGHT,
                                                          round(picture.shape[1] * scale))))
    draw = ImageDraw.Draw(small)
    for top, left in corners:
        draw.rectangle([left * scale, top * scale, (left + CROP) * scale, (top + CROP) * scale], outline='white',
                       width=2)
    return np.asarray(small)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--network', required=True)
    parser.add_argument('--out', required=True, help='prefix of the print and its sheet')
    parser.add_argument('--content', default=sheets.example_path('chelsea.png'))
    parser.add_argument('--style', default=sheets.example_path('starry_night.jpg'))
    parser.add_argument('--detail', default='0.3,0.42', metavar='Y,X',
                        help='the second crop\'s centre as fractions of the height and width (default: an eye)')
    return parser


def main():
    args = build_parser().parse_args()
    picture, seconds = sheets.stylized(f'{args.out}.png', [
        '--content', args.content, '--styles', args.style, '--network', args.network, '--scales', SCALES,
        '--iterations', ITERATIONS, '--style-weight', STYLE_WEIGHT, '--raw-style-weight',
        '--max-memory', str(MAX_MEMORY_GB),
        '--seed', '0', '--print-iterations', '5'])
    height, width = picture.shape[:2]
    corner_y, corner_x = tile_corner((height, width))
    seam, seam_at = crop_around(picture, corner_y, corner_x)
    fraction_y, fraction_x = (float(value) for value in args.detail.split(','))
    detail, detail_at = crop_around(picture, round(fraction_y * height), round(fraction_x * width))
    name = os.path.basename(args.network)
    sheets.write_sheet(f'{args.out}-crops.jpg', [overview(picture, [seam_at, detail_at]), seam, detail], [
        f'{width}x{height}, scaled down; {name}, --scales {SCALES}\n--iterations {ITERATIONS}, '
        f'beta {STYLE_WEIGHT} (raw), {sheets.took(seconds)}',
        f'full size: centred on the corner where four tiles meet\n(x {corner_x}, y {corner_y})',
        f'full size: a detail\nx {detail_at[1]}-{detail_at[1] + CROP}, y {detail_at[0]}-{detail_at[0] + CROP}'])


if __name__ == '__main__':
    main()
