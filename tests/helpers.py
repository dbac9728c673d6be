"""What several test modules share that is not a fixture (the fixtures are in conftest.py): tiny inputs, the
command line's fast options and its expected failures, the runs of its arguments, a run interrupted at a marker,
the objective's terms in a graph, and a tiny clip's options."""
import os
import pathlib
import signal
import subprocess
import sys
import threading

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

import neural_style
import stylize
import vgg
from styletransfer.compute import devices
from styletransfer.method import losses
from styletransfer.run import job, run_config, video_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Inputs

def random_image(height, width, seed):
    return np.random.default_rng(seed).uniform(0, 255, (height, width, 3)).astype(np.float32)


def save(path, array, mode='RGB'):
    """Writes an RGB array as an image file in `mode`; returns the path as a string."""
    Image.fromarray(np.asarray(array, np.uint8)).convert(mode).save(path)
    return str(path)


def write_cpuinfo(path, flags):
    """A /proc/cpuinfo whose CPU lists `flags` (space-separated), as devices.cpu_flags reads it; returns the path
    as a string."""
    path.write_text(f'processor\t: 0\nflags\t\t: {flags}\n')
    return str(path)


def write_inputs(directory, network):
    """A content and a style image in `directory`, the network, and the directory: the inputs fixture's."""
    content = save(directory / 'content.png', random_image(30, 40, seed=1))
    style = save(directory / 'style.jpg', random_image(25, 25, seed=2))
    return dict(content=content, style=style, network=network, dir=directory)


