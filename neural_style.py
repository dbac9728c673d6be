#!/usr/bin/env python3
"""Paint a photograph in the style of an artwork (Gatys, Ecker & Bethge, arXiv 1508.06576; CVPR 2016).

This file is the command line: its options, what it prints, and its exit codes. A run of the options (checks,
images, the network, the optimization, the files written) is job.py's (a clip's, video_run.py's); the method is
stylize.py's, its equations losses.py's, the network vgg.py's.
"""
import argparse
import math
import shlex
import signal
import sys
import time

import batch
import colors
import console
import devices
import flow
import host_memory
import images
import job
import quiet_tensorflow
import stylize
import tiling
import vgg
import video
import video_run

PROG = 'neural_style.py'
VERSION = '1.1.0'  # this program's; --version prints it with those of its main packages and network file
# Before 1.1.0, --style-weight was eq. 7's beta at every size: a command recorded by those versions gets
# --raw-style-weight, so that --settings-from makes its image again.
RAW_STYLE_WEIGHT_UNTIL = (1, 1, 0)
MAX_SIZE = 512  # the longest side of the output; the paper's figures are about 512 px wide
PRINT_ITERATIONS = 10


# Options

def _number(text, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'must be {"an integer" if kind is int else "a number"}, not {text}') from None


def positive_int(text):
    value = _number(text, int)
    if value <= 0:
        raise argparse.ArgumentTypeError(f'must be a positive integer, not {text}')
    return value


def _positive_ints(text):
    """One positive integer, or several separated by commas (one per stage of --scales)."""
    return [positive_int(value) for value in text.split(',')]


def _scales(text):
    sizes = _positive_ints(text)
    if any(b <= a for a, b in zip(sizes, sizes[1:])):
        raise argparse.ArgumentTypeError(f'must be sizes in pixels from smallest to largest, such as '
                                         f'256,512,1024, not {text}')
    return sizes


def _non_negative_int(text):
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f'must be 0 or more, not {text}')
    return value


def positive_float(text):
    value = _number(text, float)
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f'must be a positive number, not {text}')
    return value


def _non_negative_float(text):
    value = _number(text, float)
    if not value >= 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f'must be 0 or a positive number, not {text}')
    return value


def _cluster_timeouts(text):
    """--cluster-timeouts ANSWER,STALL: two positive numbers of seconds."""
    values = text.split(',')
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f'must be two numbers of seconds separated by a comma, such as '
                                         f'{devices.ANSWER_TIMEOUT},{devices.STALL_CHECK}, not {text}')
    return tuple(positive_float(value) for value in values)


def _fraction(text):
    value = _number(text, float)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f'must be between 0 and 1, not {text}')
    return value


def _layer(text):
    if text not in vgg.LAYERS:
        raise argparse.ArgumentTypeError(f'unknown layer {text!r}; layers are named conv1_1, relu1_1, '
                                         f'..., pool5 (see --help)')
    return text


class Parser(argparse.ArgumentParser):
    """The command line's parser: argparse's, that knows its options by name (option()) and, with raise_errors
    (for the page), raises job.UserError instead of printing usage and exiting."""

    def __init__(self, raise_errors=False, **options):
        super().__init__(**options)
        self.raise_errors, self.options = raise_errors, {}

    def parse_known_args(self, args=None, namespace=None):
        self.argv = list(sys.argv[1:] if args is None else args)  # for --version, which acts before the rest
        return super().parse_known_args(args, namespace)

    def option(self, dest):
        """The option that sets `dest`: an argparse Action, whose option_strings, default, choices and help
        are public."""
        return self.options[dest]

    def error(self, message):
        if self.raise_errors:
            raise job.UserError(message)
        super().error(message)


