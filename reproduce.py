#!/usr/bin/env python3
"""Render a figure of Gatys, Ecker & Bethge (arXiv 1508.06576; CVPR 2016) as a labelled contact sheet.

Every cell is one run of neural_style.py with the figure's settings. Its image is written beside the sheet,
named by a hash of everything that determines it (the options and the contents of the image and weights
files), with a .json beside it holding the neural_style.py command that makes it: running the same command
again reuses the cells already rendered, so an interrupted sheet resumes where it stopped. A cell counts as
rendered once its .json is written, after its run finished: an interrupted cell is computed again.
"""
import argparse
import csv
import hashlib
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

import neural_style
import stylize
import vgg
from styletransfer.compute import cluster, devices, host_memory
from styletransfer.media import files, images
from styletransfer.run import console, job, options, progress_plot, quiet_tensorflow, run_config

# The rows of CVPR 2016 Fig. 4 (arXiv Fig. 3) and arXiv Fig. 1: style matched on conv1_1, then conv1_1 and
# conv2_1, ..., up to conv5_1 (the rectified outputs, as everywhere in neural_style.py).
LAYER_SUBSETS = tuple(stylize.STYLE_LAYERS[:count] for count in range(1, len(stylize.STYLE_LAYERS) + 1))
RATIOS = (1e-5, 1e-4, 1e-3, 1e-2)  # alpha/beta, the columns of CVPR 2016 Fig. 4
CONTENT_LAYERS = ('relu2_2', 'relu4_2')  # CVPR 2016 Fig. 5: content matched on conv2_2 and on conv4_2
NOISE_SEEDS = (1, 2, 3, 4)  # CVPR 2016 Fig. 6 C: four different white-noise starts
SEED = 0  # the white noise of every other cell: fixed, so that a sheet repeats
PRECISION = 'float32'  # the paper's arithmetic, whatever neural_style.py's default
CONVOLUTIONS = 'direct'  # every convolution summed directly: the paper's arithmetic, not Winograd's
CELL_FORMAT = '.png'  # lossless, whatever the sheet's format
FIGURES = ('layers-vs-ratio', 'content-layer', 'init', 'styles', 'style-reconstruction')


@dataclass
class Cell:
    """One image of a sheet: a run of neural_style.py with `options` and `style`, or an input shown as is."""
    options: list = field(default_factory=list)
    style: str = None
    shown: str = None  # an input image's path, shown instead of a result


@dataclass
class Figure:
    title: str
    rows: list
    columns: list
    cells: dict  # (row index, column index) -> Cell


def _layers_label(layers):
    return layers[0] if len(layers) == 1 else f'{layers[0]} ... {layers[-1]}'


def _power_of_ten(number):
    return f'1e{round(math.log10(number))}'


def _style_weight(ratio):
    """beta for alpha = 1 and a ratio alpha/beta, written without float noise (1/1e-5 is 99999.99999999999)."""
    return f'{1 / ratio:.6g}'


def figure(name, styles, seed, style_weight=None, raw_style_weight=False):
    """The rows, columns and cells of figure `name` for the given style image paths. `style_weight`, beta,
    goes to every cell but those of layers-vs-ratio, whose columns set it; None leaves neural_style.py's.
    raw_style_weight: every cell takes its beta as eq. 7's at its size (neural_style.py --raw-style-weight)."""
    style = styles[0]
    raw = ['--raw-style-weight'] if raw_style_weight else []
    beta = ([] if style_weight is None else ['--style-weight', repr(style_weight)]) + raw
    if name == 'layers-vs-ratio':
        return Figure('Style layers (rows) against alpha/beta (columns): CVPR 2016 Fig. 4, arXiv Fig. 3',
                      [_layers_label(layers) for layers in LAYER_SUBSETS],
                      [f'alpha/beta {_power_of_ten(ratio)}' for ratio in RATIOS],
                      {(i, j): Cell(['--style-layers', *layers, '--style-weight', _style_weight(ratio),
                                     '--seed', str(seed)] + raw, style)
                       for i, layers in enumerate(LAYER_SUBSETS) for j, ratio in enumerate(RATIOS)})
    if name == 'content-layer':
        return Figure('Content matched on conv2_2 and on conv4_2: CVPR 2016 Fig. 5', [''],
                      [f'content {layer}' for layer in CONTENT_LAYERS],
                      {(0, j): Cell(['--content-layers', layer, '--seed', str(seed)] + beta, style)
                       for j, layer in enumerate(CONTENT_LAYERS)})
    if name == 'init':
        starts = [('from the content', ['--init', 'content']), ('from the style', ['--init', 'style'])]
        starts += [(f'white noise, seed {s}', ['--init', 'noise', '--seed', str(s)]) for s in NOISE_SEEDS]
        return Figure('Initialization of the optimization: CVPR 2016 Fig. 6', [''], [label for label, _ in starts],
                      {(0, j): Cell(options + beta, style) for j, (_, options) in enumerate(starts)})
    if name == 'styles':
        cells = {(0, j): Cell(shown=path) for j, path in enumerate(styles)}
        cells.update({(1, j): Cell(['--seed', str(seed)] + beta, path) for j, path in enumerate(styles)})
        return Figure('One photograph in several styles: arXiv Fig. 2', ['style image', 'result'],
                      [os.path.basename(path) for path in styles], cells)
    if name == 'style-reconstruction':
        return Figure('Style reconstructions (content weight 0) from growing sets of layers: arXiv Fig. 1',
                      [''], [_layers_label(layers) for layers in LAYER_SUBSETS],
                      {(0, j): Cell(['--content-weight', '0', '--style-layers', *layers, '--seed', str(seed)] + beta,
                                    style)
                       for j, layers in enumerate(LAYER_SUBSETS)})
    raise ValueError(f'unknown figure {name!r}')