def side_by_side(commands, timeout, **popen):
    """Runs the commands at the same time, each in a session of its own so that whatever it starts is killed with
    it, pass or fail: [(exit status, stdout, stderr)]."""
    processes = [subprocess.Popen(command, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  start_new_session=True, **popen) for command in commands]
    try:
        outputs = [process.communicate(timeout=timeout) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return [(process.returncode, out, err) for process, (out, err) in zip(processes, outputs)]


def textured_clip(count=4, height=24, width=32, seed=0):
    """A smooth random texture seen through a window moving 1 px right per frame."""
    texture = gaussian_filter(np.random.default_rng(seed).uniform(0, 255, (height + 8, width + 8 + count, 3)),
                              (1.5, 1.5, 0))
    texture = (texture - texture.min()) / (texture.max() - texture.min()) * 255
    return [texture[4:4 + height, 4 + k:4 + k + width].astype(np.uint8) for k in range(count)]


# stylize and the objective

def stylize_with(net, content, styles, *, initial=None, style_masks=None, temporal_targets=None, device=None,
                 **settings):
    """stylize.stylize with its settings given by name and the device by its name, as the tests write them."""
    return stylize.stylize(net, content, styles, stylize.Settings(**settings), initial=initial,
                           style_masks=style_masks, temporal_targets=temporal_targets,
                           placement=devices.one_device(device))


def as_settings(weights):
    """A stylize.Settings from the objective's weights as the tests write them: layer -> weight dicts."""
    weights = dict(weights)
    content, style = weights.pop('content_layer_weights'), weights.pop('style_layer_weights')
    return stylize.Settings(content_layers=tuple(content), content_layer_weights=tuple(content.values()),
                            style_layers=tuple(style), style_layer_weights=tuple(style.values()), **weights)


def objective_settings(**changes):
    settings = dict(content_layer_weights={'relu4_2': 1.0},
                    style_layer_weights={name: 0.2 for name in stylize.STYLE_LAYERS},
                    style_blend_weights=[1.0], content_weight=1.0, style_weight=1e3, tv_weight=0.0,
                    pooling='avg', padding='zero')
    settings.update(changes)
    return settings


def graph_terms(net, x, content, styles, settings):
    """The untiled objective's evaluate for image x (RGB 0..255), targets from content and styles: x -> (terms,
    total gradient)."""
    weights = {key: value for key, value in settings.items() if key != 'style_guides'}
    objective = losses.UntiledObjective(net, content, styles, as_settings(weights),
                                        style_guides=settings.get('style_guides'), placement=devices.one_device('/cpu:0'))
    return lambda pixels, gradient=True: objective.evaluate(vgg.preprocess(pixels, net.mean_pixel)[None], gradient)


# The command line

FAST = ['--iterations', '3', '--style-layers', 'relu1_1', 'relu2_1', '--content-layers', 'relu2_2',
        '--device', '/cpu:0', '--seed', '0']


def args(inputs, *extra, output='out.png'):
    return ['--content', inputs['content'], '--styles', inputs['style'], '--network', inputs['network'],
            '--output', str(inputs['dir'] / output)] + FAST + list(extra)


def config_of(argv):
    """The run_config.RunConfig of the command line's arguments, as neural_style.main builds it."""
    return run_config.from_options(neural_style.build_parser().parse_args(argv))


def image_run(argv, net=None):
    """The job.Run of an image's arguments: checked, then loaded, as neural_style.run makes it."""
    config = config_of(argv)
    job.check_options(config)
    return job.load(config, net)


def clip_run(argv):
    """The video_run.VideoRun of a clip's arguments: checked, then loaded, as neural_style.run makes it."""
    config = config_of(argv)
    job.check_video_options(config)
    return video_run.load(config)


def listing(directory):
    return {path.name: path.read_bytes() for path in directory.iterdir() if path.is_file()}


def fails(argv, capsys):
    """Runs the command line expecting a one-line error, and nothing written beside the output; returns that
    line."""
    directory = pathlib.Path(argv[argv.index('--output') + 1]).parent
    before = listing(directory) if directory.is_dir() else None
    try:
        code = neural_style.main(argv)
    except SystemExit as exit:  # argparse
        code = exit.code
    assert code not in (0, None)
    err = capsys.readouterr().err.strip().splitlines()
    assert 'Traceback' not in '\n'.join(err)
    if before is not None:
        assert listing(directory) == before
    return err[-1]


# The command line in a subprocess, with `patch` (Python source) run first to slow a step down.
PATCHED_MAIN = r'''
import sys, time
import neural_style
import stylize
from styletransfer.media import images
from styletransfer.method import losses
exec(sys.argv[1])
sys.exit(neural_style.main(sys.argv[2:]))
'''


def interrupted(patch, argv, marker, signum=signal.SIGINT):
    """Runs the patched command line, sends `signum` once it has printed a line starting with `marker`, and
    returns (exit status, stdout, stderr)."""
    return signalled([sys.executable, '-c', PATCHED_MAIN, patch] + argv, lambda line: line.startswith(marker),
                     signum)


def signalled(command, until, signum):
    """Runs `command` (in the top directory, this checkout first on the path), sends `signum` once it has printed
    a line for which until(line) holds, and returns (exit status, stdout, stderr)."""
    process = subprocess.Popen(command, cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=dict(os.environ, PYTHONPATH=ROOT))
    watchdog = threading.Timer(240, process.kill)  # a run that never prints must not hang the suite
    watchdog.start()
    try:
        seen = []
        for line in process.stdout:
            seen.append(line)
            if until(line):
                break
        process.send_signal(signum)
        out, err = process.communicate(timeout=240)
    finally:
        watchdog.cancel()
        process.kill()
        process.wait()
    return process.returncode, ''.join(seen) + out, err


# A clip on the command line

FAST_CLIP = ['--style-layers', 'relu1_1', 'relu2_1', '--content-layers', 'relu2_2', '--device', '/cpu:0',
             '--seed', '0', '--print-iterations', '1']
CLIP_FPS = 12.5


def clip_args(clip, *extra, output='out.mp4'):
    return ['--content', clip['content'], '--styles', clip['style'], '--network', clip['network'],
            '--output', str(clip['dir'] / output)] + FAST_CLIP + list(extra)