def versions(network=None):
    """Lines naming this program's version, TensorFlow's, numpy's and the network file's (found as a run finds
    it: vgg.find_weights), with its SHA256 and which published file it is."""
    import numpy

    tensorflow = quiet_tensorflow.import_tensorflow()
    try:
        path = vgg.find_weights(network)
        sha256, _, published = vgg.identify(path)
        weights = f'{path}, SHA256 {sha256}' + (f' ({published})' if published else '')
        if sha256 in vgg.QUANTIZED_DIGESTS:
            weights += f': VGG-19, {vgg.QUANTIZED_LAYOUT}'
    except (vgg.WeightsError, OSError) as error:
        weights = f'none usable ({error})'
    return [f'neural-style {VERSION}', f'TensorFlow {tensorflow.__version__}', f'numpy {numpy.__version__}',
            f'network {weights}']


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default after its help, unless the help already says it (a default that depends on others)."""

    def _get_help_string(self, action):
        return action.help if '(default' in action.help else super()._get_help_string(action)


class _Versions(argparse.Action):
    """--version: prints versions() for the --network given anywhere on the line (or the default one) and
    exits, whatever else is given or missing."""

    def __init__(self, option_strings, dest, **options):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **options)

    def __call__(self, parser, namespace, values, option_string=None):
        network = argparse.ArgumentParser(add_help=False)
        network.add_argument('--network')
        print('\n'.join(versions(network.parse_known_args(parser.argv)[0].network)), flush=True)
        parser.exit()


class _ShowSettings(argparse.Action):
    """--show-settings IMAGE: prints the settings recorded inside an image and exits, whatever else is given."""

    def __call__(self, parser, namespace, path, option_string=None):
        try:
            settings = images.read_settings(path)
        except images.ImageError as error:
            parser.exit(1, f'{parser.prog}: error: {error}\n')
        if not settings:
            parser.exit(1, f'{parser.prog}: error: {path} holds no settings of neural_style.py\n')
        print('\n'.join(f'{field}: {text}' for field, text in settings.items()), flush=True)
        parser.exit()


# Options that decide nothing in the image, or name files of a run: not in the command line recorded in an image.
NOT_RECORDED = {'overwrite', 'print_iterations', 'progress_write', 'progress_plot', 'checkpoint_output',
                'checkpoint_iterations', 'settings_from', 'cluster_timeouts'}
VIDEO_ONLY = {'start', 'end', 'frames', 'temporal_weight', 'long_term', 'passes', 'flow'}


def command_line(args):
    """The command that makes a run's image again: every option that decides it, defaults included (a later
    version may change a default), the seed included."""
    words = ['python', PROG]
    for dest, action in build_parser().options.items():
        value = getattr(args, dest)
        if dest in NOT_RECORDED or value is None or value is False or (dest in VIDEO_ONLY and value == action.default):
            continue
        if value is True:
            words.append(action.option_strings[0])
        elif action.type in (_positive_ints, _scales):
            words += [action.option_strings[0], ','.join(map(str, value))]
        else:
            words += [action.option_strings[0], *map(str, value if isinstance(value, list) else [value])]
    return shlex.join(words)


def describe(args):
    """What the command line records inside each image besides the run's own settings (job.recorded_settings)."""
    return {'Software': f'neural-style {VERSION}', 'Command': command_line(args)}


def with_recorded_settings(argv):
    """The arguments with --settings-from IMAGE replaced by the command recorded inside that image, put first so
    that the options given override it; UserError (or ImageError) for an image that holds none."""
    settings_from = argparse.ArgumentParser(add_help=False)
    settings_from.add_argument('--settings-from')
    found, rest = settings_from.parse_known_args(argv)
    if found.settings_from is None:
        return argv
    settings = images.read_settings(found.settings_from)
    command = settings.get('Command')
    if command is None:
        raise job.UserError(f'--settings-from {found.settings_from}: the image holds no command of {PROG}')
    words = shlex.split(command)
    words = words[words.index(PROG) + 1:]
    if _recorded_version(settings) < RAW_STYLE_WEIGHT_UNTIL and '--raw-style-weight' not in words:
        words.append('--raw-style-weight')
    return words + rest


def _recorded_version(settings):
    """The version of this program that wrote the settings (`neural-style 1.0.0`), as a tuple of integers."""
    name, _, number = settings.get('Software', '').partition(' ')
    try:
        return tuple(int(part) for part in number.split('.'))
    except ValueError:
        raise job.UserError(f'the settings name an unknown program version: {settings.get("Software")!r}') from None


