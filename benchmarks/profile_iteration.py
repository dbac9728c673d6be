#!/usr/bin/env python3
"""Where the time of one iteration goes, by operation, for this program and for anishathalye/neural-style; and
TensorFlow's 3x3 convolution speed at VGG-19's shapes, the floor an evaluation is measured against.

    python benchmarks/profile_iteration.py ours --network vgg.mat                 # L-BFGS, the default
    python benchmarks/profile_iteration.py ours --network vgg.mat --optimizer adam
    python benchmarks/profile_iteration.py ours --network vgg.mat --optimizer adam --precision float32
    python benchmarks/profile_iteration.py peer --peer /tmp/peer --network vgg.mat   # its Adam step
    python benchmarks/profile_iteration.py convolutions                             # float32 and bfloat16

Each program runs ITERATIONS iterations at 512x384 in this process, the runs of `Session.run` from the
UNTRACED-th timed by the wall clock and those from the TRACED-th traced (TensorFlow's step stats, FULL_TRACE):
the first runs compute the targets and prepare the graph. The table sums each operation type's time over the
traced optimization steps (on 2 threads the operations' times add up to more than the wall clock) and gives the
untraced wall clock time of an iteration for comparison. The peer's graph is built by its own code (its
stylize.stylize), unchanged.
"""
import argparse
import collections
import os
import statistics
import sys
import time

import numpy as np

from styletransfer.compute import devices

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
HEIGHT, WIDTH = 384, 512
UNTRACED, TRACED = 6, 10  # runs counted from 1: the first compute the targets and prepare the graph
ITERATIONS = 14


class TracedSessions:
    """Wraps tf.Session.run of every session: the wall clock time of the runs from the UNTRACED-th to before the
    TRACED-th, and the step stats of those from the TRACED-th on."""

    def __init__(self, tf):
        self.walls, self.stats, self.steps = [], [], 0
        self.original = tf.Session.run
        traced = self

        def run(session, fetches, feed_dict=None, options=None, run_metadata=None):
            traced.steps += 1
            if traced.steps >= TRACED:
                metadata = tf.RunMetadata()
                result = traced.original(session, fetches, feed_dict,
                                         tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE), metadata)
                traced.stats.append(metadata.step_stats)
                return result
            started = time.perf_counter()
            result = traced.original(session, fetches, feed_dict, options, run_metadata)
            if traced.steps >= UNTRACED:
                traced.walls.append(time.perf_counter() - started)
            return result

        tf.Session.run = run


def operation_times(step_stats_list):
    """Seconds per (operation type, forward or backward) summed over the runs, from the nodes' timeline labels
    ('name = Type(inputs)'). Backward: the node is inside the graph's gradients scope."""
    totals = collections.Counter()
    for step_stats in step_stats_list:
        for device in step_stats.dev_stats:
            for node in device.node_stats:
                label = node.timeline_label
                if ' = ' not in label:
                    continue
                kind = label.split(' = ', 1)[1].split('(', 1)[0]
                direction = 'backward' if 'gradients' in node.node_name else 'forward'
                totals[kind, direction] += (node.all_end_rel_micros or node.op_end_rel_micros) / 1e6
    return {key: seconds / len(step_stats_list) for key, seconds in totals.items()}


def profile_ours(network, optimizer, precision, content, style):
    # Imported here, not at the top: the peer's checkout has modules of the same names (stylize, vgg).
    import tensorflow.compat.v1 as tf
    from styletransfer.media import images
    import stylize
    import vgg
    sessions = TracedSessions(tf)
    net = vgg.load_net(network)
    content_pixels = images.resize(images.read_image(content), HEIGHT, WIDTH)
    style_pixels = images.resize(images.read_image(style), HEIGHT, WIDTH)
    settings = stylize.Settings(optimizer=optimizer, iterations=ITERATIONS, seed=0, precision=precision)
    for _ in stylize.stylize(net, content_pixels, [style_pixels], settings):
        pass
    return sessions


def profile_peer(directory, network, content, style):
    sys.path.insert(0, directory)
    import tensorflow.compat.v1 as tf
    from PIL import Image
    sessions = TracedSessions(tf)
    import stylize as peer_stylize  # the peer's module, from its checkout

    def read(path):
        return np.asarray(Image.open(path).convert('RGB').resize((WIDTH, HEIGHT), Image.LANCZOS), np.float32)

    run = peer_stylize.stylize(network=network, initial=None, initial_noiseblend=1.0, content=read(content),
                               styles=[read(style)], preserve_colors=False, iterations=ITERATIONS,
                               content_weight=5.0, content_weight_blend=1.0, style_weight=500.0,
                               style_layer_weight_exp=1.0, style_blend_weights=[1.0], tv_weight=100.0,
                               learning_rate=10.0, beta1=0.9, beta2=0.999, epsilon=1e-8, pooling='max')
    for _ in run:
        pass
    return sessions


def operation_count(step_stats):
    return sum(len(device.node_stats) for device in step_stats.dev_stats)


