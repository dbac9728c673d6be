"""One checked run of the command line's options, without printing: an image in stages (Run), and what a clip's
run (video_run.VideoRun) shares with it. The command line (neural_style.py) prints their steps; the page (app.py)
shows them.

Made, a run has checked the options against each other and the file system, read its images and loaded the
network; steps() optimizes, writes what it makes as it goes, and raises Stopped (after writing the best it has)
for an interrupt, a loss that is not finite or a lost worker.
"""
import dataclasses
import os
import secrets
import shlex

import stylize
import vgg
from styletransfer.compute import cluster, devices
from styletransfer.media import colors, files, images, video
from styletransfer.method import tiling
from styletransfer.network import network_normalization
from styletransfer.run import console, options, progress_plot, quiet_tensorflow


class UserError(Exception):
    """Bad input from the user: reported as one sentence, without a traceback."""


# Everything reported to the user as one sentence.
USER_ERRORS = (UserError, files.PathError, images.ImageError, vgg.WeightsError, cluster.ClusterError, video.ClipError)


class Stopped(Exception):
    """The run stopped early (interrupted, a loss not finite, a lost worker) after writing what it had; `code`:
    the exit status."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


# The options

def run_settings(args, max_memory=None, tolerance=stylize.TOLERANCE):
    """The stylize.Settings of the options (each stage and frame replaces its iterations); `tolerance` unless
    --tolerance gives one."""
    fed = options.settings_fields(args)
    if args.tolerance is None:
        fed['tolerance'] = tolerance
    return stylize.Settings(**fed, max_memory=max_memory)


def choose_seed(args):
    """Gives a run without --seed a seed of its own, recorded in its images so that they can be made again: white
    noise from a chosen seed is as random as from none."""
    if args.seed is None:
        args.seed = secrets.randbelow(2 ** 31)


def choose_style_weight(args):
    """Gives a run without --style-weight the beta of its network, recorded in its images (a later version may
    change the default): stylize.NORMALIZED_STYLE_WEIGHT with --normalize-network, else stylize.STYLE_WEIGHT."""
    if args.style_weight is None:
        args.style_weight = stylize.NORMALIZED_STYLE_WEIGHT if args.normalize_network else stylize.STYLE_WEIGHT


def style_weight_at(args, height, width):
    """Eq. 7's beta for a height x width output: --style-weight as meant for stylize.REFERENCE_PIXELS, scaled to
    these pixels (stylize.style_weight_at), or as it is with --raw-style-weight."""
    if args.raw_style_weight:
        return args.style_weight
    return stylize.style_weight_at(args.style_weight, height, width)


def beta_in_words(args):
    """Where a run's beta comes from, for its set-up line."""
    if args.raw_style_weight:
        return f'--style-weight {args.style_weight:g} as given, --raw-style-weight'
    height, width = stylize.REFERENCE_SIZE
    return f'--style-weight {args.style_weight:g} at {width}x{height}, scaled to the pixels'


def recorded_settings(args, described, network, iterations_done, iterations, progress):
    """The settings recorded inside an image (images.write_image): what the caller describes (described: {field:
    text}, such as the program's version and the equivalent command line), the network (vgg.weights_identity), the
    seed, the iterations run and the last iteration's loss terms."""
    return {**described, 'Network': network, 'Seed': str(args.seed),
            'Iterations': f'{iterations_done} of {iterations}',
            'Losses': (f'content {progress.content:.6g}, style {progress.style:.6g}, tv {progress.tv:.6g}, '
                       f'temporal {progress.temporal:.6g}, total {progress.total:.6g}; the image\'s total '
                       f'{progress.best_total:.6g}')}


