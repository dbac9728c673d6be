#!/usr/bin/env python3
"""Speed and memory of neural-style: seconds per iteration, set-up time, peak memory, and the fraction of
the machine's measured matrix-product peak that the evaluations of the objective and its gradient achieve.

    python benchmarks/bench.py                   # sizes 256 and 512, L-BFGS and Adam, float32 and mixed
    python benchmarks/bench.py --quick           # about a minute on 2 cores
    python benchmarks/bench.py --network imagenet-vgg-verydeep-19.mat --sizes 512,1024

Without --network it writes a random-weight VGG-19 in MatConvNet's layout (full channel counts, so an
iteration costs what it costs with the real weights). Each configuration runs in a fresh process, so its
peak memory is its own. Results go to a JSON and a CSV file and are printed as a table.
"""
import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

ASPECT = 3 / 4  # content images are landscape 4:3, e.g. 512x384


def evaluation_flops(height, width, deepest_layer):
    """FLOPs of one evaluation of the objective and its gradient: a forward and backward pass through the
    convolutions up to `deepest_layer`. An iteration takes one evaluation (Adam) or one or more (L-BFGS's line
    search), so achieved GFLOP/s are these FLOPs times the evaluations, over the time they took.

    A 3x3 convolution costs 2 * 9 * C_in * C_out multiply-adds per output position forward, and the same
    again for the gradient with respect to its input (the weights are constants, so no filter gradient).
    Pooling halves the size, rounding up (SAME padding). The Gram matrices and elementwise ops are not
    counted: this is the network's own work, the floor that the loop is measured against.
    """
    import vgg
    flops, h, w = 0, height, width
    for name in vgg.layers_up_to(deepest_layer):
        if name.startswith('conv'):
            kh, kw, c_in, c_out = vgg.CONV_SHAPES[name]
            flops += 2 * (2 * h * w * kh * kw * c_in * c_out)
        elif name.startswith('pool'):
            h, w = (h + 1) // 2, (w + 1) // 2
    return flops


def matmul_peak(dtype, sizes=(1024, 2048, 3072)):
    """The machine's matrix-product peak in TensorFlow: the best, over a few sizes, of the median GFLOP/s of
    n x n products (one inter-op thread, which gave the highest figures here)."""
    return max(_matmul_gflops(dtype, n) for n in sizes)


def _matmul_gflops(dtype, n, repeats=15):
    import numpy as np
    import tensorflow.compat.v1 as tf
    graph = tf.Graph()
    with graph.as_default():
        rng = np.random.default_rng(0)
        # Variables, so that only the product (and a cheap sum) is timed, not the casts.
        a, b = (tf.Variable(tf.cast(rng.normal(size=(n, n)).astype(np.float32), dtype)) for _ in range(2))
        timed = tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32))
        init = tf.global_variables_initializer()
    with tf.Session(graph=graph, config=tf.ConfigProto(inter_op_parallelism_threads=1)) as session:
        session.run(init)
        session.run(timed)
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            session.run(timed)
            seconds.append(time.perf_counter() - start)
    return 2 * n ** 3 / statistics.median(seconds) / 1e9


def run_configuration(config):
    """One configuration, in this process: returns its measurements."""
    import numpy as np
    import stylize
    import vgg

    started = time.perf_counter()
    import tensorflow as tf
    import_seconds = time.perf_counter() - started
    started = time.perf_counter()
    net = vgg.load_net(config['network'])
    load_seconds = time.perf_counter() - started
    width = config['size']
    height = round(width * ASPECT)
    rng = np.random.default_rng(0)
    content = rng.uniform(0, 255, (height, width, 3)).astype(np.float32)
    style = rng.uniform(0, 255, (height, width, 3)).astype(np.float32)
    settings = stylize.Settings(optimizer=config['optimizer'], iterations=config['iterations'], seed=0,
                                precision=config['precision'])
    stamps, evaluations = [], []
    started = time.perf_counter()
    for progress in stylize.stylize(net, content, [style], settings):
        stamps.append(time.perf_counter())
        evaluations.append(progress.evaluations)
    warmup = config['warmup']
    steps = np.diff(stamps)[warmup:]
    gpu_peak = None
    if tf.config.list_physical_devices('GPU'):
        gpu_peak = tf.config.experimental.get_memory_info('GPU:0')['peak'] / 2 ** 20
    flops = evaluation_flops(height, width, max(stylize.STYLE_LAYERS + stylize.CONTENT_LAYERS, key=vgg.LAYERS.index))
    counted = evaluations[-1] - evaluations[warmup]  # the evaluations of the timed iterations
    seconds_per_evaluation = float(np.sum(steps)) / counted
    return dict(config, width=width, height=height, import_seconds=import_seconds, load_seconds=load_seconds,
                setup_seconds=stamps[0] - started, seconds_per_iteration=float(statistics.median(steps)),
                evaluations_per_iteration=counted / len(steps), seconds_per_evaluation=seconds_per_evaluation,
                gflop_per_evaluation=flops / 1e9, gflops=flops / seconds_per_evaluation / 1e9,
                peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, peak_gpu_mb=gpu_peak)


