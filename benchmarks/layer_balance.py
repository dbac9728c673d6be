#!/usr/bin/env python3
"""How the style layers share L_style, with the weights as published and with the paper's normalized network.

    python benchmarks/layer_balance.py --network vgg19q.mat --out balance              # measure and stylize
    python benchmarks/layer_balance.py --network vgg19q.mat --out balance --shares c256-chelsea-...-1000.png ...

1. The mean activation of each loss layer (relu1_1 ... relu5_1) over the six images of examples/ (three
   photographs, three paintings) with their longest side SIZE px.
2. The paper's normalization (Gatys et al. 2016, sec. 2: "We normalized the network by scaling the weights such
   that the mean activation of each convolutional filter over images and positions is equal to one"): each
   filter's kernel and bias divided by its mean activation over those six images, and the next layer's kernel
   multiplied by it on that input channel, so that every deeper layer sees what it saw before (a ReLU and an
   average pooling commute with a positive scale).
3. examples/chelsea.png in the style of examples/starry_night.jpg at SIZE px, ITERATIONS of L-BFGS from white
   noise (seed 0), with the published weights at alpha/beta = 1e-3 (convergence.BETA), and with the normalized
   network at each ratio of RATIOS; for each: the two terms of eq. 7 at the start and at the end, each style
   layer's share of L_style (w_l E_l over their sum) at the end, OUT-<run>.png, and a sheet OUT-sheet.jpg with
   them side by side.

With --shares, the shares of each style layer in the results of benchmarks/convergence.py given (named
OUT-<content>-<style>-...), with the published weights: the layer balance of the default results.
"""
import argparse
import json
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from styletransfer.compute import devices  # noqa: E402
from convergence import BETA, example  # noqa: E402
from styletransfer.media import files  # noqa: E402
from styletransfer.media import images  # noqa: E402
from styletransfer.method import losses  # noqa: E402
from styletransfer.network.network_normalization import example_pictures, mean_activations, normalized, sized  # noqa: E402
import sheets  # noqa: E402
import stylize  # noqa: E402
import vgg  # noqa: E402

# alpha/beta with the normalized network: arXiv Fig. 2's for three of its paintings; two and four orders lower;
# the authors' Lasagne recipe (content 1e-3, style 2e5: Gatys' Art_Style_Transfer notebook)
RATIOS = (1e-3, 1e-5, 1e-7, 5e-9)
SIZE = 256
ITERATIONS = 200


def style_for(style, output):
    """The style image as a run gives it to the network: as wide as the output (--style-scales 1)."""
    return images.scaled_style(style, output.shape[1], 1.0)


def style_shares(net, result, style, settings):
    """Style layer -> w_l E_l / L_style for `result` against `style` (E_l per position when their sizes differ)."""
    device = devices.one_device().devices[0]
    (_, grams, positions), (_, style_grams, style_positions) = losses.layer_features(
        net, [result, style], (), settings.style_layers, settings.pooling, settings.padding, device)
    weighted = {name: w * np.sum((grams[name] / positions[name] - style_grams[name] / style_positions[name]) ** 2)
                / (4 * vgg.channels(name) ** 2) for name, w in settings.style_weights().items()}
    total = sum(weighted.values())
    return {name: float(value / total) for name, value in weighted.items()}


def stylized(net, content, style, settings):
    """(the best image, the first Progress, the last) of a run."""
    first = last = None
    for progress in stylize.stylize(net, content, [style], settings):
        first, last = first or progress, progress
    return last.best_image, first, last


def run(args):
    net = vgg.load_net(args.network)
    means = mean_activations(net, example_pictures(args.size))
    report = {'mean activation': {name: float(np.mean(m)) for name, m in means.items()
                                  if name in stylize.STYLE_LAYERS}, 'runs': {}}
    print('mean activation over the examples:', json.dumps(report['mean activation']))
    content = sized(example('chelsea'), args.size)
    style = style_for(example('starry_night'), content)
    runs = [('published', net, stylize.Settings(seed=0, iterations=args.iterations, style_weight=BETA))]
    normal = normalized(net, means)
    runs += [(f'normalized-{ratio:g}', normal, stylize.Settings(seed=0, iterations=args.iterations,
                                                                 style_weight=1.0 / ratio)) for ratio in RATIOS]
    pictures, captions = [], []
    for name, network, settings in runs:
        image, first, last = stylized(network, content, style, settings)
        images.write_image(f'{args.out}-{name}.png', image)
        report['runs'][name] = {
            'alpha/beta': settings.content_weight / settings.style_weight,
            'start': {'content': first.content, 'style': first.style},
            'end': {'content': last.content, 'style': last.style},
            'style shares at the end': style_shares(network, image, style, settings)}
        print(name, json.dumps(report['runs'][name]), flush=True)
        pictures.append(image)
        captions.append(f'{name}, alpha/beta {settings.content_weight / settings.style_weight:g}\n'
                        f'start: content/style {first.content / first.style:.2g}')
    files.write_atomically(args.out + '.json', lambda f: f.write(json.dumps(report, indent=1).encode()))
    sheets.write_sheet(args.out + '-sheet.jpg', pictures, captions)


def shares(args):
    net = vgg.load_net(args.network)
    settings = stylize.Settings()
    for path in args.shares:
        style_name = os.path.basename(path).split('-')[2]  # convergence.py's OUT-<content>-<style>-...png
        result = images.read_image(path)
        style = style_for(example(style_name), result)
        print(path, json.dumps({k: round(v, 4) for k, v in style_shares(net, result, style, settings).items()}))


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--network', required=True)
    parser.add_argument('--out', default='balance')
    parser.add_argument('--size', type=int, default=SIZE)
    parser.add_argument('--iterations', type=int, default=ITERATIONS)
    parser.add_argument('--shares', nargs='+', help='finished results: only their layer shares')
    return parser


def main():
    args = build_parser().parse_args()
    (shares if args.shares else run)(args)


if __name__ == '__main__':
    main()