def check_options(args):
    """Checks an image run's options against each other and the file system, before anything is computed."""
    if args.iterations is None:
        args.iterations = [stylize.ITERATIONS]
    counts = [('--style-scales', args.style_scales, len(args.styles), 'style images'),
              ('--style-blend-weights', args.style_blend_weights, len(args.styles), 'style images'),
              ('--style-masks', args.style_masks, len(args.styles), 'style images'),
              ('--style-layer-weights', args.style_layer_weights, len(args.style_layers), 'style layers'),
              ('--content-layer-weights', args.content_layer_weights, len(args.content_layers), 'content layers')]
    for option, values, expected, what in counts:
        if values is not None and len(values) != expected:
            raise UserError(f'{option} has {len(values)} values for {expected} {what}')
    _check_layers(args)
    if args.style_blend_weights is not None and sum(args.style_blend_weights) <= 0:
        raise UserError('--style-blend-weights must not all be 0')
    for option in options.refused(args, options.IMAGE):
        raise UserError(f'{option.flag} applies to a video content only; {args.content} is an image')
    if args.scales is None and len(args.iterations) > 1:
        raise UserError(f'--iterations has {len(args.iterations)} values but there are no --scales; give one number')
    if args.scales is not None and len(args.iterations) not in (1, len(args.scales)):
        raise UserError(f'--iterations has {len(args.iterations)} values for {len(args.scales)} scales; '
                        f'give one number or one per scale')
    if args.scales is not None and args.width is not None:
        raise UserError('--scales sets the output size (its last value); leave out --width')
    if args.bit_depth == 16 and os.path.splitext(args.output)[1].lower() not in ('.png', '.tif', '.tiff'):
        raise UserError(f'--bit-depth 16 writes a .png or .tif output, not {args.output}')
    if args.cluster_timeouts is not None and args.cluster is None:
        raise UserError('--cluster-timeouts is for the workers of --cluster')
    if (args.checkpoint_output is None) != (args.checkpoint_iterations is None):
        raise UserError('--checkpoint-output and --checkpoint-iterations go together')
    if args.checkpoint_output is not None and '%s' not in args.checkpoint_output:
        raise UserError(f'--checkpoint-output {args.checkpoint_output} has no %s for the iteration number')
    if args.tile_size is not None:
        deepest = vgg.deepest(args.content_layers + args.style_layers)
        if args.tile_size % tiling.alignment(deepest):
            raise UserError(f'--tile-size {args.tile_size} is not a multiple of {tiling.alignment(deepest)}, the '
                            f'stride of {deepest} (the deepest loss layer)')
    _check_device_name(args)
    chosen = [option for option, value in (('--device', args.device), ('--devices', args.devices),
                                           ('--cluster', args.cluster)) if value is not None]
    if len(chosen) > 1:
        raise UserError(f'{" and ".join(chosen)} each say where the run goes: give one of them')
    outputs = [args.output]
    if args.checkpoint_output:
        outputs += [checkpoint_path(args.checkpoint_output, i)
                    for i in range(args.checkpoint_iterations, sum(stage_iterations(args)), args.checkpoint_iterations)]
    _check_distinct([('--output', args.output)] + [('--checkpoint-output', path) for path in outputs[1:]] +
                    [('--progress-write', args.progress_write)] * bool(args.progress_write) +
                    [('--progress-plot', args.progress_plot)] * bool(args.progress_plot))
    _check_not_an_input([('--output', args.output)] + [('--checkpoint-output', path) for path in outputs[1:]] +
                        [('--progress-write', args.progress_write)] * bool(args.progress_write) +
                        [('--progress-plot', args.progress_plot)] * bool(args.progress_plot), _inputs(args))
    for path in outputs:
        images.check_image_path(path, args.overwrite)
    if args.progress_write:
        files.check_writable(args.progress_write, args.overwrite)
    if args.progress_plot:
        images.check_plot_path(args.progress_plot, args.overwrite)
    for option, path in _inputs(args):  # a missing file is named before TensorFlow is imported (seconds)
        if not os.path.exists(path):
            raise images.ImageError(f'image {path} does not exist')
    _check_device(args)  # last: asking TensorFlow which devices it sees imports it


def check_video_options(args):
    """The options of a video run, checked before anything is computed; returns the output's kind."""
    if args.bit_depth != 8:  # before the others: its own sentence
        raise UserError('--bit-depth is for an image output; a video\'s frames are 8-bit')
    for option in options.refused(args, options.VIDEO):
        raise UserError(f'{option.flag} is not supported for a video content')
    iterations = args.iterations or []
    if len(iterations) > (1 if args.passes > 1 else 2):
        raise UserError(f'--iterations has {len(iterations)} values; for a video give one number, or two (the '
                        f'first frame\'s and the later frames\'), or one with --passes')
    if args.passes > 1 and args.long_term > 1:
        raise UserError('--long-term and --passes do not combine (the multi-pass algorithm ties each frame to its '
                        'neighbour only)')
    if args.start is not None and args.end is not None and args.end <= args.start:
        raise UserError(f'--end {args.end:g} is not after --start {args.start:g}')
    _check_layers(args)
    _check_device_name(args)
    kind = video.output_kind(args.output)
    output = args.output.rstrip('/') or args.output
    _check_not_an_input([('--output', output)], _inputs(args))
    if os.path.isdir(output) and kind != 'directory':
        raise UserError(f'{output} is a directory')
    directory = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(directory):
        raise UserError(f'cannot write {output}: directory {directory} does not exist')
    if not os.access(directory, os.W_OK):
        raise UserError(f'cannot write {output}: directory {directory} is not writable')
    _check_device(args)
    return kind


