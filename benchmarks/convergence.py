#!/usr/bin/env python3
"""How fast each way of optimizing reaches the paper's optimum, and where the stopping criterion fires.

    python benchmarks/convergence.py run --network vgg19q.mat --size 256 --out conv256     # every method
    python benchmarks/convergence.py run --network vgg19q.mat --size 512 --methods lbfgs-10 \\
        --pairs chelsea:starry_night,astronaut:the_scream,coffee:shipwreck --out conv512
    python benchmarks/convergence.py report conv256 [conv512 ...]
    python benchmarks/convergence.py sheet conv256 chelsea:starry_night 200,500,1000 --to sheet.jpg \\
        [--methods lbfgs-10,content-start]

`run` records, for each content:style pair of examples/ and each method, the lowest objective so far after every
iteration, with the evaluations of the objective and its gradient and the seconds taken, in OUT.json (written
after each run, so that a long session can be resumed: finished runs are skipped; the run under way is in
OUT-partial.json), and the best image every SNAPSHOT iterations as OUT-<pair>-<method>-<iteration>.png. The
methods, all on the paper's objective with alpha 1, beta 1e3 (BETA: the default when the docs' figures were
measured) and the paper's layers, from the same
white noise unless said:

    lbfgs-10, lbfgs-100   L-BFGS with a history of 10 (ours) and 100 (jcjohnson's, ProGamerGov's)
    adam                  Adam at our default rate
    adam-averaged         the same Adam steps, judged by the average of the iterates (an exponential moving
                          average with decay 0.99, bias-corrected, as crowsonkb/style-transfer-pytorch), evaluated
                          every AVERAGE_EVERY iterations (those evaluations are not counted: a user needs it once)
    coarse-to-fine        Gatys et al. 2017 (500 iterations at a lower resolution, then 200 at the next) over a
                          sqrt(2) ladder of sizes: 500 at half the size, 200 at 1/sqrt(2) of it, then the full size
    content-start         L-BFGS (history 10) from the content photograph
    lbfgs-10-mixed        lbfgs-10 with --precision mixed (bfloat16 convolutions), its best image judged by the
                          objective in float32 every SNAPSHOT iterations (only those rows are recorded)

lbfgs-10 runs first and gives L*; every other method stops once it reaches L* x 1.01.

`report` prints, with L* the lowest objective of lbfgs-10 after 1000 iterations, the evaluations (counted at
the full size: an evaluation at a smaller stage counts its share of the pixels) and seconds to reach
L* x 1.10, 1.05 and 1.01 for each method; and for the stopping criterion (Ruder et al.'s: every K = 50
iterations, |L_k - L_(k-K)| / L_(k-K) < REL), the iteration where it fires at 1e-3 and 1e-4 and the objective
there against after 1000 iterations. The seconds are the evaluations times the seconds of one evaluation
at that size measured alone (--seconds-per-evaluation, from benchmarks/bench.py), since runs made side by
side with other work take longer than they would alone.
"""
import argparse
import contextlib
import dataclasses
import json
import os
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from styletransfer.compute import devices  # noqa: E402
from styletransfer.media import files  # noqa: E402
from styletransfer.media import images  # noqa: E402
from styletransfer.method import losses  # noqa: E402
import sheets  # noqa: E402
import stylize  # noqa: E402
import vgg  # noqa: E402

METHODS = ('lbfgs-10', 'adam', 'lbfgs-100', 'coarse-to-fine', 'content-start', 'adam-averaged', 'lbfgs-10-mixed')
ITERATIONS = 1000  # the paper's optimum: L* after this many L-BFGS iterations
SNAPSHOT = 50  # the stopping criterion's window: the images where it can fire
BETA = 1e3  # the default style weight of the version that measured the docs' figures: kept, so that they compare
AVERAGE_DECAY = 0.99  # crowsonkb/style-transfer-pytorch's EMA of the iterates
AVERAGE_EVERY = 10
THRESHOLDS = (1.10, 1.05, 1.01)
TOLERANCES = (1e-3, 1e-4)
WINDOW = stylize.TOLERANCE_WINDOW
PAIRS = 'chelsea:starry_night,astronaut:the_scream,coffee:shipwreck'


