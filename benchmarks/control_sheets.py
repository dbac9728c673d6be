#!/usr/bin/env python3
"""Sheets of the controls on the examples: each --preserve-colors mode, and two styles under a mask.

    python benchmarks/control_sheets.py --network vgg19q.mat --out controls
    python benchmarks/control_sheets.py --network vgg19q.mat --out controls --colors-pair coffee:the_scream

Each picture is a run of neural_style.py as a user types it (its command is printed), at --size px and
--iterations L-BFGS iterations from seed 0's white noise, the defaults otherwise. Runs write
OUT-<name>.png and are reused when the file exists, so an interrupted sheet resumes. The sheets are
OUT-colors-<content>.jpg (content, style, then no option and each mode) and OUT-mask-<content>.jpg (content,
the two styles, the first style's mask, the result); the captions give the network file, size, iterations
and each run's wall time.
"""
import argparse
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from styletransfer.media import images  # noqa: E402
import sheets  # noqa: E402

COLOR_MODES = (None, 'luminance', 'histogram', 'post')
MASK_EDGE = 0.2  # the masks' soft edge, as a fraction of the width


def stylized(args, name, content, styles, *options):
    """neural_style.py's result for the content, styles and options, at the sheet's size and iterations."""
    return sheets.stylized(f'{args.out}-{name}.png', [
        '--content', content, '--styles', *styles, *sheets.run_options(args), '--print-iterations', '0',
        *(['--style-weight', args.style_weight] if args.style_weight else []), *options])


def side_by_side_masks(height, width):
    """The left style's mask: white on the left, a linear edge MASK_EDGE wide in the middle, black on the right."""
    x = (np.arange(width) + 0.5) / width
    ramp = np.clip((0.5 + MASK_EDGE / 2 - x) / MASK_EDGE, 0.0, 1.0)
    left = np.repeat(np.tile(ramp * 255.0, (height, 1))[..., None], 3, axis=2)
    return left, 255.0 - left


def color_sheet(args):
    content_name, style_name = args.colors_pair.split(':')
    content, style = sheets.example_path(f'{content_name}.png'), sheets.example_path(style_name)
    pictures, captions = [images.read_image(content), images.read_image(style)], ['content', 'style']
    for mode in COLOR_MODES:
        options = () if mode is None else ('--preserve-colors', mode)
        picture, seconds = stylized(args, f'{content_name}-{mode or "plain"}', content, [style], *options)
        pictures.append(picture)
        captions.append(f'{"no option" if mode is None else "--preserve-colors " + mode}\n{sheets.took(seconds)}')
    write(args, f'colors-{content_name}', pictures, captions)


def mask_sheet(args):
    content_name, left_style, right_style = args.mask_example.split(':')
    content = sheets.example_path(f'{content_name}.png')
    photograph = images.read_image(content)
    left, right = side_by_side_masks(*images.output_size(photograph.shape, None, args.size))
    masks = [f'{args.out}-mask-left.png', f'{args.out}-mask-right.png']
    for path, mask in zip(masks, (left, right)):
        images.write_image(path, mask)
    styles = [sheets.example_path(left_style), sheets.example_path(right_style)]
    picture, seconds = stylized(args, f'{content_name}-masked', content, styles, '--style-masks', *masks)
    pictures = [photograph, *[images.read_image(style) for style in styles], left, picture]
    captions = ['content', 'style 1', 'style 2', "style 1's mask\n(style 2's: its inverse)",
                f'--style-masks\n{sheets.took(seconds)}']
    write(args, f'mask-{content_name}', pictures, captions)


def write(args, name, pictures, captions):
    height = min(picture.shape[0] for picture in pictures[2:])
    pictures = [images.resize(picture, height, round(picture.shape[1] * height / picture.shape[0]))
                for picture in pictures]
    title = f'{os.path.basename(args.network)}\n{args.size} px, {args.iterations} L-BFGS its, seed 0'
    captions = [f'{caption}\n{title}' if i == 0 else caption for i, caption in enumerate(captions)]
    path = f'{args.out}-{name}.jpg'
    sheets.write_sheet(path, pictures, captions)
    print(path)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sheets.add_run_options(parser, size=256, iterations=200)
    parser.add_argument('--colors-pair', default='chelsea:starry_night.jpg', help='content:style of examples/')
    parser.add_argument('--mask-example', default='chelsea:starry_night.jpg:the_scream.jpg',
                        help='content:left style:right style of examples/')
    parser.add_argument('--only', choices=('colors', 'mask'))
    parser.add_argument('--style-weight', help="beta (default: neural_style.py's)")
    return parser


def main():
    args = build_parser().parse_args()
    if args.only != 'mask':
        color_sheet(args)
    if args.only != 'colors':
        mask_sheet(args)


if __name__ == '__main__':
    main()
