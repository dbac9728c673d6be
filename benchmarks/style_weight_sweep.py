#!/usr/bin/env python3
"""The style weight beta on the examples: one sheet per content:style pair, a picture per beta.

    python benchmarks/style_weight_sweep.py --network vgg19q.mat --out sweep
    python benchmarks/style_weight_sweep.py --network vgg19q.mat --out sweep --betas 1e3,1e4 --size 256
    python benchmarks/style_weight_sweep.py --network vgg19q.mat --out normalized --betas 1e6,1e7,1e8 --size 256 \
        --normalize-network

Each picture is a run of neural_style.py as a user types it (its command is printed): --size px, --iterations
L-BFGS iterations from seed 0's white noise, alpha = 1, the defaults otherwise. Runs write
OUT-<content>-<beta>.png and are reused when the file exists, so an interrupted sweep resumes. The sheets are
OUT-<content>.jpg, each picture captioned with beta, the network file, the iterations and the run's wall time.
"""
import argparse
import os

import sheets

PAIRS = 'chelsea:starry_night.jpg,coffee:shipwreck.jpg,astronaut:the_scream.jpg'  # three photographs, three styles
BETAS = '1e2,1e3,1e4,1e5'  # around the default, 1e4


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sheets.add_run_options(parser, size=512, iterations=200)
    parser.add_argument('--pairs', default=PAIRS, help='content:style of examples/, comma-separated')
    parser.add_argument('--betas', default=BETAS, help='comma-separated, as written in the file names')
    parser.add_argument('--normalize-network', action='store_true', help="on the paper's normalized network")
    return parser


def main():
    args = build_parser().parse_args()
    for pair in args.pairs.split(','):
        content_name, style_name = pair.split(':')
        pictures, captions = [], []
        for beta in args.betas.split(','):
            picture, seconds = sheets.stylized(f'{args.out}-{content_name}-{beta}.png', [
                '--content', sheets.example_path(f'{content_name}.png'), '--styles', sheets.example_path(style_name),
                *sheets.run_options(args), '--style-weight', beta, '--print-iterations', '50',
                *['--normalize-network'] * args.normalize_network])
            pictures.append(picture)
            captions.append(f'beta {beta}{", normalized network" * args.normalize_network}\n'
                            f'{os.path.basename(args.network)}, {args.iterations} its, {sheets.took(seconds)}')
        sheets.write_sheet(f'{args.out}-{content_name}.jpg', pictures, captions)
        print(f'{args.out}-{content_name}.jpg')


if __name__ == '__main__':
    main()
