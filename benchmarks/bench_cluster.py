#!/usr/bin/env python3
"""What spreading an evaluation's tiles costs: seconds per evaluation of the tiled objective in this process
against the same tiles on local `neural-style-cluster` workers, and the bytes an evaluation feeds to and fetches from
them (what would cross the network between machines).

    python benchmarks/bench_cluster.py                       # 1024x768, 512 px tiles, 2 workers of 1 thread
    python benchmarks/bench_cluster.py --size 512 --tile-size 256 --evaluations 2

On one 2-core machine no speed-up can be expected: the ratio shows what TensorFlow's runtime costs (graph
registration, gRPC, the copies of feeds and fetches). The runs are interleaved; the first evaluation of each
(graph registration, memory allocation) is reported apart. Without --network it writes a random-weight VGG-19
of the real size.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')


def objective(net, placement, width, height, tile_size):
    """The tiled objective of the paper's default settings for a width x height image, its targets computed
    through the placement's networks: (objective, the image to evaluate at, the networks)."""
    import numpy as np
    import stylize
    from styletransfer.method import tiling
    import vgg

    rng = np.random.default_rng(0)
    content, style, x = (rng.uniform(0, 255, (height, width, 3)).astype(np.float32) for _ in range(3))
    content_weights = {name: 1.0 for name in stylize.CONTENT_LAYERS}
    style_weights = {name: 1.0 / len(stylize.STYLE_LAYERS) for name in stylize.STYLE_LAYERS}
    networks = [tiling.TileNetwork(net, content_weights, list(style_weights), pooling='avg', dtype='float32',
                                   device=device, placement=placement) for device in placement.devices]

    def tiles(image):
        return tiling.make_tiles(*image.shape[:2], tile_size, networks[0].deepest)

    def preprocessed(image):
        return vgg.preprocess(image, net.mean_pixel)[None]

    P = tiling.image_targets(networks, tiles(content), preprocessed(content))[0]
    _, A, M = tiling.image_targets(networks, tiles(style), preprocessed(style))
    tiled = tiling.TiledObjective(networks, tiles(x), P, [{name: (A[name], M[name]) for name in style_weights}],
                                  stylize.Settings())  # the default weights, as content_weights and style_weights
    return tiled, preprocessed(x), networks


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--size', type=int, default=1024, help='width of the image (4:3)')
    p.add_argument('--tile-size', type=int, default=512)
    p.add_argument('--workers', type=int, default=2)
    p.add_argument('--threads', type=int, default=1, help='threads of each worker')
    p.add_argument('--evaluations', type=int, default=3, help='timed evaluations of each, after the first')
    p.add_argument('--network', help='a VGG-19 weights file (default: a random-weight one of the real size)')
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)

    from styletransfer.compute import cluster
    from styletransfer.compute import devices
    from styletransfer.testing import synthetic_vgg
    import vgg
    from styletransfer.testing.workers import running

    with tempfile.TemporaryDirectory() as directory:
        path = args.network or os.path.join(directory, 'vgg19-random.mat')
        if not args.network:
            synthetic_vgg.write_current(path, synthetic_vgg.random_conv_weights(seed=0))
        net = vgg.load_net(path)
    width, height = args.size, args.size * 3 // 4
    with running(args.workers, threads=args.threads) as workers:
        setups = {'this process, /cpu:0': devices.Placement(('/cpu:0',)),
                  f'{args.workers} local workers, {args.threads} thread(s) each':
                      cluster.remote_placement([worker.address for worker in workers])}
        prepared = {name: objective(net, placement, width, height, args.tile_size)
                    for name, placement in setups.items()}
        times = {name: [] for name in setups}
        try:
            for round_ in range(args.evaluations + 1):
                for name, (tiled, x, _) in prepared.items():  # interleaved
                    started = time.perf_counter()
                    tiled.evaluate(x)
                    times[name].append(time.perf_counter() - started)
        finally:
            for _, _, networks in prepared.values():
                for network in networks:
                    network.close()
    tiles = len(next(iter(prepared.values()))[0].tiles)
    print(f'{width}x{height}, {tiles} tiles of {args.tile_size} px, {args.evaluations} timed evaluations each')
    baseline = None
    for name, (tiled, _, _) in prepared.items():
        first, median = times[name][0], statistics.median(times[name][1:])
        baseline = baseline or median
        print(f'  {name}: {median:.2f} s per evaluation (first {first:.2f} s), {median / baseline:.2f}x; '
              f'{tiled.moved / 1e6:.1f} MB fed and fetched per evaluation, '
              f'{tiled.moved / tiles / 1e6:.1f} MB per tile')
    return 0


if __name__ == '__main__':
    sys.exit(main())