def example(name):
    directory = os.path.join(ROOT, 'examples')
    return images.read_image(os.path.join(directory, next(f for f in os.listdir(directory)
                                                          if os.path.splitext(f)[0] == name)))


def kept(record, row, image, snapshot, enough):
    """Appends `row` (iteration, evaluations at full size, seconds, lowest objective) to `record`, writes `image`
    every SNAPSHOT iterations, and says whether the lowest objective is at most `enough` (the run may stop)."""
    record.append(row)
    if row[0] % SNAPSHOT == 0:
        snapshot(row[0], image)
    return row[3] <= enough


def run_method(net, method, content, style, size, iterations, snapshot, enough, record):
    """Appends to `record` a row per iteration (kept), up to its last iteration or the first where the lowest
    objective is at most `enough`."""
    height, width = images.output_size(content.shape, None, size)
    full_content = images.resize(content, height, width)
    full_style = images.scaled_style(style, width, 1.0)
    settings = stylize.Settings(seed=0, iterations=iterations, style_weight=BETA)
    if method == 'lbfgs-10-mixed':
        mixed = dataclasses.replace(settings, precision='mixed')
        with float32_objective(net, full_content, full_style, settings) as (session, image, total, _):
            for progress in stylize.stylize(net, full_content, [full_style], mixed):
                if progress.iteration % SNAPSHOT == 0:
                    judged = session.run(total, {image: vgg.preprocess(progress.best_image, net.mean_pixel)[None]})
                    row = (progress.iteration, progress.evaluations, progress.seconds, float(judged))
                    if kept(record, row, progress.best_image, snapshot, enough):
                        break
    elif method.startswith('lbfgs') or method in ('adam', 'content-start'):
        if method == 'adam':
            settings = dataclasses.replace(settings, optimizer='adam')
        if method.startswith('lbfgs'):
            settings = dataclasses.replace(settings, lbfgs_history=int(method.split('-')[1]))
        initial = full_content if method == 'content-start' else None
        for progress in stylize.stylize(net, full_content, [full_style], settings, initial=initial):
            row = (progress.iteration, progress.evaluations, progress.seconds, progress.best_total)
            if kept(record, row, progress.best_image, snapshot, enough):
                break
    elif method == 'coarse-to-fine':
        fractions, counts = (0.5, 2 ** -0.5), (500, 200)
        stages = [(images.longest_side((height, width), round(size * f)), dataclasses.replace(settings, iterations=n))
                  for f, n in zip(fractions, counts)] + [((height, width), settings)]
        done_evaluations, done_seconds, last = 0.0, 0.0, None
        for stage, progress in stylize.stylize_in_stages(net, content, [style], stages, style_scales=[1.0]):
            if last is not None and stage != last[0]:  # the previous stage ended: its cost, at its share
                (stage_height, stage_width), _ = stages[last[0]]
                done_evaluations += last[1].evaluations * stage_height * stage_width / (height * width)
                done_seconds += last[1].seconds
            last = (stage, progress)
            if stage == len(stages) - 1:
                row = (progress.iteration, done_evaluations + progress.evaluations, done_seconds + progress.seconds,
                       progress.best_total)
                if kept(record, row, progress.best_image, snapshot, enough):
                    break
    elif method == 'adam-averaged':
        adam_averaged(net, full_content, full_style, settings, snapshot, enough, record)


@contextlib.contextmanager
def float32_objective(net, content, style, settings):
    """The paper's objective in float32 on one device: yields (session, image placeholder [1, h, w, 3],
    preprocessed; the total, its gradient)."""
    import tensorflow.compat.v1 as tf
    device = devices.one_device().devices[0]
    targets = losses.layer_features(net, [content, style], settings.content_layers, settings.style_layers,
                                    settings.pooling, settings.padding, device)
    style_targets = [{name: (targets[1][1][name], targets[1][2][name]) for name in settings.style_layers}]
    graph = tf.Graph()
    with graph.as_default():
        image = tf.placeholder(tf.float32, (1,) + content.shape)
        total = losses.objective(net, image, targets[0][0], style_targets, settings)['total']
        gradient = tf.gradients(total, image)[0]
    with tf.Session(graph=graph) as session:
        yield session, image, total, gradient