def in_subprocess(kind, payload, script=__file__):
    """Runs `script --worker KIND PAYLOAD` in a fresh process (its peak memory its own); its last line, as JSON."""
    result = subprocess.run([sys.executable, os.path.abspath(script), '--worker', kind, json.dumps(payload)],
                            capture_output=True, text=True)
    if result.returncode:
        sys.exit(f'benchmark worker failed:\n{result.stderr[-3000:]}')
    return json.loads(result.stdout.strip().splitlines()[-1])


def worker(kind, payload):
    payload = json.loads(payload)
    if kind == 'peak':
        print(json.dumps({'float32': matmul_peak('float32'), 'bfloat16': matmul_peak('bfloat16')}))
    else:
        print(json.dumps(run_configuration(payload)))


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--network', help='a VGG-19 weights file (default: a random-weight one made here)')
    parser.add_argument('--sizes', default='256,512', help='output widths, comma-separated')
    parser.add_argument('--optimizers', default='lbfgs,adam')
    parser.add_argument('--precisions', default='float32,mixed')
    parser.add_argument('--iterations', type=int, default=12, help='iterations per configuration')
    parser.add_argument('--warmup', type=int, default=2, help='iterations left out of the median')
    parser.add_argument('--quick', action='store_true', help='sizes 128,256, 6 iterations: about a minute')
    parser.add_argument('--output', default='bench-results', help='file name stem for .json and .csv')
    parser.add_argument('--worker', nargs=2, help=argparse.SUPPRESS)
    return parser


def main():
    args = build_parser().parse_args()
    if args.worker:
        return worker(*args.worker)
    if args.quick:
        args.sizes, args.iterations, args.precisions = '128,256', 6, 'float32'

    with tempfile.TemporaryDirectory() as scratch:
        network = args.network
        if network is None:
            from styletransfer.testing import synthetic_vgg
            network = os.path.join(scratch, 'random-vgg19.mat')
            synthetic_vgg.write_current(network, synthetic_vgg.random_conv_weights(seed=0))
        peak = in_subprocess('peak', {})
        rows = []
        for size in map(int, args.sizes.split(',')):
            for optimizer in args.optimizers.split(','):
                for precision in args.precisions.split(','):
                    row = in_subprocess('run', dict(network=network, size=size, optimizer=optimizer,
                                                    precision=precision, iterations=args.iterations,
                                                    warmup=args.warmup))
                    reference = peak['bfloat16' if precision == 'mixed' else 'float32']
                    row['fraction_of_peak'] = row['gflops'] / reference
                    row['peak_gflops'] = reference
                    rows.append(row)
                    print(_format(row), flush=True)
    with open(args.output + '.json', 'w') as f:
        json.dump({'machine': _machine(), 'results': rows}, f, indent=1)
    with open(args.output + '.csv', 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f'wrote {args.output}.json and {args.output}.csv')


def _format(row):
    gpu = f'  GPU {row["peak_gpu_mb"]:.0f} MB' if row['peak_gpu_mb'] else ''
    return (f'{row["width"]}x{row["height"]} {row["optimizer"]:5s} {row["precision"]:7s} '
            f'{row["seconds_per_iteration"]:.3f} s/it  {row["evaluations_per_iteration"]:.2f} eval/it  '
            f'{row["gflops"]:.0f} GFLOP/s (every evaluation counted) = {100 * row["fraction_of_peak"]:.0f}% of '
            f'{row["peak_gflops"]:.0f}  '
            f'import {row["import_seconds"]:.1f} s  load {row["load_seconds"]:.1f} s  set-up {row["setup_seconds"]:.1f} s  '
            f'RSS {row["peak_rss_mb"]:.0f} MB{gpu}')


def _machine():
    import platform
    return {'processor': platform.processor() or platform.machine(), 'cores': os.cpu_count(),
            'python': platform.python_version()}


if __name__ == '__main__':
    main()