# The papers' objective and arithmetic, whatever neural_style.py's defaults: no total-variation term, the
# convolutions' zero padding
PAPER_OBJECTIVE = ['--tv-weight', '0', '--padding', 'zero']


def cell_settings(args, cell):
    """The neural_style.py options that decide a cell's image, besides its files."""
    return (['--max-size', str(args.max_size), '--iterations', str(args.iterations)] + PAPER_OBJECTIVE +
            ['--precision', args.precision, '--convolutions', args.convolutions] + cell.options)


def cell_command(args, cell, output, device=True):
    """The neural_style.py arguments of a cell (with --device when given, and `device`)."""
    return (['--content', args.content, '--styles', cell.style, '--network', args.network] +
            cell_settings(args, cell) + (['--device', args.device] if args.device and device else []) +
            ['--print-iterations', '0', '--progress-write', losses_path(output), '--overwrite', '--output', output])


def losses_path(cell):
    """The progress CSV beside a cell's image (--overwrite in its command: one left by a cell that did not
    finish is replaced)."""
    return os.path.splitext(cell)[0] + '.csv'


def cell_path(args, cell, row, column, hashes):
    """Where a cell's image goes: beside the sheet, named by the hash of what determines it."""
    settings = [cell_settings(args, cell), hashes[args.content], hashes[cell.style], hashes[args.network]]
    key = hashlib.sha256(json.dumps(settings).encode()).hexdigest()[:16]
    stem = os.path.splitext(args.output)[0]
    return f'{stem}-{row + 1}-{column + 1}-{key}{CELL_FORMAT}'


def cell_label(fig, row, column):
    return ', '.join(text for text in (fig.rows[row], fig.columns[column]) if text)


def render_cells(args, fig, net):
    """Renders the cells not rendered before, here one after another, or with --devices or --cluster as
    neural_style.py processes, one per device or worker at a time; returns (row, column) -> image, and -> the
    path of each result."""
    hashes = {path: files.file_digest(path) for path in {args.content, args.network, *args.style}}
    pending, shown, paths = [], {}, {}
    for number, ((row, column), cell) in enumerate(sorted(fig.cells.items()), start=1):
        if cell.shown:
            shown[row, column] = cell.shown
            continue
        cell_job = CellJob(number, cell_label(fig, row, column), cell,
                      cell_path(args, cell, row, column, hashes), {'figure': args.figure, 'row': fig.rows[row],
                                                                   'column': fig.columns[column]})
        paths[row, column] = cell_job.path
        if cell_job.done():
            print(f'[{number}/{len(fig.cells)}] {cell_job.label}: reusing {cell_job.path}', flush=True)
        else:
            pending.append(cell_job)
    places = cell_places(args)
    if places:
        _render_concurrently(args, pending, places, len(fig.cells))
    for cell_job in pending if not places else []:
        print(f'[{cell_job.number}/{len(fig.cells)}] {cell_job.label}' + cell_job.starting_over(), flush=True)
        command = cell_command(args, cell_job.cell, cell_job.path)
        started = time.perf_counter()
        try:
            neural_style.run(run_config.from_options(neural_style.build_parser().parse_args(command)), net)
        except job.Stopped as stop:
            raise cell_job.stopped(str(stop), stop.code) from None
        finally:
            host_memory.release_freed_memory()  # the next cell starts where this one did
        cell_job.finish(command, time.perf_counter() - started)
    cell_images = {key: images.read_image(path) for key, path in {**shown, **paths}.items()}
    return cell_images, paths


