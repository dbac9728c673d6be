#!/usr/bin/env python3
"""A local web page (Gradio) that runs neural_style.py's runs and shows the image as it forms.

The page builds neural_style.py's arguments from its fields, shows them as the equivalent command, parses them
with the command line's parser, builds their run_config.RunConfig and runs it as job.Run: the same checks, one-sentence errors, optimization and
output. One run at a time; others wait in Gradio's queue.
"""
import argparse
import ipaddress
import math
import os
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import time
from typing import NamedTuple

import neural_style
import stylize
import vgg
from styletransfer.media import images
from styletransfer.run import console, job, options, quiet_tensorflow, run_config

TITLE = 'neural-style'
HOST = '127.0.0.1'  # this machine only; another host must be asked for, and is announced
PORT = 7860  # Gradio's usual port
REFRESH_SECONDS = 1.0  # the image and the plot are redrawn at most this often (and at the first and last step),
DRAWING_SHARE = 0.1  # and so that drawing them (Gradio's encoding included) takes at most this share of the run
TEXT_SECONDS = 1.0  # the progress line, cheap, is refreshed at least this often between them (at each step)
UNCHANGED = object()  # an Update's image or plot left as the page shows it (Gradio's skip)
OUTPUT_NAME = 'neural-style.png'  # each run's output, in a directory of its own
STYLE_WEIGHT_EXPONENTS = (0.0, 6.0, 0.25)  # the log slider of beta: 10^0 .. 10^6 in quarter decades
SIZE_RANGE = (16, 2048, 16)  # --max-size on the page: from test-sized to what a GPU can hold


class Update(NamedTuple):
    """What a step of the page's handler shows, in the order of its outputs."""
    image: object  # the best image so far: 8-bit RGB array, or the output file's path at the end
    plot: object  # the loss plot, a matplotlib Figure
    status: str  # the progress line, or an error in one sentence
    command: str  # the equivalent neural_style.py command
    download: object  # the output file's path once written


def _option_text(value):
    return f'{value:g}' if isinstance(value, float) else str(value)


def next_refresh(drawing, resumed, refresh_seconds, drawing_share):
    """When the page may refresh next, after one drawn from `drawing` until the handler `resumed` (Gradio had
    then encoded and sent it): refresh_seconds later, or later still so that drawing takes drawing_share of
    the time."""
    return resumed + max(refresh_seconds, (resumed - drawing) * (1 / drawing_share - 1))