def _check_layers(args):
    for option, layers in (('--content-layers', args.content_layers), ('--style-layers', args.style_layers)):
        repeated = sorted({layer for layer in layers if layers.count(layer) > 1}, key=vgg.LAYERS.index)
        if repeated:
            raise UserError(f'{option} names {" and ".join(repeated)} more than once; give each layer once '
                            f'(its weight goes in {option[:-1]}-weights)')


def _check_device_name(args):
    if args.device is not None and not devices.is_device_name(args.device):
        raise UserError(f'--device {args.device} is not a device name such as /cpu:0 or /gpu:0')


def import_tensorflow(args):
    """TensorFlow, imported without its start-up lines unless --verbose (quiet_tensorflow), by the first step of
    a run that needs it: after the checks that do not, so that a missing file is named in a moment, not after
    the seconds of TensorFlow's import."""
    try:
        return quiet_tensorflow.import_tensorflow(getattr(args, 'verbose', False))
    except ImportError as error:
        raise UserError(quiet_tensorflow.import_failure(error)) from None


def _check_device(args):
    if args.device is not None:
        import_tensorflow(args)
        try:
            devices.existing_device(args.device)
        except ValueError as error:
            raise UserError(f'--device: {error}') from None


def _check_distinct(outputs):
    """Refuses two outputs, (option, path), on one file: the later write would replace the earlier silently."""
    seen = {}
    for option, path in outputs:
        earlier = seen.setdefault(os.path.realpath(path), (option, path))
        if earlier != (option, path):
            raise UserError(f'{earlier[0]} {earlier[1]} and {option} {path} are the same file; give each output '
                            f'a name of its own')


def _inputs(args):
    """The files a run reads, (option, path): the content, the styles, the masks and --initial."""
    return ([('--content', args.content)] + [('--styles', path) for path in args.styles] +
            [('--style-masks', path) for path in args.style_masks or []] +
            [('--initial', args.initial)] * bool(args.initial))


def _check_not_an_input(outputs, inputs):
    """Refuses an output, (option, path), that is one of the inputs, by its name or as the same file (a hard
    link, a symbolic link): writing it would destroy the input, --overwrite or not."""
    for option, path in outputs:
        for input_option, input_path in inputs:
            same = os.path.realpath(path) == os.path.realpath(input_path)
            if not same and os.path.exists(path) and os.path.exists(input_path):
                same = os.path.samefile(path, input_path)
            if same:
                raise UserError(f'{option} {path} is the same file as {input_option} {input_path}: writing it '
                                f'would destroy that input (refused even with --overwrite); give the output a '
                                f'name of its own')


def checkpoint_path(pattern, iteration):
    """--checkpoint-output's file for an iteration: every %s replaced by its number, any other % kept."""
    return pattern.replace('%s', str(iteration))


def placement(args):
    """Where the run's graphs go: the devices of --cluster's workers, --devices, or --device (default: the GPU
    if TensorFlow sees one, else the CPU). Reaches every worker before any work (ClusterError)."""
    import_tensorflow(args)
    try:
        if args.cluster:
            return cluster.remote_placement(cluster.parse_addresses(args.cluster),
                                            *(args.cluster_timeouts or (devices.ANSWER_TIMEOUT, devices.STALL_CHECK)))
        if args.devices:
            return devices.local_placement(args.devices)
    except ValueError as error:
        raise UserError(str(error)) from None
    return devices.one_device(args.device)


def load_network(args):
    """The network of --network, or the file found without it, fetched into the cache on first use unless
    --no-download (or $NEURAL_STYLE_NO_DOWNLOAD) says not to; through load_net_cached's converted copy."""
    path = vgg.find_or_fetch_weights(args.network, download=not args.no_download)
    return vgg.load_net_cached(path, vgg.converted_cache_dir())


