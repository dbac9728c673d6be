#!/usr/bin/env python3
"""The README's gallery: photograph, painting and result for each pair of examples/, at the README's quick
settings (256 px, 150 L-BFGS iterations, seed 0, the defaults otherwise), two pairs to a row.

    python benchmarks/gallery.py --out gallery --to gallery.jpg

Each result is `neural_style.py --content examples/PHOTO --styles examples/PAINTING --max-size 256 --iterations
150 --seed 0` (with --network when given: without it, the weights neural_style.py finds or fetches); runs whose
output exists are reused, so the sheet can be made again without running them.
"""
import argparse
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from styletransfer.media import images  # noqa: E402
import sheets  # noqa: E402

# photograph:painting of examples/, the first three the gallery's from the start, then three Van Goghs
PAIRS = ('chelsea:starry_night.jpg,coffee:the_scream.jpg,astronaut:shipwreck.jpg,'
         'chelsea:night_cafe.jpg,coffee:cafe_terrace_at_night.jpg,astronaut:langlois_bridge.jpg')
PER_ROW = 2


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--network', help='weights file (default: as neural_style.py finds or fetches it)')
    parser.add_argument('--out', required=True, help="prefix of the runs' files")
    parser.add_argument('--to', required=True, help='the gallery image to write')
    parser.add_argument('--size', type=int, default=256)
    parser.add_argument('--iterations', type=int, default=150)
    parser.add_argument('--pairs', default=PAIRS, help='photograph:painting of examples/, comma-separated')
    return parser


def triplet(args, content_name, style_name):
    """The photograph, the painting at the result's height, the result; their captions."""
    output = f'{args.out}-{content_name}-{style_name.split(".")[0]}.png'
    result, seconds = sheets.stylized(output, [
        '--content', sheets.example_path(f'{content_name}.png'), '--styles', sheets.example_path(style_name),
        '--max-size', str(args.size), '--iterations', str(args.iterations), '--seed', '0',
        *(['--network', args.network] if args.network else []), '--print-iterations', '50'])
    height, width = result.shape[:2]
    photo = images.resize(images.read_image(sheets.example_path(f'{content_name}.png')), height, width)
    painting = images.read_image(sheets.example_path(style_name))
    painting = images.resize(painting, height, round(painting.shape[1] * height / painting.shape[0]))
    took = '' if seconds is None else f', {seconds:.0f} s'
    return [photo, painting, result], [f'{content_name}.png', style_name, f'{width}x{height}{took}']


def main():
    args = build_parser().parse_args()
    pairs = [pair.split(':') for pair in args.pairs.split(',')]
    rows = []
    for start in range(0, len(pairs), PER_ROW):
        pictures, captions = [], []
        for content_name, style_name in pairs[start:start + PER_ROW]:
            more_pictures, more_captions = triplet(args, content_name, style_name)
            pictures += more_pictures
            captions += more_captions
        part = f'{args.to}.row.png'
        sheets.write_sheet(part, pictures, captions)
        rows.append(images.read_image(part))
        os.remove(part)
    width = max(row.shape[1] for row in rows)
    images.write_image(args.to, np.concatenate([
        np.pad(row, ((0, sheets.GAP), (0, width - row.shape[1]), (0, 0)), constant_values=255) for row in rows]))
    print(args.to)


if __name__ == '__main__':
    main()
