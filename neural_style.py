#!/usr/bin/env python3
"""Paint a photograph in the style of an artwork (Gatys, Ecker & Bethge, arXiv 1508.06576; CVPR 2016).

This file is the command line: its parser (of the option table, options.py), the run's configuration built from
what it parsed (run_config.py), what it prints, and its exit codes. A run of that configuration (checks, images,
the network, the optimization, the files written) is job.py's (a clip's, video_run.py's); the method is stylize.py's, its equations losses.py's, the network vgg.py's.
"""
import argparse
import shlex
import signal
import sys
import time

import vgg
from styletransfer.compute import host_memory
from styletransfer.media import images, video
from styletransfer.run import batch, console, job, options, quiet_tensorflow, run_config, video_run

PROG = 'neural_style.py'
VERSION = '1.1.0'  # this program's; --version prints it with those of its main packages and network file
# Before 1.1.0, --style-weight was eq. 7's beta at every size: a command recorded by those versions gets
# --raw-style-weight, so that --settings-from makes its image again.
RAW_STYLE_WEIGHT_UNTIL = (1, 1, 0)


# Options

class Parser(argparse.ArgumentParser):
    """The command line's parser: argparse's, with the actions the option table names (--version,
    --show-settings) and, with raise_errors (for the page), raising job.UserError instead of printing usage and
    exiting."""

    def __init__(self, raise_errors=False, **options):
        super().__init__(**options)
        self.raise_errors = raise_errors
        self.register('action', 'print_versions', _Versions)
        self.register('action', 'show_settings', _ShowSettings)

    def parse_known_args(self, args=None, namespace=None):
        self.argv = list(sys.argv[1:] if args is None else args)  # for --version, which acts before the rest
        return super().parse_known_args(args, namespace)

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


def command_line(config):
    """The command that makes a run's image again (config: its run_config.RunConfig): every option that decides
    it, defaults included (a later version may change a default), the seed included."""
    words = ['python', PROG]
    for option in options.table():
        if not option.recorded:
            continue
        value = getattr(config, option.dest)
        # An option for videos only is recorded when given, so that an image's command holds none.
        if value is None or value is False or (options.IMAGE not in option.applies
                                               and value == options.frozen(option.default)):
            continue
        words += option.words(value)
    return shlex.join(words)


def describe(config):
    """What the command line records inside each image besides the run's own settings (job.recorded_settings)."""
    return {'Software': f'neural-style {VERSION}', 'Command': command_line(config)}


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
    """The parser of the option table (options.py), its groups in the table's order."""
    parser = Parser(raise_errors, prog=PROG, description=__doc__.split('\n\n')[0], formatter_class=HelpFormatter)
    groups = {None: parser}
    for option in options.table():
        if option.group not in groups:
            groups[option.group] = parser.add_argument_group(option.group)
        option.add_to(groups[option.group])
    return parser


# Running and printing

def run(config, net=None):
    """The command line's work on a run_config.RunConfig, printing its progress: one image, a clip, or a batch of
    pairs; `net`, the loaded network, lets a caller reuse it."""
    if config.kind == options.BATCH:
        batch.run(batch.pairs(config), net, _run_image, describe, PROG)
    elif config.kind == options.VIDEO:
        job.check_video_options(config)
        _run_clip(video_run.load(config, net, describe))
    else:
        job.check_options(config)
        _run_image(job.load(config, net, describe))


def _run_image(image_run, label='', batch_remaining=None):
    """Runs an image, printing its progress; in a batch, each line starts with `label` (the pair) and ends with
    the batch's remaining time, batch_remaining(the iterations of this run done)."""
    config = image_run.config
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
            if config.print_iterations and progress.iteration % config.print_iterations == 0:
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
        if not config.print_iterations or progress.iteration % config.print_iterations:
            print(line(len(image_run.sizes) - 1, progress))
        print(f'{label}wrote {config.output} (total loss {progress.best_total:.6g}) '
              f'in {console.format_duration(time.perf_counter() - started)}')
    except KeyboardInterrupt as interrupt:
        raise job.Stopped(f'interrupted ({console.signal_name(interrupt)}) after the run; wrote the finished image to '
                          f'{config.output}', console.signal_exit_code(interrupt)) from None


def _run_clip(clip_run):
    config = clip_run.config
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
            if config.print_iterations and iteration % config.print_iterations == 0 or iteration == iterations or \
                    step.progress.converged:
                print(video_run.frame_line(step), flush=True)
    except KeyboardInterrupt as interrupt:  # came while printing: stopped as if it came during the optimization
        steps.throw(interrupt)
    if resumed:
        print(f'all {len(clip_run.finished)} frames were already finished in {clip_run.directory}')
    print(f'wrote {config.output} ({len(clip_run.finished)} frames at {clip_run.fps:g} fps) in '
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
        run(run_config.from_options(args))
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