class Painter:
    """The page's runs: each one job.Run of the page's fields, writing into a directory of its own under
    `workdir`; the network is loaded once and kept for the next run."""

    # The page's fields after the images, in the order of the handler's arguments: the options the table places
    # on the page, in its order. The style weight comes as a power of ten (the log slider); 'off' is no
    # --preserve-colors.
    FIELDS = tuple(option.dest for option in options.page_fields())

    def __init__(self, workdir, network=None, refresh_seconds=REFRESH_SECONDS, drawing_share=DRAWING_SHARE):
        self.workdir, self.network = workdir, network
        self.refresh_seconds, self.drawing_share = refresh_seconds, drawing_share
        self.parser = neural_style.build_parser(raise_errors=True)  # its message is shown on the page
        self.options = {option.dest: option for option in options.page_fields()}
        self.net, self.net_path = None, None
        self.stops = {}  # session -> threading.Event that its Stop button sets
        self.directories = {}  # session -> its runs' directories, removed when its tab closes
        self.closed = set()  # sessions whose tab closed

    def option(self, dest):
        """The page's field's option (options.Option): its flag, default, choices and help are the field's."""
        return self.options[dest]

    def arguments(self, content, styles, output, fields):
        """neural_style.py's arguments for the page's fields: each option whose value is not its default."""
        argv = ['--content', content, '--styles', *styles, '--output', output]
        if self.network:
            argv += ['--network', self.network]
        for dest, value in zip(self.FIELDS, fields):
            option = self.option(dest)
            default = option.default
            if dest == 'style_weight':  # the page's network is the published one: its beta is the default
                value, default = 10.0 ** value, stylize.STYLE_WEIGHT
            if value in (None, '', 'off'):
                continue
            if isinstance(value, float) and value.is_integer() and option.whole_number:
                value = int(value)
            if _option_text(value) != _option_text(default):
                argv += [option.flag, _option_text(value)]
        return argv

    def queued(self, request=None):
        """The Start button, at once (before the run waits in the queue): from now on Stop stops this session's
        run, queued or running."""
        self.stops[getattr(request, 'session_hash', '')] = threading.Event()

    def paint(self, content, styles, *fields, request=None):
        """The Start button, once the queue lets the run start: yields an Update for the first step, then at most
        every refresh_seconds and drawing_share, and at the end (or at Stop), when the image shown is the output
        file as written, offered for download. A run stopped while it was queued does not start."""
        session = getattr(request, 'session_hash', '')
        stop = self.stops.setdefault(session, threading.Event())
        try:
            if stop.is_set():
                yield Update(None, None, 'stopped while waiting in the queue; nothing run, nothing written', '', None)
                return
            directory = tempfile.mkdtemp(prefix='run-', dir=self.workdir)
            self.directories.setdefault(session, []).append(directory)
            yield from self._paint(content, styles, fields, stop, directory)
        finally:
            if self.stops.get(session) is stop:
                del self.stops[session]
            if session in self.closed:
                self.close(request)

    def close(self, request=None):
        """The tab closed: its run stops at its next step, and its runs' files go (a run under way's when it
        has stopped)."""
        session = getattr(request, 'session_hash', '')
        self.closed.add(session)
        self.stop(request)
        if session not in self.stops:
            for directory in self.directories.pop(session, []):
                shutil.rmtree(directory, ignore_errors=True)

    def _paint(self, content, styles, fields, stop, directory):
        if not content or not styles:
            yield Update(None, None, 'Give a content image and at least one style image.', '', None)
            return
        output = os.path.join(directory, OUTPUT_NAME)
        argv = self.arguments(content, styles, output, fields)
        shown = [os.path.basename(a) if a in [content, output, *styles] else a for a in argv]
        command = shlex.join(['python', 'neural_style.py', *shown])
        yield Update(None, None, 'starting: reading the images and the network', command, None)
        try:
            # An image run whatever the file: the page shows one image.
            config = run_config.from_options(self.parser.parse_args(argv), kind=options.IMAGE)
            job.check_options(config)
            run = job.load(config, self._network(config), neural_style.describe)  # settings in the image
        except job.USER_ERRORS as error:
            message = str(error)
            for path in (content, *styles):  # Gradio's copy named as the user gave it
                message = message.replace(path, os.path.basename(path))
            yield Update(None, None, f'neural_style.py: error: {message}', command, None)
            return
        yield Update(None, None, run.plan(), command, None)
        steps, progress, next_at, text_at = run.steps(), None, 0.0, 0.0
        try:
            for stage, progress in steps:
                if stop.is_set():
                    break
                drawing = time.perf_counter()
                if drawing >= next_at:
                    yield Update(images.to_uint8(run.as_written(progress.best_image)), run.plot(),
                                 run.line(stage, progress), command, None)
                    next_at = next_refresh(drawing, time.perf_counter(), self.refresh_seconds, self.drawing_share)
                    text_at = time.perf_counter() + TEXT_SECONDS
                elif drawing >= text_at:  # the image and plot held back: the line alone, so the page is alive
                    yield Update(UNCHANGED, UNCHANGED, run.line(stage, progress), command, None)
                    text_at = time.perf_counter() + TEXT_SECONDS
        except job.Stopped as stopped:  # a loss that is not finite: the best image so far is written
            written = output if os.path.exists(output) else None
            yield Update(written, run.plot(), f'neural_style.py: {stopped}', command, written)
            return
        finally:
            steps.close()  # at Stop, writes the best image so far
        if stop.is_set():
            status = (f'stopped at iteration {progress.iteration}: the best image so far is below'
                      if progress else 'stopped before the first iteration; nothing written')
        else:
            status = f'done: {run.line(stage, progress)}'
        written = output if os.path.exists(output) else None
        yield Update(written, run.plot(), status, command, written)

    def stop(self, request=None):
        """The Stop button: the run of this session stops at its next step, keeping its best image, or does not
        start if it is still queued."""
        stop = self.stops.get(getattr(request, 'session_hash', ''))
        if stop is not None:
            stop.set()

    def _network(self, config):
        """The network of the run's configuration, loaded once for all runs that use the same file (fetched on
        first use as the command line fetches it)."""
        path = vgg.find_or_fetch_weights(config.network, download=not config.no_download)
        if path != self.net_path:
            self.net, self.net_path = vgg.load_net_cached(path, vgg.converted_cache_dir()), path
        return self.net


