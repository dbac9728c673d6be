#!/usr/bin/env python3
"""Memory and speed of tiled evaluation (tiling.py) against untiled: peak RSS, seconds per evaluation and the
memory estimate, each configuration in a fresh process; and where the fixed part of the memory goes.

    python benchmarks/bench_tiling.py --sizes 1024 --tiles none,512,256       # 1024x768 untiled and tiled
    python benchmarks/bench_tiling.py --sizes 2048 --tiles 512,1024            # 2048x1536, tiled
    python benchmarks/bench_tiling.py --fixed                                  # the fixed part, step by step

Without --network it writes a random-weight VGG-19 (full channel counts: an evaluation costs what it costs
with the real weights). A row runs Adam for --iterations iterations after the targets; the seconds per evaluation (objective and
gradient, and Adam's step) are the median of the gaps between iterations but the last (whose evaluation is the
last image's losses only).
"""
import argparse
import json
import os
import resource
import statistics
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import bench  # noqa: E402  (beside this file: its subprocess runner)

ASPECT = 3 / 4


def _rss_mb():
    with open('/proc/self/status') as f:
        current = next(int(line.split()[1]) for line in f if line.startswith('VmRSS'))
    return current / 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_configuration(config):
    import numpy as np
    from styletransfer.compute import devices
    from styletransfer.compute import host_memory
    import stylize
    from styletransfer.method import tiling
    import vgg

    host_memory.limit_malloc_arenas()  # as neural_style.py does
    net = vgg.load_net(config['network'])
    width, tile = config['size'], config['tile']
    height = round(width * ASPECT)
    rng = np.random.default_rng(0)
    content = rng.uniform(0, 255, (height, width, 3)).astype(np.float32)
    style = rng.uniform(0, 255, (height, width, 3)).astype(np.float32)
    estimate = tiling.estimate_peak(height, width, stylize.CONTENT_LAYERS, stylize.STYLE_LAYERS, tile,
                                    config['optimizer'], stylize.LBFGS_HISTORY)
    stamps, cpu = [], []  # wall and process CPU seconds: the latter is steadier on a shared machine
    started = time.perf_counter()
    settings = stylize.Settings(optimizer=config['optimizer'], iterations=config['iterations'], seed=0,
                                tile_size=tile)
    for _ in stylize.stylize(net, content, [style], settings, placement=devices.Placement(('/cpu:0',))):
        stamps.append(time.perf_counter())
        cpu.append(time.process_time())
    tiles = len(tiling.make_tiles(height, width, tile, 'relu5_1')) if tile else None
    return dict(config, width=width, height=height, tiles=tiles, setup_seconds=stamps[0] - started,
                seconds_per_evaluation=statistics.median(np.diff(stamps)[:-1]),
                cpu_seconds_per_evaluation=statistics.median(np.diff(cpu)[:-1]), peak_rss_gb=_rss_mb()[1] / 1024,
                estimate_gb=estimate / 1e9)


def fixed_part(config):
    """RSS (current, peak) in MB after each step of a tiled set-up at 64x48, one evaluation."""
    import numpy as np
    steps = [('start', _rss_mb())]
    import tensorflow  # noqa: F401
    steps.append(('TensorFlow imported', _rss_mb()))
    from styletransfer.compute import host_memory
    import stylize
    from styletransfer.method import tiling
    import vgg
    host_memory.limit_malloc_arenas()
    net = vgg.load_net(config['network'])
    steps.append(('weights read', _rss_mb()))
    network = tiling.TileNetwork(net, {'relu4_2': 1.0}, stylize.STYLE_LAYERS, pooling='avg', dtype='float32',
                                 device='/cpu:0')
    steps.append(('graph built (both passes)', _rss_mb()))
    image = np.random.default_rng(0).normal(size=(1, 48, 64, 3)).astype(np.float32)
    tiles = tiling.make_tiles(48, 64, 32, 'relu5_1')
    P, A, M = tiling.image_targets([network], tiles, image)
    steps.append(('targets: first pass-1 run', _rss_mb()))
    objective = tiling.TiledObjective([network], tiles, P, [{n: (A[n], M[n]) for n in A}], stylize.Settings())
    objective.evaluate(image)
    steps.append(('first evaluation: first pass-2 run', _rss_mb()))
    objective.evaluate(image)
    steps.append(('second evaluation', _rss_mb()))
    return steps


def in_subprocess(kind, payload):
    return bench.in_subprocess(kind, payload, script=__file__)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--network', help='a VGG-19 weights file (default: a random-weight one made here)')
    parser.add_argument('--sizes', default='1024', help='output widths, comma-separated (height: 3/4 of it)')
    parser.add_argument('--tiles', default='none,512', help='tile sizes, comma-separated; none: untiled')
    parser.add_argument('--optimizer', default='adam')
    parser.add_argument('--iterations', type=int, default=2)
    parser.add_argument('--fixed', action='store_true', help='only the fixed part, step by step')
    parser.add_argument('--output', default='bench-tiling-results.json')
    parser.add_argument('--worker', nargs=2, help=argparse.SUPPRESS)
    return parser


def main():
    args = build_parser().parse_args()
    if args.worker:
        kind, payload = args.worker
        result = fixed_part(json.loads(payload)) if kind == 'fixed' else run_configuration(json.loads(payload))
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as scratch:
        network = args.network
        if network is None:
            from styletransfer.testing import synthetic_vgg
            network = os.path.join(scratch, 'random-vgg19.mat')
            synthetic_vgg.write_current(network, synthetic_vgg.random_conv_weights(seed=0))
        if args.fixed:
            for step, (current, peak) in in_subprocess('fixed', {'network': network}):
                print(f'{step:40s} RSS {current:6.0f} MB  peak {peak:6.0f} MB', flush=True)
            return
        rows = []
        for size in map(int, args.sizes.split(',')):
            for tile in args.tiles.split(','):
                row = in_subprocess('run', dict(network=network, size=size, optimizer=args.optimizer,
                                                iterations=args.iterations, tile=None if tile == 'none' else int(tile)))
                rows.append(row)
                print(_format(row), flush=True)
    with open(args.output, 'w') as f:
        json.dump(rows, f, indent=1)


def _format(row):
    how = 'untiled' if row['tile'] is None else f'{row["tiles"]} tiles of {row["tile"]} px'
    return (f'{row["width"]}x{row["height"]} {row["optimizer"]} {how}: {row["seconds_per_evaluation"]:.1f} s/evaluation '
            f'({row["cpu_seconds_per_evaluation"]:.1f} CPU s), set-up {row["setup_seconds"]:.1f} s, peak RSS {row["peak_rss_gb"]:.2f} GB, '
            f'estimated {row["estimate_gb"]:.2f} GB')


if __name__ == '__main__':
    main()