@dataclass
class CellJob:
    """A cell to render: its image's path, and the record (.json) written beside it once its run finished."""
    number: int
    label: str
    cell: Cell
    path: str
    record: dict

    @property
    def record_path(self):
        return os.path.splitext(self.path)[0] + '.json'

    def done(self):
        return os.path.exists(self.path) and os.path.exists(self.record_path)

    def starting_over(self):
        """An image without its .json is what an interrupted or failed run left: started over (the cell's
        command has --overwrite)."""
        return f': starting over, the run that wrote {self.path} did not finish' if os.path.exists(self.path) else ''

    def stopped(self, reason, code):
        return job.Stopped(f'cell {self.number} ({self.label}) did not finish: '
                                    f'{reason.removeprefix("error: ")}', code)

    def finish(self, command, seconds):
        record = dict(self.record, command=shlex.join(['python', 'neural_style.py'] + command),
                      seconds=round(seconds, 1))
        # Written last: a cell counts as done only once its .json exists.
        files.write_atomically(self.record_path, lambda f: f.write(json.dumps(record, indent=1).encode()))


def cell_places(args):
    """Where cells run side by side: one neural_style.py option list per device (--devices) or worker
    (--cluster), or None to run them here, one after another."""
    if args.cluster:
        return [['--cluster', address] for address in cluster.parse_addresses(args.cluster)]
    if args.devices:  # as --devices, one each: a logical /cpu:N is a device of the cell's own process
        return [['--devices', device] for device in devices.local_placement(args.devices).devices]
    return None