def build_page(painter):
    """The page: the images and main fields, "more" fields, Start and Stop, the result, plot and command."""
    import gradio as gr

    widgets = {}  # option name -> its field; the handler takes them in the order of Painter.FIELDS

    def field(dest, widget, label, **keywords):
        option = painter.option(dest)  # only the options the table places on the page
        widgets[dest] = widget(label=label, info=option.help.replace('%%', '%'), **keywords)

    with gr.Blocks(title=TITLE, analytics_enabled=False) as page:
        gr.Markdown(f'# {TITLE}\n{neural_style.__doc__.splitlines()[0]}')
        with gr.Row():
            with gr.Column():
                content = gr.Image(label='content image', type='filepath', image_mode=None, sources=['upload'],
                                   elem_id='content', height=240)
                content.preprocess = readable_later(content.preprocess)
                styles = gr.File(label='style images (one or more)', file_count='multiple', file_types=['image'],
                                 elem_id='styles', height=120)
                low, high, step = STYLE_WEIGHT_EXPONENTS
                field('style_weight', gr.Slider, 'style weight beta, as a power of ten (3: 1000)',
                      minimum=low, maximum=high, step=step, value=math.log10(stylize.STYLE_WEIGHT),
                      elem_id='style-weight')
                field('iterations', gr.Number, 'iterations', value=stylize.ITERATIONS, precision=0, minimum=1,
                      elem_id='iterations')
                field('max_size', gr.Slider, 'size (longest side, pixels)', minimum=SIZE_RANGE[0],
                      maximum=SIZE_RANGE[1], step=SIZE_RANGE[2], value=painter.option('max_size').default,
                      elem_id='size')
                field('optimizer', gr.Radio, 'optimizer', choices=list(painter.option('optimizer').choices),
                      value=painter.option('optimizer').default)
                field('init', gr.Radio, 'start from', choices=list(painter.option('init').choices),
                      value=painter.option('init').default)
                field('preserve_colors', gr.Radio, 'preserve colours',
                      choices=['off', *painter.option('preserve_colors').choices], value='off')
                # A text field: Gradio's number field shows an empty value as 0, and 0 is a seed.
                field('seed', gr.Textbox, 'seed (empty: a new white noise every run)', value='', max_lines=1,
                      elem_id='seed')
                with gr.Accordion('more', open=False):
                    field('content_weight', gr.Number, 'content weight alpha',
                          value=painter.option('content_weight').default)
                    field('tv_weight', gr.Number, 'total-variation weight', value=painter.option('tv_weight').default)
                    field('pooling', gr.Radio, 'pooling', choices=list(painter.option('pooling').choices),
                          value=painter.option('pooling').default)
                    field('scales', gr.Textbox, 'coarse to fine: sizes, e.g. 256,512', value='')
                    field('learning_rate', gr.Number, 'Adam learning rate',
                          value=painter.option('learning_rate').default)
                    field('precision', gr.Radio, 'precision', choices=list(painter.option('precision').choices),
                          value=painter.option('precision').default)
            with gr.Column():
                with gr.Row():
                    start = gr.Button('Start', variant='primary', elem_id='start')
                    stop = gr.Button('Stop', variant='stop', elem_id='stop')
                image = gr.Image(label='best image so far', format='png', interactive=False, elem_id='result',
                                 buttons=['download'], height=360)
                status = gr.Textbox(label='progress', lines=2, interactive=False, elem_id='status')
                plot = gr.Plot(label='losses', show_label=False, format='png', elem_id='plot')  # the label hid a tick
                download = gr.File(label='download', interactive=False, elem_id='download')
                command = gr.Code(label='the same run on the command line', language='shell', interactive=False,
                                  wrap_lines=True, show_line_numbers=False, elem_id='command')
        gr.Markdown(' · '.join(neural_style.versions(painter.network)), elem_id='versions')  # for a bug report

        fields = [widgets[dest] for dest in painter.FIELDS]

        def paint(request: gr.Request, content, styles, *fields):  # Gradio passes the request first
            for update in painter.paint(content, styles, *fields, request=request):
                yield tuple(gr.skip() if value is UNCHANGED else value for value in update)

        def stop_run(request: gr.Request):
            painter.stop(request)

        def queued(request: gr.Request):
            painter.queued(request)

        start.click(queued, None, None, queue=False, api_name=False).then(
            paint, [content, styles, *fields], [image, plot, status, command, download], api_name='paint',
            concurrency_limit=1, concurrency_id='run')
        stop.click(stop_run, None, None, api_name='stop', queue=False)

        def tab_closed(request: gr.Request):
            painter.close(request)

        page.unload(tab_closed)
    return page.queue(default_concurrency_limit=1)