def adam_averaged(net, content, style, settings, snapshot, enough, record):
    """Adam as TensorFlow's AdamOptimizer, on the host, clipped to the pixels' range; judged by the bias-corrected
    moving average of its iterates."""
    x = vgg.preprocess(stylize.white_noise(content.shape, net.mean_pixel, settings.seed), net.mean_pixel)[None]
    lower, upper = (vgg.preprocess(np.full_like(x, bound), net.mean_pixel) for bound in images.PIXEL_RANGE)
    m, v, average, best = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x), np.inf
    seconds = 0.0  # of the Adam steps only: the average's evaluations are not counted
    with float32_objective(net, content, style, settings) as (session, image, total, gradient):
        for t in range(1, settings.iterations + 1):
            started = time.perf_counter()
            g = session.run(gradient, {image: x})
            m = settings.beta1 * m + (1 - settings.beta1) * g
            v = settings.beta2 * v + (1 - settings.beta2) * g * g
            step = settings.learning_rate * np.sqrt(1 - settings.beta2 ** t) / (1 - settings.beta1 ** t)
            x = np.clip(x - step * m / (np.sqrt(v) + settings.epsilon), lower, upper)
            average = AVERAGE_DECAY * average + (1 - AVERAGE_DECAY) * x
            seconds += time.perf_counter() - started
            if t % AVERAGE_EVERY == 0:
                averaged = average / (1 - AVERAGE_DECAY ** t)
                best = min(best, float(session.run(total, {image: averaged})))
                picture = np.clip(vgg.unprocess(averaged[0], net.mean_pixel), *images.PIXEL_RANGE)
                if kept(record, (t, t, seconds, best), picture, snapshot, enough):
                    break


def run(args):
    path = args.out + '.json'
    results = json.load(open(path)) if os.path.exists(path) else {'size': args.size, 'runs': {}}
    net = vgg.load_net(args.network)
    for pair in args.pairs.split(','):
        content_name, style_name = pair.split(':')
        for method in args.methods.split(','):
            key = f'{pair} {method}'
            if key in results['runs']:
                continue

            record = []

            def snapshot(iteration, image, stem=f'{args.out}-{content_name}-{style_name}-{method}'):
                images.write_image(f'{stem}-{iteration:04d}.png', image)
                save(f'{args.out}-partial.json', dict(results, partial={key: record}))

            reference = results['runs'].get(f'{pair} lbfgs-10')  # L*: a method that reaches L* x 1.01 has its row
            enough = 0.0 if method == 'lbfgs-10' or reference is None else min(THRESHOLDS) * reference[-1][3]
            run_method(net, method, example(content_name), example(style_name), args.size, args.iterations,
                       snapshot, enough, record)
            results['runs'][key] = record
            save(path, results)
            print(f'{key}: {record[-1][3]:.5g} after {record[-1][0]} iterations, {record[-1][2]:.0f} s', flush=True)


def save(path, results):
    files.write_atomically(path, lambda f: f.write(json.dumps(results).encode()))


def fires(record, tolerance):
    """The iteration where Ruder et al.'s criterion fires on this record's objective, or None."""
    totals = {iteration: total for iteration, _, _, total in record}
    for k in range(2 * WINDOW, max(totals) + 1, WINDOW):
        if k in totals and abs(totals[k] - totals[k - WINDOW]) / totals[k - WINDOW] < tolerance:
            return k
    return None


def load(stem):
    """(the size, the runs: key -> record) of `run --out stem`, with the rows so far of a run under way."""
    results = json.load(open(stem + '.json'))
    runs = results['runs']
    if os.path.exists(stem + '-partial.json'):  # the run under way, or stopped: its rows so far
        for key, record in json.load(open(stem + '-partial.json')).get('partial', {}).items():
            if key not in runs and record:
                runs[key] = record
    return results['size'], runs