def run_network(args, net, placement):
    """(the network a run uses, None or a sentence to tell the user): `net`, the published network, as it is;
    with --normalize-network the paper's normalized network, its mean activations read from the cache directory
    (vgg.cache_dir(), wherever the weights file is) or computed on `placement` and cached there, the sentence
    saying when they could not be."""
    if not args.normalize_network:
        return net, None
    means, problem = network_normalization.cached_mean_activations(net, vgg.weights_digest(args.network)[1],
                                                                   vgg.cache_dir(), placement)
    return network_normalization.normalized(net, means), problem


# How a run stopped, in one sentence

def _likely_cause(term):
    weight = {'content': '--content-weight', 'style': '--style-weight or --style-layer-weights',
              'tv': '--tv-weight', 'temporal': '--temporal-weight'}.get(term, 'a loss weight')
    return f'{weight} too large for 32-bit floats?' + (' With Adam, --learning-rate?' if term == 'gradient' else '')


def why_stopped(reason, where=''):
    """(what stopped the run, the exit status) for an interrupt or a loss that is not finite (at `where`)."""
    if isinstance(reason, KeyboardInterrupt):
        return f'interrupted ({console.signal_name(reason)})', console.signal_exit_code(reason)
    return f'error: {reason}{where} ({_likely_cause(reason.term)})', 1


# An image

def stage_sizes(shape, args):
    """(height, width) of each stage: one per --scales value, that value the longest side (the content is
    enlarged when it is smaller: the sizes asked for are kept), or the one output size of --width / --max-size."""
    if args.scales is None:
        return [images.output_size(shape, args.width, args.max_size)]
    return [images.longest_side(shape, size) for size in args.scales]


def stage_iterations(args):
    """The iterations of each stage: --iterations, one number for all stages or one per stage."""
    stages = len(args.scales) if args.scales else 1
    return args.iterations * stages if len(args.iterations) == 1 else args.iterations