def readable_later(preprocess):
    """An image field's preprocess that passes on the uploaded file's path when Pillow cannot open it (Gradio
    opens it first, and its error is a bare "Error" badge and a traceback in the log): the run then reads it and
    says what is wrong in one sentence."""
    from PIL import UnidentifiedImageError

    def preprocess_or_path(payload):
        try:
            return preprocess(payload)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            return payload.path

    return preprocess_or_path


def _reachable_from_network(host):
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host != 'localhost'


def build_parser():
    parser = argparse.ArgumentParser(prog='app.py', description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--host', default=HOST, help='address to serve on; 0.0.0.0 makes the page reachable '
                        'from the network (anyone reaching it can run jobs on this machine)')
    parser.add_argument('--port', type=options.positive_int, default=PORT, help='port to serve on')
    parser.add_argument('--network', default=argparse.SUPPRESS, help='VGG-19 weights, as neural_style.py '
                        '--network (default: found as neural_style.py finds them, fetched into the cache on first '
                        'use)')  # SUPPRESS: no "(default: None)"
    # Flags: SUPPRESS, so that --help shows no "(default: False)"; absent unless given.
    parser.add_argument('--no-download', action='store_true', default=argparse.SUPPRESS,
                        help='never fetch the weights, as neural_style.py --no-download')
    parser.add_argument('--verbose', action='store_true', default=argparse.SUPPRESS,
                        help='let TensorFlow print its start-up and log lines')
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ['GRADIO_ANALYTICS_ENABLED'] = 'False'  # nothing leaves the machine
    if getattr(args, 'no_download', False):  # the page's runs parse neural_style.py's options, which do not carry this one
        os.environ[vgg.NO_DOWNLOAD_ENV] = '1'
    try:
        quiet_tensorflow.import_tensorflow(getattr(args, 'verbose', False))
    except ImportError as error:
        print(f'{parser.prog}: error: {quiet_tensorflow.import_failure(error)}', file=sys.stderr)
        return 1
    os.umask(0o077)  # what the page writes (runs, uploads, Gradio's copies) is for this user only
    # The runs' directories and Gradio's files (uploads, the copies it serves), all removed when the page stops.
    workdir = tempfile.mkdtemp(prefix='neural-style-page-')
    os.environ['GRADIO_TEMP_DIR'] = os.path.join(workdir, 'gradio')
    try:
        import gradio  # noqa: F401
        import matplotlib  # noqa: F401
    except ImportError as error:
        print(f'{parser.prog}: error: the page needs {error.name}: python -m pip install -r requirements-app.txt',
              file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)
        return 1
    if _reachable_from_network(args.host):
        print(f'{parser.prog}: serving on {args.host}:{args.port}, reachable from the network: anyone who can '
              f'reach this machine can run jobs on it', flush=True)
    signal.signal(signal.SIGTERM, console.interrupt_on_sigterm)  # Gradio closes, the runs' directory is removed
    try:
        page = build_page(Painter(workdir, getattr(args, 'network', None)))
        # quiet: Gradio's own lines are about its launch() and share=True, not this program's options
        page.launch(server_name=args.host, server_port=args.port, share=False, inbrowser=False, quiet=True,
                    prevent_thread_lock=True, allowed_paths=[workdir], footer_links=[], ssr_mode=False,
                    mcp_server=False)
        print(f'{parser.prog}: serving on http://{args.host}:{args.port}/ until Ctrl-C, which removes the files the '
              f'page wrote and received', flush=True)
        page.block_thread()
    except OSError as error:  # Gradio's message for a port in use is about GRADIO_SERVER_PORT and launch()
        reason = 'the port is in use' if 'empty port' in str(error) else str(error).split('. ')[0]
        print(f'{parser.prog}: error: cannot serve on {args.host}:{args.port}: {reason}; choose another with --port',
              file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
