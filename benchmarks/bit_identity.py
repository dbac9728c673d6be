"""Bit-identity of a restructuring: runs one fixed set of small commands (images, a video, a batch, a figure of
reproduce.py) with a checkout's programs and prints the SHA256 of each output's pixels, so the hashes of two
checkouts can be compared line by line. Pixels, not files: the settings recorded inside an output name its
temporary paths and the program's version, which may differ while the picture does not.

    python benchmarks/bit_identity.py --repo /path/to/old/checkout > before.txt
    python benchmarks/bit_identity.py > after.txt
    diff before.txt after.txt

The network is a random-weight VGG-19 of the real size written by styletransfer/testing/synthetic_vgg.py (seed 0), the
images are the repository's examples at 48-64 px, every run gives its seed, and --precision auto sees a CPU
without bfloat16 units (NEURAL_STYLE_CPUINFO), so a run repeats on one machine.
"""
import argparse
import hashlib
import os
import subprocess
import sys
import tempfile

import imageio.v2 as imageio
import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ['--max-size', '48', '--iterations', '6', '--seed', '3', '--print-iterations', '0']

# name -> (program, arguments after the program; {examples}, {work} and {network} are filled in, output last)
IMAGE_RUNS = {
    'default-lbfgs': [],
    'adam': ['--optimizer', 'adam', '--learning-rate', '2'],
    'init-content': ['--init', 'content'],
    'init-style': ['--init', 'style', '--optimizer', 'adam'],
    'two-styles': ['--styles', '{examples}/starry_night.jpg', '{examples}/the_scream.jpg',
                   '--style-blend-weights', '0.7', '0.3'],
    'preserve-luminance': ['--preserve-colors', 'luminance'],
    'preserve-histogram': ['--preserve-colors', 'histogram'],
    'max-pool-reflect': ['--pooling', 'max', '--padding', 'reflect'],
    'layers': ['--content-layers', 'relu3_2', '--style-layers', 'relu1_1', 'relu2_1', '--style-layer-weights',
               '2', '1', '--content-weight', '10', '--tv-weight', '0'],
    'raw-beta': ['--raw-style-weight', '--style-weight', '100'],
    'normalized-network': ['--normalize-network'],
    'scales': ['--scales', '32,48'],
    'style-scale': ['--style-scales', '0.5'],
    'tiled': ['--tile-size', '32'],
    'mixed': ['--precision', 'mixed'],
    'bit-depth-16': ['--bit-depth', '16'],
    'noiseblend': ['--init', 'content', '--initial-noiseblend', '0.5'],
    'two-devices': ['--devices', '/cpu:0,/cpu:1', '--tile-size', '32'],
}


def pixels_digest(path):
    """SHA256 of the decoded pixels (and their shape and type) of an image, or of every frame of a clip."""
    digest = hashlib.sha256()
    if path.endswith('.mp4'):
        frames = [np.asarray(frame) for frame in imageio.get_reader(path, format='FFMPEG')]
    else:
        frames = [np.asarray(Image.open(path))]
    for frame in frames:
        digest.update(f'{frame.shape} {frame.dtype}'.encode())
        digest.update(np.ascontiguousarray(frame).tobytes())
    return digest.hexdigest()


def run(repo, program, arguments, cpuinfo):
    # the same arithmetic for --precision auto on every CPU: a cpuinfo without bfloat16 units
    environment = dict(os.environ, NEURAL_STYLE_CPUINFO=cpuinfo)
    result = subprocess.run([sys.executable, program, *arguments], cwd=repo, capture_output=True, text=True,
                            env=environment)
    if result.returncode:
        sys.exit(f'{program} {" ".join(arguments)} failed ({result.returncode}):\n{result.stderr[-2000:]}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--repo', default=HERE, help='the checkout whose programs run (default: this one)')
    args = parser.parse_args()
    repo = os.path.abspath(args.repo)
    examples = os.path.join(HERE, 'examples')
    with tempfile.TemporaryDirectory() as work:
        cpuinfo = os.path.join(work, 'cpuinfo')
        with open(cpuinfo, 'w') as f:
            f.write('processor\t: 0\nflags\t\t: fpu sse2 avx2\n')
        network = os.path.join(work, 'vgg.mat')
        subprocess.run([sys.executable, '-m', 'styletransfer.testing.synthetic_vgg', network, '--seed', '0'],
                       check=True)
        pair = ['--content', f'{examples}/chelsea.png', '--styles', f'{examples}/starry_night.jpg',
                '--network', network]
        outputs = {}
        for name, extra in IMAGE_RUNS.items():
            extra = [word.format(examples=examples) for word in extra]
            first = pair if '--styles' not in extra else pair[:2] + pair[4:]
            output = os.path.join(work, f'{name}.png')
            run(repo, 'neural_style.py', [*first, *SMALL, *extra, '--output', output], cpuinfo)
            outputs[name] = [output]

        clip = os.path.join(work, 'clip.mp4')
        frames = [np.asarray(Image.open(f'{examples}/coffee.png').convert('RGB').resize((80, 60)))[:, k:k + 64]
                  for k in range(0, 12, 4)]
        imageio.mimwrite(clip, frames, format='FFMPEG', fps=4, codec='libx264', quality=10, macro_block_size=1)
        output = os.path.join(work, 'video.mp4')
        run(repo, 'neural_style.py', ['--content', clip, '--styles', f'{examples}/the_scream.jpg', '--network',
                                      network, *SMALL, '--temporal-weight', '100', '--output', output], cpuinfo)
        outputs['video'] = [output]

        batch = os.path.join(work, 'batch')
        os.mkdir(batch)
        run(repo, 'neural_style.py', ['--content', f'{examples}/chelsea.png', f'{examples}/coffee.png',
                                      '--styles', f'{examples}/shipwreck.jpg', '--network', network, *SMALL,
                                      '--output', batch + os.sep], cpuinfo)
        outputs['batch'] = sorted(os.path.join(batch, name) for name in os.listdir(batch) if name.endswith('.png'))

        sheet = os.path.join(work, 'figure.png')
        run(repo, 'reproduce.py', ['init', '--content', f'{examples}/chelsea.png', '--style',
                                   f'{examples}/starry_night.jpg', '--network', network, '--max-size', '48',
                                   '--iterations', '6', '--output', sheet], cpuinfo)
        cells = sorted(name for name in os.listdir(work) if name.startswith('figure-') and name.endswith('.png'))
        outputs['reproduce-init'] = [sheet] + [os.path.join(work, name) for name in cells]

        for name, paths in outputs.items():
            for path in paths:
                shown = os.path.relpath(path, work)
                if shown.startswith('figure-'):  # a cell's name ends in the hash of its settings' text
                    shown = '-'.join(shown.split('-')[:3])
                print(f'{pixels_digest(path)}  {name}: {shown}', flush=True)


if __name__ == '__main__':
    main()