def build_parser(raise_errors=False):
    p = Parser(raise_errors, prog=PROG, description=__doc__.split('\n\n')[0],
               formatter_class=HelpFormatter)
    p.add_argument('--version', action=_Versions, help='print the versions of this program, TensorFlow and numpy, '
                   'and the network file used (with --network, that one), for a bug report; then exit')
    p.add_argument('--show-settings', action=_ShowSettings, metavar='IMAGE', default=argparse.SUPPRESS,
                   help='print the settings recorded inside an image this program wrote (the command that makes it '
                   'again, the version, the network, the seed, the iterations run and the losses); then exit')

    def add(group, *flags, **options):
        action = group.add_argument(*flags, **options)
        p.options[action.dest] = action

    io = p.add_argument_group('images')
    add(io, '--content', required=True, nargs='+', help='the photograph, or a video (see the video options); '
            'the output has its aspect ratio. Several photographs, or directories of them, make a batch: one '
            'process, one network load, a run per pair (docs/batches.md)')
    add(io, '--styles', required=True, nargs='+', help='one or more style images, blended into one style; a '
            'directory of style images (among --styles) makes a batch instead: one run per style image')
    add(io, '--output', required=True, help='output image; its extension (.jpg, .png, ...) sets the format; '
            'for a video, a video file (.mp4, .mov, .mkv, .avi, .m4v), a .gif or a directory of PNG frames; for a '
            f'batch, a directory ending in / (each pair\'s output named {batch.PATTERN}; blended styles are named '
            'a+b) or a pattern with {content} and {style}, such as out/{content}-{style}.jpg')
    add(io, '--settings-from', metavar='IMAGE', help='run with the settings recorded inside an image this program '
            'wrote (its command line, seed included); the options given on the line override them, e.g. a new '
            '--output')
    add(io, '--overwrite', action='store_true', help='replace the output, progress and checkpoint files '
            'if they exist (by default an existing file stops the run before it starts; in a batch, a pair whose '
            'output exists is skipped, so that the same command again continues the batch)')
    add(io, '--bit-depth', type=int, choices=(8, 16), default=8, help='bits per channel of the output: 16 (a .png '
            'or .tif output) writes the optimized image without rounding it to 8 bits')
    add(io, '--max-size', type=positive_int, default=MAX_SIZE,
            help='longest side of the output in pixels (the content is scaled down to it, never up)')
    add(io, '--width', type=positive_int, help='output width in pixels, overriding --max-size')
    add(io, '--style-scales', type=positive_float, nargs='+',
            help='per style image: its width relative to the output width (default 1.0 each)')
    add(io, '--style-masks', nargs='+', metavar='MASK',
            help='per style image: a greyscale image over the output, white where that style governs '
            '(spatial control with guided Gram matrices, Gatys et al. 2017)')
    add(io, '--preserve-colors', choices=colors.PRESERVE_COLORS,
            help="keep the content's colours (Gatys et al., arXiv 1606.05897): luminance-only transfer, "
            "the style's colours matched to the content's first, or the result's luminance put on the "
            "content's colours after the run")
    add(io, '--max-megapixels', type=positive_float, default=images.MAX_MEGAPIXELS,
            help='refuse input images, and an output, larger than this')
    add(io, '--network', help=f'VGG-19 weights: MatConvNet\'s {vgg.WEIGHTS_FILE}, Keras\'s '
            f'{vgg.KERAS_WEIGHTS_FILE} or the quantized copy {vgg.QUANTIZED_FILE} (default: ${vgg.NETWORK_ENV} if set, else the first found of '
            f'{", ".join(vgg.default_locations())}; with none there, one is fetched into the cache on first use)')
    add(io, '--no-download', action='store_true', help=f'never fetch the weights: with no file found, stop and say '
            f'how to get it (also when ${vgg.NO_DOWNLOAD_ENV} is 1)')

    loss = p.add_argument_group('objective (the paper\'s alpha, beta, layers and w_l)')
    add(loss, '--content-weight', type=_non_negative_float, default=stylize.CONTENT_WEIGHT,
              help='alpha, the weight of L_content')
    reference = 'x'.join(map(str, stylize.REFERENCE_SIZE[::-1]))
    add(loss, '--style-weight', type=_non_negative_float,
              help=f'beta, the weight of L_style, for a {reference} output; another size scales it by its pixels '
              f'over {reference}\'s, so that one beta gives the same balance at every size (default '
              f'{stylize.STYLE_WEIGHT:,.0f}; {stylize.NORMALIZED_STYLE_WEIGHT:,.0f} with --normalize-network)')
    add(loss, '--raw-style-weight', action='store_true',
              help='take --style-weight as the beta of the paper\'s eq. 7 at every size, unscaled (the balance '
              'then moves about 4x for each doubling of the side)')
    add(loss, '--tv-weight', type=_non_negative_float, default=stylize.TV_WEIGHT,
              help='gamma, the weight of a total-variation smoothness term against the fine grain (not in the paper: 0 for the paper\'s objective)')
    add(loss, '--content-layers', type=_layer, nargs='+', default=list(stylize.CONTENT_LAYERS),
              help='layers whose features the content loss matches, each named once')
    add(loss, '--content-layer-weights', type=_non_negative_float, nargs='+',
              help='one weight per content layer (default 1/number of content layers)')
    add(loss, '--style-layers', type=_layer, nargs='+', default=list(stylize.STYLE_LAYERS),
              help='layers whose Gram matrices the style loss matches, each named once')
    add(loss, '--style-layer-weights', type=_non_negative_float, nargs='+',
              help='w_l, one per style layer (default 1/number of style layers, as in the paper)')
    add(loss, '--style-blend-weights', type=_non_negative_float, nargs='+',
              help='one weight per style image, normalized to sum 1 (default equal)')
    add(loss, '--pooling', choices=vgg.POOLING_METHODS, default=stylize.POOLING,
              help='pooling in the network; the paper replaces max by average pooling')
    add(loss, '--padding', choices=vgg.PADDINGS, default=stylize.PADDING,
              help='padding of each convolution\'s input: zeros, as the network was trained and as in the paper, '
              'or the border mirrored (docs/method.md)')
    add(loss, '--normalize-network', action='store_true',
              help='the paper\'s normalized network: each filter\'s weights scaled so that its mean activation over '
              'the six images of examples/ is 1 (computed once per weights file and cached in ~/.cache/neural-style; '
              'docs/method.md, "The layers\' balance")')

    opt = p.add_argument_group('optimization')
    add(opt, '--optimizer', choices=stylize.OPTIMIZERS, default=stylize.OPTIMIZER,
             help='L-BFGS (the paper\'s) or Adam')
    add(opt, '--iterations', type=_positive_ints,
             help=f'optimizer iterations (default {stylize.ITERATIONS}); with --scales, one number for every '
             f'stage or one per stage (e.g. 500,200,100); for a video, the first frame\'s and the later '
             f'frames\' (default {video.FIRST_ITERATIONS},{video.LATER_ITERATIONS}), or per frame and pass '
             f'with --passes (default {video.PASS_ITERATIONS})')
    add(opt, '--scales', type=_scales, metavar='SIZES',
             help='coarse to fine (Gatys et al. 2017): the longest side of each stage in pixels, e.g. '
             '256,512,1024; each stage starts from the last one\'s result upsampled, and the last size '
             'is the output\'s (instead of --max-size)')
    add(opt, '--tolerance', type=_non_negative_float, metavar='REL',
             help=f'stop early once the objective changes by less than this fraction over --tolerance-window '
             f'iterations (Ruder et al.\'s criterion; default {stylize.TOLERANCE:g}, off, for an image and '
             f'{video.FRAME_TOLERANCE:g} for a video\'s frames in a single pass, as theirs)')
    add(opt, '--tolerance-window', type=positive_int, default=stylize.TOLERANCE_WINDOW, metavar='K',
             help='iterations between two comparisons of the objective for --tolerance')
    add(opt, '--lbfgs-history', type=positive_int, default=stylize.LBFGS_HISTORY,
             help='L-BFGS: number of stored corrections')
    add(opt, '--learning-rate', type=positive_float, default=stylize.LEARNING_RATE,
             help='Adam: learning rate, in pixel values')
    add(opt, '--beta1', type=_fraction, default=stylize.BETA1, help='Adam: beta1')
    add(opt, '--beta2', type=_fraction, default=stylize.BETA2, help='Adam: beta2')
    add(opt, '--eps', type=positive_float, default=stylize.EPSILON, help='Adam: epsilon')
    add(opt, '--init', choices=stylize.INITS, default=stylize.INITS[0],
             help='starting image: white noise (the paper\'s), the content, or the (first) style image')
    add(opt, '--initial', help='starting image from a file, overriding --init')
    add(opt, '--initial-noiseblend', type=_fraction, default=0.0,
             help='fraction of white noise blended into a content, style or --initial start')
    add(opt, '--seed', type=int, help='random seed of the white noise: a CPU run repeats exactly')
    add(opt, '--precision', choices=devices.PRECISIONS, default=stylize.PRECISION,
             help='float32 (faithful) or mixed: convolutions in float16 on a GPU, bfloat16 on a CPU, '
             'losses in float32; fast on GPUs, slower on CPUs without native bfloat16; auto: mixed on a CPU '
             'with AMX or AVX512-BF16, float32 elsewhere (docs/performance.md)')
    add(opt, '--device', help='TensorFlow device, e.g. /cpu:0 or /gpu:0, one that TensorFlow sees here '
             '(default: the GPU if TensorFlow sees one, else the CPU)')

    machines = p.add_argument_group('devices and machines (docs/devices.md)')
    add(machines, '--devices', metavar='LIST', help='spread each evaluation\'s tiles over these devices, '
                  'e.g. /gpu:0,/gpu:1, or all (every GPU TensorFlow sees); the image is then tiled so that '
                  'each device has a tile')
    add(machines, '--cluster', metavar='HOST:PORT,...', help='spread the tiles over the devices of these '
                  'workers, each started with `python cluster.py worker --port PORT` (every GPU of a '
                  'worker, else its CPU); the first worker coordinates')
    add(machines, '--cluster-timeouts', type=_cluster_timeouts, metavar='ANSWER,STALL',
                  help=f'with --cluster: seconds a worker has to answer a probe (its device list) before it counts '
                  f'as stopped or lost, and seconds an evaluation may go on before the workers are probed '
                  f'(default {devices.ANSWER_TIMEOUT},{devices.STALL_CHECK}); longer for a slow link')

    memory = p.add_argument_group('memory (exact tiled evaluation: docs/large-outputs.md)')
    add(memory, '--tile-size', type=positive_int, metavar='PX',
                help='evaluate the objective over tiles of this many pixels square (a multiple of 16 for '
                'the default layers), each with a halo: exact, in bounded memory (default: tiled only when '
                'the estimated peak exceeds --max-memory)')
    add(memory, '--max-memory', type=positive_float, metavar='GB',
                help=f'memory budget in GB for choosing the tiling (default: '
                f'{tiling.MEMORY_SHARE * 100:.0f}%% of the machine\'s RAM)')

    clip = p.add_argument_group('video (Ruder, Dosovitskiy & Brox, "Artistic style transfer for videos", 2016)')
    add(clip, '--start', type=_non_negative_float, metavar='SECONDS', help='take the clip from this time')
    add(clip, '--end', type=positive_float, metavar='SECONDS', help='take the clip up to this time')
    add(clip, '--frames', type=positive_int, metavar='N', help='take at most N frames')
    add(clip, '--temporal-weight', type=_non_negative_float, metavar='GAMMA',
              help='gamma_t, the weight of the temporal loss (default: the authors\' balance against the '
              'style loss, 10 beta w_l N_l^2 / 4 at the style layer where that is largest, 5 beta w_l N_l^2 / 4 '
              'with --passes; see docs/video.md); 0 for frame-by-frame stylization from '
              'the warped previous frame')
    add(clip, '--long-term', type=positive_int, default=video.LONG_TERM, metavar='J',
              help='tie each frame to the previous J stylized frames (long-term consistency); 1: the '
              'previous frame only')
    add(clip, '--passes', type=positive_int, default=1, metavar='N',
              help=f'the multi-pass algorithm with N passes over the clip, alternately forward and backward '
              f'(the authors use {video.MULTIPASS_PASSES}); 1: the single-pass algorithm')
    add(clip, '--flow', choices=flow.FLOW_METHODS, default=flow.FLOW_METHOD,
              help='optical flow: OpenCV\'s DIS or Farneback')

    out = p.add_argument_group('progress')
    add(out, '--print-iterations', type=_non_negative_int, default=PRINT_ITERATIONS,
             help='print the losses every this many iterations (0: only at the end)')
    add(out, '--progress-write', metavar='PATH',
             help='write a CSV of the losses at every iteration (row 0: the initial image)')
    add(out, '--progress-plot', metavar='PATH',
             help='write a PNG plot of the losses against the iteration (log scale; needs matplotlib, '
             'from requirements-app.txt), at each checkpoint and at the end')
    add(out, '--checkpoint-output', help='checkpoint file name: every %%s in it becomes the iteration '
             'number, any other %% stays as it is, e.g. checkpoint_%%s.jpg')
    add(out, '--checkpoint-iterations', type=positive_int,
             help='write the best image so far every this many iterations')
    add(out, '--verbose', action='store_true', help='let TensorFlow print its start-up and log lines (by default '
             'held back; TF_CPP_MIN_LOG_LEVEL, when set, says which to let through)')
    return p