def _render_concurrently(args, jobs, places, count):
    """Runs the jobs as neural_style.py processes, at most one per place at a time. An interrupt is passed on
    to the runs under way (each writes its best image so far, and its cell is not done); a run that fails
    stops the others the same way."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'neural_style.py')
    waiting, running, free, failure = list(jobs), {}, list(places), None
    try:
        while (waiting and failure is None) or running:
            while waiting and free and failure is None:
                cell_job, place = waiting.pop(0), free.pop(0)
                command = cell_command(args, cell_job.cell, cell_job.path, device=False)
                log = tempfile.TemporaryFile('w+')  # the run's messages, for the sentence if it fails
                process = subprocess.Popen([sys.executable, script] + command + place,
                                           stdout=subprocess.DEVNULL, stderr=log, text=True,
                                           start_new_session=True)  # Ctrl-C reaches it only through us
                running[process] = (cell_job, place, log, command, time.perf_counter())
                print(f'[{cell_job.number}/{count}] {cell_job.label}: on {place[1]}' + cell_job.starting_over(), flush=True)
            for process in [p for p in running if p.poll() is not None]:
                cell_job, place, log, command, started = running.pop(process)
                free.append(place)
                log.seek(0)
                lines = [line for line in log.read().splitlines() if line.startswith('neural_style.py: ')]
                log.close()
                if process.returncode == 0:
                    cell_job.finish(command, time.perf_counter() - started)
                    print(f'[{cell_job.number}/{count}] {cell_job.label}: done on {place[1]}', flush=True)
                elif failure is None:
                    reason = lines[-1].removeprefix('neural_style.py: ') if lines else f'exit status {process.returncode}'
                    failure = cell_job.stopped(reason, process.returncode if process.returncode > 0 else 1)
                    _interrupt(running)
            time.sleep(0.1)
    except KeyboardInterrupt:
        _interrupt(running)
        for process in running:
            process.wait()
        raise
    if failure is not None:
        raise failure


def _interrupt(running):
    for process in running:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)


def write_losses_plot(path, fig, paths):
    """The total loss of each cell against the iteration, one line per cell, from the CSVs beside the cells."""
    runs = {}
    for (row, column), cell in sorted(paths.items()):
        if os.path.exists(losses_path(cell)):  # cells rendered before the CSVs were kept have none
            with open(losses_path(cell), newline='') as f:
                runs[cell_label(fig, row, column)] = [(int(r['iteration']), float(r['total']))
                                                      for r in csv.DictReader(f)]
    figure = progress_plot.totals_figure(runs)
    files.write_atomically(path, lambda f: progress_plot.save(figure, f))


def contact_sheet(fig, cell_images, subtitle):
    """The sheet: a title, the column labels above and the row labels left of a grid of equal boxes, each
    image scaled down to fit its box (inputs) or shown at its size (results)."""
    from PIL import Image, ImageDraw, ImageFont

    results = [image for key, image in cell_images.items() if fig.cells[key].shown is None]
    box_height, box_width = max(i.shape[0] for i in results), max(i.shape[1] for i in results)
    font = ImageFont.load_default(size=int(np.clip(box_height // 9, 11, 22)))
    line, gap = font.size + font.size // 2, max(4, font.size // 2)
    measure = ImageDraw.Draw(Image.new('RGB', (1, 1)))
    label_width = max(measure.textlength(label, font=font) for label in fig.rows)
    left = int(label_width) + 2 * gap if label_width else gap
    top = 2 * line + gap + (line if any(fig.columns) else 0)
    width = max(left + len(fig.columns) * (box_width + gap),
                int(max(measure.textlength(text, font=font) for text in (fig.title, subtitle))) + 2 * gap)
    sheet = Image.new('RGB', (width, top + len(fig.rows) * (box_height + gap)), 'white')
    draw = ImageDraw.Draw(sheet)
    draw.text((gap, gap), fig.title, font=font, fill='black')
    draw.text((gap, gap + line), subtitle, font=font, fill='dimgray')
    for j, label in enumerate(fig.columns):
        label = _fitted(measure, label, font, box_width)
        x = left + j * (box_width + gap) + (box_width - measure.textlength(label, font=font)) / 2
        draw.text((x, top - line), label, font=font, fill='black')
    for i, label in enumerate(fig.rows):
        y = top + i * (box_height + gap) + (box_height - font.size) / 2
        draw.text((left - gap - measure.textlength(label, font=font), y), label, font=font, fill='black')
    for (i, j), image in cell_images.items():
        scale = min(1.0, box_height / image.shape[0], box_width / image.shape[1])
        height, width = max(1, round(image.shape[0] * scale)), max(1, round(image.shape[1] * scale))
        tile = Image.fromarray(images.to_uint8(images.resize(image, height, width)))
        sheet.paste(tile, (left + j * (box_width + gap) + (box_width - width) // 2,
                           top + i * (box_height + gap) + (box_height - height) // 2))
    return np.asarray(sheet, dtype=np.float32)


def _fitted(measure, text, font, width):
    """The text, shortened with '...' to fit `width` pixels."""
    if measure.textlength(text, font=font) <= width:
        return text
    while text and measure.textlength(text + '...', font=font) > width:
        text = text[:-1]
    return text + '...'


def build_parser():
    p = argparse.ArgumentParser(prog='reproduce.py', description=__doc__.split('\n\n')[0],
                                formatter_class=neural_style.HelpFormatter)
    p.add_argument('figure', choices=FIGURES, help='layers-vs-ratio: CVPR 2016 Fig. 4 (arXiv Fig. 3); '
                   'content-layer: CVPR Fig. 5; init: CVPR Fig. 6; styles: arXiv Fig. 2 (one --style per column); '
                   'style-reconstruction: arXiv Fig. 1 (content weight 0)')
    p.add_argument('--content', required=True, help='the photograph')
    p.add_argument('--style', required=True, action='append', help='the style image (repeat it for "styles")')
    p.add_argument('--output', required=True, help='the sheet; its cells are written beside it')
    p.add_argument('--overwrite', action='store_true', help='replace the sheet if it exists (cells are reused)')
    # neural_style.py's options that reach every cell (or this program's runs, as they reach neural_style.py's);
    # where a sheet means one otherwise, its changes say how.
    shared = {option.dest: option for option in options.table()}
    shared['network'].add_to(p)
    shared['no_download'].add_to(p)
    shared['verbose'].add_to(p)
    shared['iterations'].add_to(p, type=options.positive_int, default=stylize.ITERATIONS,
                                help='L-BFGS iterations per cell')
    shared['max_size'].add_to(p, help='longest side of each cell in pixels')
    shared['style_weight'].add_to(p, metavar='BETA', help=f'beta, the weight of L_style, in every cell but those of '
                                  f'layers-vs-ratio (whose columns set it) (default {stylize.STYLE_WEIGHT:g}, as '
                                  f'neural_style.py: for a 512x384 cell, scaled with the cell\'s pixels)')
    shared['raw_style_weight'].add_to(p, help='take each cell\'s beta as the paper\'s eq. 7 at the cell\'s size, '
                                      'unscaled, as neural_style.py --raw-style-weight (the figures made before beta '
                                      'was scaled with the size)')
    shared['precision'].add_to(p, default=PRECISION, help=f'the cells\' arithmetic, as neural_style.py --precision '
                               f'(default {PRECISION}, the paper\'s)')
    shared['convolutions'].add_to(p, default=CONVOLUTIONS, help=f'how the cells\' convolutions are summed, as '
                                  f'neural_style.py --convolutions (default {CONVOLUTIONS}, the paper\'s)')
    shared['seed'].add_to(p, default=SEED, help='the white noise of the cells (init: its own seeds)')
    shared['device'].add_to(p)
    p.add_argument('--devices', metavar='LIST', help='render cells side by side, one per device: e.g. '
                   '/gpu:0,/gpu:1, or all (each GPU TensorFlow sees)')
    p.add_argument('--cluster', metavar='HOST:PORT,...', help='render cells side by side, one per worker started '
                   'with `neural-style-cluster worker` (docs/devices.md)')
    p.add_argument('--progress-plot', metavar='PATH', help='a PNG of each cell\'s total loss against the '
                   'iteration (needs matplotlib), e.g. beside the sheet; --overwrite replaces it too')
    return p


def run(args):
    if args.figure != 'styles' and len(args.style) > 1:
        raise job.UserError(f'{args.figure} uses one style image, not {len(args.style)}; '
                                     f'several are for the "styles" figure')
    if args.figure == 'layers-vs-ratio' and args.style_weight is not None:
        raise job.UserError('layers-vs-ratio sets beta in each column (from alpha/beta); leave out --style-weight')
    if args.device and (args.devices or args.cluster):
        raise job.UserError('--device is where cells run one after another; with --devices or --cluster '
                                     'leave it out')
    if args.devices and args.cluster:
        raise job.UserError('--devices and --cluster each say where cells run: give one of them')
    if args.cluster:  # before any work: every worker answers
        cluster.check_reachable(cluster.parse_addresses(args.cluster))
    images.check_image_path(args.output, args.overwrite)
    if args.progress_plot:
        images.check_plot_path(args.progress_plot, args.overwrite)
    # The cells' commands and hashes name the file found (or fetched).
    args.network = vgg.find_or_fetch_weights(args.network, download=not args.no_download)
    content = images.read_image(args.content)
    for path in args.style:
        images.read_image(path)
    net = vgg.load_net_cached(args.network, vgg.converted_cache_dir())
    fig = figure(args.figure, args.style, args.seed, args.style_weight, args.raw_style_weight)
    started = time.perf_counter()
    cell_images, paths = render_cells(args, fig, net)
    height, width = images.output_size(content.shape, None, args.max_size)
    subtitle = (f'{os.path.basename(args.content)}' +
                ('' if args.figure == 'styles' else f' in the style of {os.path.basename(args.style[0])}') +
                f', {width}x{height}, {args.iterations} L-BFGS iterations' +
                ('' if args.figure == 'layers-vs-ratio' else
                 f', beta {stylize.STYLE_WEIGHT if args.style_weight is None else args.style_weight:g}') +
                (' (eq. 7\'s, unscaled)' if args.raw_style_weight else '') +
                ('' if args.figure == 'init' else f', seed {args.seed}'))
    images.write_image(args.output, contact_sheet(fig, cell_images, subtitle))
    if args.progress_plot:
        write_losses_plot(args.progress_plot, fig, paths)
    print(f'wrote {args.output} in {console.format_duration(time.perf_counter() - started)}')


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    # The cell under way writes its best image so far, not done.
    previous = signal.signal(signal.SIGTERM, console.interrupt_on_sigterm)
    host_memory.return_freed_memory_between_runs()  # its cells run one after another in this process
    try:
        quiet_tensorflow.import_tensorflow(args.verbose)
        run(args)
    except ImportError as error:
        print(f'{parser.prog}: error: {quiet_tensorflow.import_failure(error)}', file=sys.stderr)
        return 1
    except job.USER_ERRORS as error:
        print(f'{parser.prog}: error: {error}', file=sys.stderr)
        return 1
    except job.Stopped as stop:  # a cell's run: interrupted (its code 128 + the signal), or a loss not finite
        if stop.code == 1:
            print(f'{parser.prog}: error: {stop}; the same command computes that cell again', file=sys.stderr)
        else:
            print(f'\n{parser.prog}: interrupted; run the same command again to resume from the cells rendered',
                  file=sys.stderr)
        return stop.code
    except KeyboardInterrupt as interrupt:
        print(f'\n{parser.prog}: interrupted; run the same command again to resume from the cells rendered',
              file=sys.stderr)
        return console.signal_exit_code(interrupt)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == '__main__':
    sys.exit(main())