class Run:
    """One image run of the command line's options (an image in stages, coarse to fine with --scales). `net`,
    the loaded network, lets a caller reuse it across runs. describe(args) -> {field: text}: what the caller adds
    to the settings recorded inside each image written (recorded_settings); a run without --seed gets one."""

    def __init__(self, args, net=None, describe=None):
        check_options(args)
        choose_seed(args)
        choose_style_weight(args)
        self.describe = describe or (lambda args: {})
        content = images.read_image(args.content, args.max_megapixels)  # before TensorFlow is imported: seconds
        styles = [images.read_image(path, args.max_megapixels) for path in args.styles]
        masks = [images.read_image(path, args.max_megapixels) for path in args.style_masks] if args.style_masks else None
        initial = images.read_image(args.initial, args.max_megapixels) if args.initial else None
        self.placement = placement(args)  # before any work: every worker of --cluster answers
        sizes, iterations = stage_sizes(content.shape, args), stage_iterations(args)
        images.check_megapixels('the output', *sizes[-1], args.max_megapixels)
        for path, mask in zip(args.style_masks or [], masks or []):
            if not all(images.mask_at(mask, height, width).any() for height, width in sizes):
                raise UserError(f'mask {path} is black everywhere: its style would govern no part of the output')
        self.converted = [(path, name) for path in [args.content, *args.styles, *(args.style_masks or []),
                                                    *[args.initial] * bool(args.initial)]
                          for name in [images.converted_profile(path)] if name]  # (path, profile) read as sRGB
        self.net, self.network_problem = run_network(args, net or load_network(args), self.placement)
        self.network = vgg.weights_identity(args.network)  # now: an interrupt's write is not kept waiting for it
        self.args, self.photo, self.masks, self.sizes, self.iterations = args, content, masks, sizes, iterations
        self.content = colors.content_seen(args.preserve_colors, content)
        self.styles = colors.styles_seen(args.preserve_colors, styles, content)
        self.initial = None if initial is None else colors.content_seen(args.preserve_colors, initial)
        budget = (args.max_memory or tiling.default_memory()) * 1e9 if args.tile_size is None else None
        settings = run_settings(args, budget)
        self.plans = [tiling.plan(size, settings.content_layers, settings.style_layers, tile_size=settings.tile_size,
                                  max_memory=budget, optimizer=settings.optimizer,
                                  lbfgs_history=settings.lbfgs_history, devices=len(self.placement.devices))
                      for size in sizes]
        # Each stage's settings: its iterations, its beta, and the tiling planned for it.
        self.stages = [(size, dataclasses.replace(settings, iterations=count, style_weight=style_weight_at(args, *size),
                                                  tile_size=plan.tile_size, max_memory=None))
                       for size, count, plan in zip(sizes, iterations, self.plans)]
        self.losses = []  # (iteration over all stages, content, style, tv, total) of each step: the plot's rows

    def as_written(self, image):
        """A result as written: with colour preservation applied."""
        return colors.recoloured(self.args.preserve_colors, image, self.photo)

    def plan(self):
        """What the run will do: a line, then one per stage, per input converted to sRGB, and the stages."""
        height, width = self.sizes[-1]
        args = self.args
        text = (f'output {width}x{height}, {len(self.styles)} style image(s), {args.optimizer}, '
                f'{sum(self.iterations)} iterations, on {", ".join(self.placement.devices)}, '
                f'{devices.precision_in_words(args.precision, self.placement.devices[0])}; network '
                f'{vgg.describe(self.net)}')
        if self.network_problem:
            text += f'\nnetwork: {self.network_problem}'
        for (size, settings), memory in zip(self.stages, self.plans):
            text += '\n' + self._plan_line(size, settings, memory)
        for path, profile in self.converted:
            text += f'\ncolour: {path} converted to sRGB from its profile, {profile}'
        if args.scales is not None:
            text += '\nstages: ' + ', '.join(f'{w}x{h} ({n} iterations)'
                                             for (h, w), n in zip(self.sizes, self.iterations))
        return text

    def _plan_line(self, size, settings, memory):
        """A stage's beta, how it is evaluated, tiled or not, and its estimated peak memory."""
        height, width = size
        beta = f'beta {settings.style_weight:.4g} ({beta_in_words(self.args)})'
        deepest = vgg.deepest(self.args.content_layers + self.args.style_layers)
        peak = f'estimated peak memory {memory.peak / 1e9:.2f} GB'
        if memory.budget is not None:
            peak += f' of {memory.budget / 1e9:.1f} GB (--max-memory)'
        if memory.tile_size is None:
            return f'{width}x{height}: {beta}, untiled, {peak}'
        tiles = tiling.make_tiles(height, width, memory.tile_size, deepest)
        return (f'{width}x{height}: {beta}, tiled, {len(tiles)} tiles of {memory.tile_size} px with a '
                f'{tiling.halo(deepest)} px halo, {peak}')

    def line(self, stage, progress):
        """A step's progress line: iteration, losses, elapsed and remaining time."""
        iterations = self.iterations[stage]
        remaining = ''
        if progress.iteration:
            left = progress.seconds / progress.iteration * (iterations - progress.iteration)
            remaining = f'  remaining {console.format_duration(left)}'
        return (f'{self.stage_prefix(stage)}iteration {progress.iteration:>{len(str(iterations))}}/{iterations}  '
                f'content {progress.content:.4g}  style {progress.style:.4g}  tv {progress.tv:.4g}  '
                f'total {progress.total:.4g}  elapsed {console.format_duration(progress.seconds)}{remaining}')

    def stage_prefix(self, stage):
        return f'stage {stage + 1}/{len(self.sizes)}  ' if len(self.sizes) > 1 else ''

    def steps(self):
        """Optimizes, yielding (stage, Progress) after every iteration; writes the CSV and the plot as it goes,
        the checkpoints, and the output at the end. An interrupt or a loss that is not finite writes the best
        image so far and raises Stopped; so does an interrupt thrown in at a yield (steps.throw). Closing the
        generator early (the page's Stop) writes the best image so far too."""
        args, iterations = self.args, self.iterations
        staged = args.scales is not None
        log = images.ProgressLog(args.progress_write, staged) if args.progress_write else None
        progress, stop = None, None
        steps = stylize.stylize_in_stages(
            self.net, self.content, self.styles, self.stages, style_scales=args.style_scales or [1.0] * len(self.styles),
            style_masks=self.masks, init=args.init, initial=self.initial, placement=self.placement)
        try:
            for stage, progress in steps:
                done = sum(iterations[:stage]) + progress.iteration  # over all stages: names the checkpoints
                self.losses.append((done, progress.content, progress.style, progress.tv, progress.total))
                if log:
                    log.add(progress, stage + 1 if staged else None)
                if (args.checkpoint_iterations and progress.iteration
                        and done % args.checkpoint_iterations == 0 and done < sum(iterations)):
                    images.write_image(checkpoint_path(args.checkpoint_output, done),
                                       self.as_written(progress.best_image), self.settings_record(progress))
                    self._write_plot()
                yield stage, progress
        except (KeyboardInterrupt, stylize.NonFiniteLoss, devices.DeviceLost) as error:
            stop = error
        except GeneratorExit:  # the consumer stopped early: nothing is lost
            if progress is not None:
                self._write_result(progress)
            raise
        finally:
            steps.close()  # stops the optimizer's worker thread
            if log:
                log.close()
            self._write_plot()
        if stop is not None:
            raise self._stopped(stop, progress)
        try:
            written, error = self._write_result(progress)
        except KeyboardInterrupt as interrupt:  # the run is over: its image is written all the same
            raise self._stopped(interrupt, progress, finished=True) from None
        if error:
            raise Stopped(f'error: could not write {args.output} ({error}); wrote the result to {written} instead', 1)

    def settings_record(self, progress):
        """The settings recorded inside an image written after `progress`, the last step."""
        return recorded_settings(self.args, self.describe(self.args), self.network, self.losses[-1][0],
                                 sum(self.iterations), progress)

    def _write_result(self, progress):
        try:
            return images.write_result(self.args.output, self.as_written(progress.best_image),
                                       self.settings_record(progress), self.args.bit_depth)
        except images.ImageError as error:
            raise Stopped(f'error: {error}', 1) from None

    def _stopped(self, reason, progress, finished=False):
        """Writes the best image so far to the output, for an interrupt, a loss that is not finite or a lost
        worker, and says so, with a command that continues the run. finished: the interrupt came after the last
        iteration, while the finished image was being written."""
        args = self.args
        resume, workers = not finished, ''
        if isinstance(reason, devices.DeviceLost):
            addresses = cluster.parse_addresses(args.cluster)
            task, lost = cluster.lost_worker(addresses, reason)
            what, code = f'error: {lost} ({reason})', 1
            remaining = ','.join(address for k, address in enumerate(addresses) if k != task)
            workers = f' --cluster {remaining}' if task is not None and remaining else ' once the workers run again'
        elif isinstance(reason, KeyboardInterrupt):
            what, code = why_stopped(reason)
            if finished:
                what = f'{what} after the last iteration'
        else:
            what, code = why_stopped(reason, f' at iteration {progress.iteration + 1 if progress else 0}')
            resume = False
        if progress is None:
            return Stopped(f'{what}; nothing written', code)
        others = [f'the {kind} to {path}' for kind, path in (('losses', args.progress_write),
                                                             ('plot', args.progress_plot)) if path]
        try:
            written, error = self._write_result(progress)
        except KeyboardInterrupt as again:  # the write is atomic: the output is as it was before it
            return Stopped(f'{what}, and {console.signal_name(again)} again while the best image so far was '
                           f'written: {args.output} was not written, that image is lost' +
                           (f'; wrote {" and ".join(others)}' if others else ''), code)
        saved = (f'wrote the finished image to {written}' if finished else
                 f'wrote the best image so far (iteration {progress.iteration}) to {written}')
        if error:
            saved = f'{saved} (could not write {args.output}: {error})'
        resumed = f'; continue with {self._continuation(written)}{workers}' if resume else ''
        return Stopped(f'{what}; {" and ".join([saved] + others)}{resumed}', code)

    def _continuation(self, written):
        """The options that, added to the same command, continue the run from `written`: --initial, and a
        new name for each file the run wrote, so that nothing it wrote is replaced (nor the --initial read)."""
        args = self.args
        options = ['--initial', written]
        for option, path in (('--output', args.output), ('--progress-write', args.progress_write),
                             ('--progress-plot', args.progress_plot),
                             ('--checkpoint-output', args.checkpoint_output)):
            if path:
                options += [option, files.continued_path(path)]
        return shlex.join(options)

    def plot(self):
        """The loss plot of the steps so far, stages marked: a matplotlib Figure (needs matplotlib)."""
        boundaries = [sum(self.iterations[:stage]) for stage in range(1, len(self.iterations))]
        return progress_plot.figure(self.losses, boundaries)

    def _write_plot(self):
        if self.args.progress_plot and self.losses:
            figure = self.plot()
            files.write_atomically(self.args.progress_plot, lambda f: progress_plot.save(figure, f))
