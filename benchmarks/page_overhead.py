#!/usr/bin/env python3
"""What one refresh of the page (app.py) costs on top of the optimization: the image as written (colour
transfer and 8-bit pixels), the loss plot, and Gradio's encoding of both, measured on the handler's own calls.

    python benchmarks/page_overhead.py                        # 512x384, a run of 1000 iterations so far
    python benchmarks/page_overhead.py --size 1024 --rows 100

No network is needed: the parts measured do not touch it. Compare the medians with an iteration's time
(benchmarks/bench.py): the page refreshes at most every app.REFRESH_SECONDS.
"""
import argparse
import os
import statistics
import tempfile
import time
from types import SimpleNamespace

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ['GRADIO_ANALYTICS_ENABLED'] = 'False'

from styletransfer.media import images  # noqa: E402
from styletransfer.run import job  # noqa: E402


def median_seconds(function, repeats):
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--size', type=int, default=512, help='longest side of the image (4:3)')
    parser.add_argument('--rows', type=int, default=1000, help='steps in the plot so far')
    parser.add_argument('--repeats', type=int, default=15)
    return parser


def main():
    options = build_parser().parse_args()
    import gradio as gr

    rng = np.random.default_rng(0)
    height, width = options.size * 3 // 4, options.size
    best = rng.uniform(0, 255, (height, width, 3)).astype(np.float32)
    losses = [(i, 1e6 / (i + 1), 1e7 / (i + 1) ** 0.5, 0.0, 1e6 / (i + 1) + 1e7 / (i + 1) ** 0.5)
              for i in range(options.rows)]
    os.environ.setdefault('GRADIO_TEMP_DIR', tempfile.mkdtemp(prefix='page-overhead-'))
    image, plot = gr.Image(format='png', render=False), gr.Plot(format='png', render=False)
    # Stand-ins for a job.Run at that point, with what its as_written() and plot() read.
    plain = SimpleNamespace(config=SimpleNamespace(preserve_colors=None), photo=best, iterations=[options.rows],
                            losses=losses)
    coloured = SimpleNamespace(config=SimpleNamespace(preserve_colors='luminance'), photo=best,
                               iterations=[options.rows], losses=losses)
    figure = job.Run.plot(plain)
    pixels = images.to_uint8(best)
    parts = {
        'image as written (no colour preservation)': lambda: images.to_uint8(job.Run.as_written(plain, best)),
        'image as written (luminance transfer)': lambda: images.to_uint8(job.Run.as_written(coloured, best)),
        'loss plot (matplotlib Figure)': lambda: job.Run.plot(plain),
        "Gradio: the image to PNG in its cache": lambda: image.postprocess(pixels),
        "Gradio: the plot to PNG (base64)": lambda: plot.postprocess(figure),
    }
    print(f'{width}x{height}, {options.rows} rows in the plot, median of {options.repeats}:')
    total = 0.0
    for name, function in parts.items():
        seconds = median_seconds(function, options.repeats)
        if 'luminance' not in name:
            total += seconds
        print(f'  {name:45s} {seconds * 1000:8.1f} ms')
    print(f'  {"one refresh, without colour preservation":45s} {total * 1000:8.1f} ms')


if __name__ == '__main__':
    main()