def report(sessions):
    # The optimization steps: the traced runs with the most operations (the peer also evaluates its losses, a
    # forward pass each, at its last iteration).
    most = max(map(operation_count, sessions.stats))
    optimization_runs = [stats for stats in sessions.stats if operation_count(stats) == most]
    times = operation_times(optimization_runs)
    total = sum(times.values())
    print(f'wall clock per run: {statistics.median(sessions.walls):.3f} s (median of {len(sessions.walls)} untraced); '
          f'traced runs: {len(optimization_runs)}; operation time per run: {total:.3f} s')
    print('| operation | direction | s per run | share |\n| --- | --- | --- | --- |')
    for (kind, direction), seconds in sorted(times.items(), key=lambda item: -item[1]):
        if seconds / total >= 0.005:
            print(f'| {kind} | {direction} | {seconds:.3f} | {100 * seconds / total:.1f}% |')


def convolution_speeds(dtype_name, repeats=7):
    """GFLOP/s of TensorFlow's 3x3 SAME convolution at each of VGG-19's shapes up to conv5_1 at 512x384, and
    the time of all of them once (the forward pass's convolutions): the convolution's own time in the step stats
    (not the variables' reads around it), the fastest of `repeats` runs, a peak."""
    import tensorflow.compat.v1 as tf
    import vgg
    rows, height, width = [], HEIGHT, WIDTH
    for name in vgg.layers_up_to('relu5_1'):
        if name.startswith('pool'):
            height, width = (height + 1) // 2, (width + 1) // 2
        if not name.startswith('conv'):
            continue
        kh, kw, c_in, c_out = vgg.CONV_SHAPES[name]
        graph = tf.Graph()
        with graph.as_default():
            dtype = getattr(tf, dtype_name)
            rng = np.random.default_rng(0)
            x = tf.Variable(tf.cast(rng.normal(size=(1, height, width, c_in)).astype(np.float32), dtype))
            # a constant kernel, as in the network: oneDNN keeps its own layout of a constant, not of a variable
            k = tf.constant(rng.normal(size=(kh, kw, c_in, c_out)).astype(np.float32), dtype)
            convolution = tf.nn.conv2d(x, k, 1, 'SAME', name='timed')
            timed = convolution[0, 0, 0, 0]  # one element fetched
            init = tf.global_variables_initializer()
        with tf.Session(graph=graph) as session:
            session.run(init)
            session.run(timed)
            seconds = []
            for _ in range(repeats):
                metadata = tf.RunMetadata()
                session.run(timed, options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE),
                            run_metadata=metadata)
                seconds.append(sum((node.all_end_rel_micros or node.op_end_rel_micros) / 1e6
                                   for device in metadata.step_stats.dev_stats for node in device.node_stats
                                   if node.node_name == 'timed'))
        flops = 2 * height * width * kh * kw * c_in * c_out
        rows.append((name, height, width, c_in, c_out, flops, min(seconds)))
    return rows


def report_convolutions():
    print('| layer | size | C_in -> C_out | float32 GFLOP/s | bfloat16 GFLOP/s |\n| --- | --- | --- | --- | --- |')
    speeds = {dtype: convolution_speeds(dtype) for dtype in ('float32', 'bfloat16')}
    for f32, bf16 in zip(speeds['float32'], speeds['bfloat16']):
        name, height, width, c_in, c_out, flops, _ = f32
        print(f'| {name} | {width}x{height} | {c_in} -> {c_out} | {flops / f32[6] / 1e9:.0f} | '
              f'{flops / bf16[6] / 1e9:.0f} |')
    for dtype, rows in speeds.items():
        flops, seconds = sum(row[5] for row in rows), sum(row[6] for row in rows)
        print(f'{dtype}: the forward convolutions up to conv5_1 once, {seconds:.3f} s ({flops / seconds / 1e9:.0f} '
              f'GFLOP/s); an evaluation (forward and input gradient, the same work again) at this speed: '
              f'{2 * seconds:.3f} s')


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('program', choices=('ours', 'peer', 'convolutions'))
    parser.add_argument('--network', help='a VGG-19 .mat file in MatConvNet\'s layout')
    parser.add_argument('--peer', help='a checkout of anishathalye/neural-style')
    parser.add_argument('--optimizer', default='lbfgs', choices=('lbfgs', 'adam'))
    parser.add_argument('--precision', default='auto', choices=devices.PRECISIONS, help="ours: its --precision")
    parser.add_argument('--content', default=os.path.join(ROOT, 'examples', 'chelsea.png'))
    parser.add_argument('--style', default=os.path.join(ROOT, 'examples', 'starry_night.jpg'))
    return parser


def main():
    args = build_parser().parse_args()
    if args.program == 'convolutions':
        return report_convolutions()
    if args.program == 'ours':
        report(profile_ours(args.network, args.optimizer, args.precision, args.content, args.style))
    else:
        report(profile_peer(os.path.abspath(args.peer), args.network, args.content, args.style))


if __name__ == '__main__':
    main()
