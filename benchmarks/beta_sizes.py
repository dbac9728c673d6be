#!/usr/bin/env python3
"""One --style-weight at three output sizes: the balance of content and style stays, as --style-weight is
scaled with the output's pixels; with --raw-style-weight (eq. 7's beta at every size) it moves.

    python benchmarks/beta_sizes.py --out beta-sizes --to beta-sizes.jpg

Each result is one neural_style.py run, coarse to fine from 256 px so that every size starts alike: `--scales`
256 (300 iterations), 256,512 (300,100) and 256,512,1024,2048 (300,100,40,15), chelsea.png in the style of
starry_night.jpg, seed 0, the defaults otherwise (--style-weight 1e4 unless given). `--raw-sizes` repeats
those sizes with --raw-style-weight. Runs whose output exists are reused. The sheet shows each result at the
same height with its size, its stage's beta and alpha L_content / beta L_style at the end (from the losses
recorded in the image): equal across sizes when the balance holds.
"""
import argparse
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from styletransfer.media import images  # noqa: E402
import sheets  # noqa: E402
import stylize  # noqa: E402

# the last stage's longest side: (--scales, --iterations)
SCHEDULES = {
    256: ('256', '300'),
    512: ('256,512', '300,100'),
    2048: ('256,512,1024,2048', '300,100,40,15'),
}
SHOWN_HEIGHT = 340  # px: each result on the sheet


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--network', help='weights file (default: as neural_style.py finds or fetches it)')
    parser.add_argument('--out', required=True, help="prefix of the runs' files")
    parser.add_argument('--to', required=True, help='the sheet to write')
    parser.add_argument('--style-weight', default='1e4', help='--style-weight of every run')
    parser.add_argument('--content', default='chelsea.png', help='a photograph of examples/')
    parser.add_argument('--style', default='starry_night.jpg', help='a painting of examples/')
    parser.add_argument('--raw-sizes', default='256', help='sizes also run with --raw-style-weight ("" for none)')
    return parser


def recorded_balance(path):
    """alpha L_content / beta L_style of the image at `path`, from the losses recorded in it."""
    losses = images.read_settings(path)['Losses']
    content, style = (float(re.search(rf'{term} ([-+.e0-9]+)', losses).group(1)) for term in ('content', 'style'))
    return content / style


def result(args, size, raw):
    """A run's image and its caption."""
    scales, iterations = SCHEDULES[size]
    output = f'{args.out}-{size}' + ('-raw' if raw else '') + '.png'
    picture, _ = sheets.stylized(output, [
        '--content', sheets.example_path(args.content), '--styles', sheets.example_path(args.style),
        '--scales', scales, '--iterations', iterations, '--style-weight', args.style_weight, '--seed', '0',
        *(['--raw-style-weight'] if raw else []), *(['--network', args.network] if args.network else []),
        '--print-iterations', '50'])
    height, width = picture.shape[:2]
    beta = float(args.style_weight) if raw else stylize.style_weight_at(float(args.style_weight), height, width)
    how = 'raw (--raw-style-weight)' if raw else 'scaled'
    caption = (f'{width}x{height}, beta {args.style_weight} {how}\n'
               f'eq. 7 beta {beta:.3g}, alpha Lc / beta Ls {recorded_balance(output):.2f}')
    shown = images.resize(picture, SHOWN_HEIGHT, round(width * SHOWN_HEIGHT / height))
    return shown, caption


def main():
    args = build_parser().parse_args()
    runs = [(size, False) for size in SCHEDULES]
    runs += [(int(size), True) for size in args.raw_sizes.split(',') if size]
    pictures, captions = zip(*(result(args, size, raw) for size, raw in runs))
    sheets.write_sheet(args.to, pictures, captions)
    print(args.to)


if __name__ == '__main__':
    main()