# Running and printing

def run(args, net=None):
    """The command line's work, printing its progress: one image, a clip, or a batch of pairs; `net`, the loaded
    network, lets a caller reuse it."""
    pairs = batch.pairs(args)
    if batch.is_batch(args):
        batch.run(pairs, net, _run_image, describe, PROG)
    elif video.is_video(pairs[0].content):
        _run_clip(video_run.VideoRun(pairs[0].options, net, describe))
    else:
        _run_image(job.Run(pairs[0].options, net, describe))


def _run_image(image_run, label='', batch_remaining=None):
    """Runs an image, printing its progress; in a batch, each line starts with `label` (the pair) and ends with
    the batch's remaining time, batch_remaining(the iterations of this run done)."""
    args = image_run.args
    print(image_run.plan(), flush=True)
    started, progress, last = time.perf_counter(), None, {}
    steps = image_run.steps()

    def line(stage, progress):
        text = label + image_run.line(stage, progress)
        remaining = batch_remaining and batch_remaining(sum(image_run.iterations[:stage]) + progress.iteration)
        return text + (f'  batch remaining {console.format_duration(remaining)}' if remaining is not None else '')

    try:
        for stage, progress in steps:
            last[stage] = progress
            if args.print_iterations and progress.iteration % args.print_iterations == 0:
                print(line(stage, progress), flush=True)
    except KeyboardInterrupt as interrupt:  # came while printing: stopped as if it came during the optimization
        steps.throw(interrupt)
    try:
        for stage, stage_progress in last.items():
            if stage_progress.converged:
                settings = image_run.stages[stage][1]
                print(f'{image_run.stage_prefix(stage)}stopped at iteration {stage_progress.iteration}: the '
                      f'objective changed by less than {settings.tolerance:g} over the last '
                      f'{settings.tolerance_window} iterations (--tolerance)')
            elif stage_progress.iteration < image_run.iterations[stage]:
                print(f'{image_run.stage_prefix(stage)}L-BFGS stopped after {stage_progress.iteration} iterations: '
                      f'no further decrease was possible')
        if not args.print_iterations or progress.iteration % args.print_iterations:
            print(line(len(image_run.sizes) - 1, progress))
        print(f'{label}wrote {args.output} (total loss {progress.best_total:.6g}) '
              f'in {console.format_duration(time.perf_counter() - started)}')
    except KeyboardInterrupt as interrupt:
        raise job.Stopped(f'interrupted ({console.signal_name(interrupt)}) after the run; wrote the finished image to '
                          f'{args.output}', console.signal_exit_code(interrupt)) from None


