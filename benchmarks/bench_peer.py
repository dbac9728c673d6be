#!/usr/bin/env python3
"""The default command's time against anishathalye/neural-style's, on the same machine and the same weights.

    git clone https://github.com/anishathalye/neural-style /tmp/peer
    python benchmarks/bench_peer.py --peer /tmp/peer --network imagenet-vgg-verydeep-19.mat

Each program runs as a user runs it, in a fresh process, at 512 px with its own defaults (ours: 1000 L-BFGS
iterations; the peer's: 1000 Adam iterations, given --width 512 since it keeps the content's size by default;
the photograph, examples/coffee.png, is 512x341, so both paint 512x341), twice each at two iteration counts,
interleaved. `--optimizer adam` runs ours with Adam too, for the time of the same kind of iteration, and
`--precisions float32,mixed` runs ours once per precision (each a row), `--convolutions auto,direct` once per
choice of its convolutions (with each precision). The time of one iteration is the difference of the two wall
clock times over the difference of the counts; the set-up (TensorFlow's import, loading the weights, the targets,
the first run) is what remains at the smaller count. The default command's time is then set-up + 1000 iterations.
Each round's own ratio to the peer's follows the table: the set-up's variation from process to process (seconds)
enters every slope divided by the difference of the counts, so a wide difference gives steadier ratios.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_ITERATIONS = 1000  # both programs' default
WIDTH = 512  # our default --max-size
PEER = 'anishathalye/neural-style, adam'


def ours(network, content, style, output, iterations, optimizer, precision, convolutions):
    return [sys.executable, os.path.join(ROOT, 'neural_style.py'), '--content', content, '--styles', style,
            '--output', output, '--network', network, '--iterations', str(iterations), '--optimizer', optimizer,
            '--precision', precision, '--convolutions', convolutions, '--overwrite']


def peer(directory, network, content, style, output, iterations):
    return [sys.executable, os.path.join(directory, 'neural_style.py'), '--content', content, '--styles', style,
            '--output', output, '--network', network, '--iterations', str(iterations), '--width', str(WIDTH),
            '--overwrite']


def wall_seconds(argv, cwd):
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'))
    return time.perf_counter() - started


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--peer', required=True, help="a checkout of anishathalye/neural-style")
    parser.add_argument('--network', required=True, help='a VGG-19 .mat file in MatConvNet\'s layout (both read it)')
    parser.add_argument('--content', default=os.path.join(ROOT, 'examples', 'coffee.png'),
                        help='a photograph 512 px wide or wider, so that both programs paint it at 512 px')
    parser.add_argument('--style', default=os.path.join(ROOT, 'examples', 'starry_night.jpg'))
    parser.add_argument('--counts', default='5,35', help='the two iteration counts')
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument('--optimizer', choices=('lbfgs', 'adam'), default='lbfgs', help="ours' optimizer")
    parser.add_argument('--precisions', default='float32', help="ours' --precision, one row each")
    parser.add_argument('--convolutions', default='auto', help="ours' --convolutions, one row each with each precision")
    return parser


def main():
    args = build_parser().parse_args()
    low, high = map(int, args.counts.split(','))
    network, content, style = (os.path.abspath(path) for path in (args.network, args.content, args.style))
    with tempfile.TemporaryDirectory() as scratch:
        commands = {f'neural-style (this), {args.optimizer}, {precision}, {convolutions} convolutions':
                    lambda n, precision=precision, convolutions=convolutions: ours(
                        network, content, style, f'{scratch}/ours.png', n, args.optimizer, precision, convolutions)
                    for precision in args.precisions.split(',') for convolutions in args.convolutions.split(',')}
        commands[PEER] = lambda n: peer(os.path.abspath(args.peer), network, content, style, f'{scratch}/peer.png', n)
        times = {(name, count): [] for name in commands for count in (low, high)}
        for _ in range(args.repeats):
            for count in (low, high):
                for name, command in commands.items():
                    times[name, count].append(wall_seconds(command(count), args.peer if name == PEER else ROOT))
                    print(name, count, f'{times[name, count][-1]:.1f} s', flush=True)
    print(f'\n| program | s / iteration | over the peer\'s | set-up, s | {DEFAULT_ITERATIONS} iterations, min |')
    print('| --- | --- | --- | --- | --- |')
    per_iteration, setup = {}, {}
    for name in commands:
        t_low, t_high = statistics.median(times[name, low]), statistics.median(times[name, high])
        per_iteration[name] = (t_high - t_low) / (high - low)
        setup[name] = t_low - low * per_iteration[name]
    for name in commands:
        print(f'| {name} | {per_iteration[name]:.3f} | {per_iteration[name] / per_iteration[PEER]:.2f} | '
              f'{setup[name]:.1f} | {(setup[name] + DEFAULT_ITERATIONS * per_iteration[name]) / 60:.1f} |')
    # each round's own ratio, from the runs made next to each other: their spread is the measurement's noise
    round_slopes = {name: [(t_high - t_low) / (high - low)
                           for t_low, t_high in zip(times[name, low], times[name, high])] for name in commands}
    print('\nover the peer\'s, round by round:')
    for name in commands:
        if name != PEER:
            print(f'  {name}: ' + ', '.join(f'{mine / theirs:.2f}'
                                            for mine, theirs in zip(round_slopes[name], round_slopes[PEER])))


if __name__ == '__main__':
    main()
