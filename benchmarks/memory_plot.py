#!/usr/bin/env python3
"""The plot of docs/large-outputs.md: peak memory against the output's megapixels, untiled and in 512 px tiles,
with L-BFGS and with Adam: the measured peaks this file holds, and the estimate that decides the tiling
(tiling.estimate_peak, as the code computes it now).

    python benchmarks/memory_plot.py --out docs/images/memory-megapixels.png

Needs matplotlib (requirements-app.txt); nothing is run on the network.
"""
import argparse
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import stylize  # noqa: E402
from styletransfer.method import tiling  # noqa: E402

CPU = 'Intel Xeon @ 2.80GHz (Ice Lake), 2 cores, shared with other runs'
# Peak RSS in GB (`/usr/bin/time -v`, maximum resident set size), 3 iterations, the default layers, a
# random-weight network of VGG-19's size, each a fresh process, on CPU; (width, height, tile or None) -> peaks.
# A range measured over several runs is given by its highest value. docs/large-outputs.md, "Memory".
MEASURED = {
    'lbfgs': {(64, 48, None): 1.76, (192, 144, None): 1.90, (320, 240, None): 2.03, (640, 480, None): 2.81,
              (1024, 768, None): 4.89, (1024, 768, 512): 3.40},
    'adam': {(64, 48, None): 1.89, (192, 144, None): 1.94, (320, 240, None): 2.01, (640, 480, None): 2.71,
             (1024, 768, None): 4.15, (1024, 768, 512): 2.62},
}
# Adam in 512 px tiles at large sizes, measured the same way with an earlier version of the program (one that
# kept a second copy of the weights for the convolutions' gradient); the present code was not measured there.
EARLIER = {(2048, 1536, 512): 2.71, (4096, 3072, 512): 4.28}
ASPECT = 3 / 4
Y_LIMIT = 16
LABELS = {'lbfgs': 'L-BFGS', 'adam': 'Adam'}
COLOURS = {None: 'tab:blue', 512: 'tab:orange'}
MARKERS = {'lbfgs': 'o', 'adam': '^'}
STYLES = {'lbfgs': '-', 'adam': '--'}


def estimate(width, tile, optimizer):
    height = round(width * ASPECT)
    return tiling.estimate_peak(height, width, stylize.CONTENT_LAYERS, stylize.STYLE_LAYERS, tile, optimizer,
                                stylize.LBFGS_HISTORY) / 1e9


def megapixels(width, height):
    return width * height / 1e6


def draw(ax, widths, with_labels):
    """The estimates over `widths` (4:3) and every measured peak, on one pair of axes."""
    for tile in (None, 512):
        for optimizer in ('lbfgs', 'adam'):
            shown = [w for w in widths if tile is None or w > tile]  # a tile as large as the image is untiled
            ax.plot([megapixels(w, round(w * ASPECT)) for w in shown], [estimate(w, tile, optimizer) for w in shown],
                    STYLES[optimizer], color=COLOURS[tile], linewidth=1.5,
                    label=f'estimate, {where(tile)}, {LABELS[optimizer]}' if with_labels else None)
    for optimizer, peaks in MEASURED.items():
        for tile in (None, 512):
            points = [(megapixels(w, h), peak) for (w, h, t), peak in peaks.items() if t == tile]
            ax.plot(*zip(*points), MARKERS[optimizer], color=COLOURS[tile], markersize=7,
                    label=f'measured, {where(tile)}, {LABELS[optimizer]}' if with_labels else None)
    ax.plot([megapixels(w, h) for w, h, _ in EARLIER], list(EARLIER.values()), '^', markerfacecolor='none',
            color=COLOURS[512], markersize=8,
            label='measured with an earlier version, 512 px tiles, Adam' if with_labels else None)
    ax.axhline(8, color='grey', linewidth=0.8, linestyle=':')
    ax.set_xlabel('output megapixels')
    ax.grid(True, alpha=0.3)


def where(tile):
    return 'untiled' if tile is None else f'{tile} px tiles'


def figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 5), dpi=100)
    FigureCanvasAgg(fig)
    small, large = fig.subplots(1, 2, gridspec_kw={'width_ratios': [1, 1.3]})
    draw(small, [16 * k for k in range(1, 73)], True)  # 16 to 1152 px wide
    small.set_xlim(0, 1.0)
    small.set_ylim(0, 6)
    small.set_ylabel('peak resident memory, GB')
    small.set_title('Up to 1 megapixel: every measured size (1024x768 is 0.79)', fontsize=10)
    small.legend(fontsize=7, loc='lower right')
    draw(large, [64 * k for k in range(1, 65)], False)  # 64 to 4096 px wide
    large.set_xlim(0, 13)
    large.set_ylim(0, Y_LIMIT)
    large.set_title('Up to 4096x3072 (12.6 megapixels)', fontsize=10)
    for optimizer, y in (('lbfgs', 15.0), ('adam', 14.0)):
        large.annotate(f'untiled, {LABELS[optimizer]}: {estimate(4096, None, optimizer):.0f} GB at 4096x3072',
                       (4.2, y), fontsize=8, color=COLOURS[None])
    large.annotate('8 GB', (12.2, 8.2), fontsize=8, color='grey')
    fig.suptitle('Peak memory against output size (4:3, default layers, L-BFGS history 10)', fontsize=11)
    fig.text(0.01, 0.01, f'Measured: {CPU}; a random-weight VGG-19 of the real size, 3 iterations. '
             'Estimate: tiling.estimate_peak.', fontsize=7, color='dimgrey')
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default=os.path.join(ROOT, 'docs', 'images', 'memory-megapixels.png'),
                        help='the PNG to write (default: docs/images/memory-megapixels.png)')
    return parser


def main():
    args = build_parser().parse_args()
    figure().savefig(args.out)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