def _run_clip(clip_run):
    args = clip_run.args
    print(clip_run.plan(), flush=True)
    started, steps, resumed = time.perf_counter(), clip_run.steps(), 0
    try:
        for step in steps:
            if isinstance(step, video.FrameDone):
                if step.resumed:
                    resumed += 1
                else:
                    print(f'{video_run.frame_label(step)}done in {console.format_duration(step.seconds)} '
                          f'(optical flow {step.flow_seconds:.2f} s)', flush=True)
                continue
            if resumed:
                print(f'resuming: {resumed} finished frame(s) found in {clip_run.directory}', flush=True)
                resumed = 0
            iteration, iterations = step.progress.iteration, step.iterations
            if args.print_iterations and iteration % args.print_iterations == 0 or iteration == iterations or \
                    step.progress.converged:
                print(video_run.frame_line(step), flush=True)
    except KeyboardInterrupt as interrupt:  # came while printing: stopped as if it came during the optimization
        steps.throw(interrupt)
    if resumed:
        print(f'all {len(clip_run.finished)} frames were already finished in {clip_run.directory}')
    print(f'wrote {args.output} ({len(clip_run.finished)} frames at {clip_run.fps:g} fps) in '
          f'{console.format_duration(time.perf_counter() - started)}')


def main(argv=None):
    parser = build_parser()
    try:
        argv = with_recorded_settings(sys.argv[1:] if argv is None else list(argv))
    except job.USER_ERRORS as error:
        print(f'{parser.prog}: error: {error}', file=sys.stderr)
        return 1
    args = parser.parse_args(argv)  # TensorFlow is imported by the run, quietly, once its checks are done
    previous = signal.signal(signal.SIGTERM, console.interrupt_on_sigterm)  # the best image so far is written
    host_memory.limit_malloc_arenas()
    try:
        run(args)
    except job.USER_ERRORS as error:
        print(f'{parser.prog}: error: {error}', file=sys.stderr)
        return 1
    except job.Stopped as stop:
        print(f'\n{parser.prog}: {stop}', file=sys.stderr)
        return stop.code
    except KeyboardInterrupt as interrupt:
        print(f'\n{parser.prog}: interrupted ({console.signal_name(interrupt)}) before the optimization started; '
              f'nothing written', file=sys.stderr)
        return console.signal_exit_code(interrupt)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == '__main__':
    sys.exit(main())