def report(args):
    for stem in args.results:
        size, runs = load(stem)
        pairs = sorted({key.split(' ')[0] for key in runs})
        print(f'\n{stem}: {size} px')
        for pair in pairs:
            optimum = runs.get(f'{pair} lbfgs-10')
            if optimum is None:
                continue
            best = optimum[-1][3]
            print(f'\n{pair}: L* = {best:.5g}\n')
            print('| method | ' + ' | '.join(f'L* x {t:.2f}: evaluations, s' for t in THRESHOLDS) +
                  ' | lowest at the end (iterations) |\n|' + ' --- |' * (len(THRESHOLDS) + 2))
            for method in METHODS:
                record = runs.get(f'{pair} {method}')
                if record is None:
                    continue
                cells = []
                for threshold in THRESHOLDS:
                    hit = next((row for row in record if row[3] <= threshold * best), None)
                    cells.append('not reached' if hit is None else
                                 f'{hit[1]:.0f}, {hit[1] * args.seconds_per_evaluation:.0f}')
                print(f'| {method} | ' + ' | '.join(cells) + f' | L* x {record[-1][3] / best:.3f} ({record[-1][0]}) |')
            totals = {row[0]: row[3] for row in optimum}
            mixed = runs.get(f'{pair} lbfgs-10-mixed')
            if mixed:  # bfloat16 against float32 after as many iterations, both judged in float32
                last = mixed[-1][0]
                print(f'\nlbfgs-10-mixed after {last} iterations: L* x {mixed[-1][3] / best:.4f}; '
                      f'lbfgs-10 after {last}: L* x {totals[last] / best:.4f}')
            print('\n| tolerance | fires at iteration | objective there / after 1000 |\n| --- | --- | --- |')
            for tolerance in TOLERANCES:
                k = fires(optimum, tolerance)
                print(f'| {tolerance:g} | {k or "never"} | ' + (f'{totals[k] / best:.4f} |' if k else '- |'))


def sheet(args):
    """The best images of each method at the given iterations side by side, each captioned with its objective
    over L* (lbfgs-10's after ITERATIONS)."""
    _, runs = load(args.results)
    best = runs[f'{args.pair} lbfgs-10'][-1][3]
    content_name, style_name = args.pair.split(':')
    iterations = [int(i) for i in args.iterations.split(',')]
    pictures, captions = [], []
    for method in args.methods.split(','):
        totals = {row[0]: row[3] for row in runs[f'{args.pair} {method}']}
        pictures += [images.read_image(f'{args.results}-{content_name}-{style_name}-{method}-{i:04d}.png')
                     for i in iterations]
        captions += [f'{method}\n{i} it L* x {totals[i] / best:.3f}' for i in iterations]
    sheets.write_sheet(args.to, pictures, captions)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    commands = parser.add_subparsers(dest='command', required=True)
    runner = commands.add_parser('run')
    runner.add_argument('--network', required=True)
    runner.add_argument('--size', type=int, default=256)
    runner.add_argument('--pairs', default=PAIRS.split(',')[0], help=f'content:style pairs of examples/ ({PAIRS})')
    runner.add_argument('--methods', default=','.join(METHODS))
    runner.add_argument('--iterations', type=int, default=ITERATIONS, help='at the full size (fewer: a trial)')
    runner.add_argument('--out', required=True)
    reporter = commands.add_parser('report')
    reporter.add_argument('results', nargs='+')
    reporter.add_argument('--seconds-per-evaluation', type=float, default=float('nan'))
    sheeter = commands.add_parser('sheet')
    sheeter.add_argument('results')
    sheeter.add_argument('pair', help='content:style')
    sheeter.add_argument('iterations', help='comma-separated multiples of 50')
    sheeter.add_argument('--to', required=True, help='the sheet: .jpg or .png')
    sheeter.add_argument('--methods', default='lbfgs-10', help='comma-separated, in turn, at each of the iterations')
    return parser


def main():
    args = build_parser().parse_args()
    {'run': run, 'report': report, 'sheet': sheet}[args.command](args)


if __name__ == '__main__':
    main()
