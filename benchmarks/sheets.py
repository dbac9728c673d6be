"""Pictures side by side with a caption above each, for the docs (benchmarks' sheets), and the runs that make them."""
import os
import subprocess
import sys
import time

import numpy as np
from PIL import Image, ImageDraw

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from styletransfer.media import images  # noqa: E402

LINE = 14  # pixels per caption line (PIL's default font)
GAP = 8


def write_sheet(path, pictures, captions):
    """pictures: RGB arrays, 0..255; captions: one string each, lines split by newlines. JPEG or PNG by the name."""
    captioned(pictures, captions).save(path, quality=90)


def captioned(pictures, captions):
    """The pictures side by side, each with its caption above (lines split by newlines), as a PIL image."""
    lines = max(caption.count('\n') + 1 for caption in captions)
    height = max(picture.shape[0] for picture in pictures)
    width = sum(picture.shape[1] for picture in pictures) + GAP * (len(pictures) - 1)
    canvas = Image.new('RGB', (width, height + lines * LINE + 4), 'white')
    draw, x = ImageDraw.Draw(canvas), 0
    for picture, caption in zip(pictures, captions):
        for row, text in enumerate(caption.split('\n')):
            draw.text((x + 2, 2 + row * LINE), text, fill='black')
        canvas.paste(Image.fromarray(images.to_uint8(np.asarray(picture))), (x, lines * LINE + 4))
        x += picture.shape[1] + GAP
    return canvas


def example_path(name):
    """The path of examples/<name>."""
    return os.path.join(ROOT, 'examples', name)


def add_run_options(parser, size, iterations):
    """The options of a script whose sheets are neural_style.py runs: the weights, the runs' prefix, the longest
    side and the L-BFGS iterations (run_options passes them on)."""
    parser.add_argument('--network', required=True)
    parser.add_argument('--out', required=True, help='prefix of the runs and sheets')
    parser.add_argument('--size', type=int, default=size)
    parser.add_argument('--iterations', type=int, default=iterations)


def run_options(args):
    """neural_style.py's options for add_run_options' arguments, every run from seed 0's white noise."""
    return ['--network', args.network, '--max-size', str(args.size), '--iterations', str(args.iterations),
            '--seed', '0']


def stylized(output, options, env=None):
    """Runs neural_style.py with these options (printing the command; in the environment `env`, None: this
    one's), unless `output` exists: a sheet's runs resume. Returns the image and the seconds its run took (None:
    it existed)."""
    command = [sys.executable, os.path.join(ROOT, 'neural_style.py'), *options, '--output', output]
    seconds = None
    if not os.path.exists(output):
        print(' '.join(command), flush=True)
        start = time.monotonic()
        subprocess.run(command, check=True, env=env)
        seconds = time.monotonic() - start
    return images.read_image(output), seconds


def took(seconds):
    """A caption's time: the run's, or `reused` for a picture made before."""
    return 'reused' if seconds is None else f'{seconds:.0f} s'
