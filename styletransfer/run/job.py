"""One run of a run_config.RunConfig, without printing: an image in stages (Run), and what a clip's run
(video_run.VideoRun) shares with it. The command line (neural_style.py) prints their steps; the page (app.py)
shows them.

An image run goes in three steps: check_options checks the configuration against itself and the file system;
load reads the images, reaches the devices and loads the network, and makes the Run; its steps() optimize,
write what they make as they go, and raise Stopped (after writing the best there is) for an interrupt, a loss
that is not finite or a lost worker.
"""
import dataclasses
import os
import shlex
from dataclasses import dataclass

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


# The configuration

def run_settings(config, max_memory=None, tolerance=stylize.TOLERANCE):
    """The stylize.Settings of a run_config.RunConfig (each stage and frame replaces its iterations); `tolerance`
    unless --tolerance gives one."""
    fed = options.settings_fields(config)
    if config.tolerance is None:
        fed['tolerance'] = tolerance
    return stylize.Settings(**fed, max_memory=max_memory)


def style_weight_at(config, height, width):
    """Eq. 7's beta for a height x width output: --style-weight as meant for stylize.REFERENCE_PIXELS, scaled to
    these pixels (stylize.style_weight_at), or as it is with --raw-style-weight."""
    if config.raw_style_weight:
        return config.style_weight
    return stylize.style_weight_at(config.style_weight, height, width)


def beta_in_words(config):
    """Where a run's beta comes from, for its set-up line."""
    if config.raw_style_weight:
        return f'--style-weight {config.style_weight:g} as given, --raw-style-weight'
    height, width = stylize.REFERENCE_SIZE
    return f'--style-weight {config.style_weight:g} at {width}x{height}, scaled to the pixels'


def recorded_settings(config, described, network, iterations_done, iterations, progress):
    """The settings recorded inside an image (images.write_image): what the caller describes (described: {field:
    text}, such as the program's version and the equivalent command line), the network (vgg.weights_identity), the
    seed, the iterations run and the last iteration's loss terms."""
    return {**described, 'Network': network, 'Seed': str(config.seed),
            'Iterations': f'{iterations_done} of {iterations}',
            'Losses': (f'content {progress.content:.6g}, style {progress.style:.6g}, tv {progress.tv:.6g}, '
                       f'temporal {progress.temporal:.6g}, total {progress.total:.6g}; the image\'s total '
                       f'{progress.best_total:.6g}')}


def check_options(config):
    """Checks an image run's configuration against itself and the file system, before anything is read or
    computed."""
    counts = [('--style-scales', config.style_scales, len(config.styles), 'style images'),
              ('--style-blend-weights', config.style_blend_weights, len(config.styles), 'style images'),
              ('--style-masks', config.style_masks, len(config.styles), 'style images'),
              ('--style-layer-weights', config.style_layer_weights, len(config.style_layers), 'style layers'),
              ('--content-layer-weights', config.content_layer_weights, len(config.content_layers), 'content layers')]
    for option, values, expected, what in counts:
        if values is not None and len(values) != expected:
            raise UserError(f'{option} has {len(values)} values for {expected} {what}')
    _check_layers(config)
    if config.style_blend_weights is not None and sum(config.style_blend_weights) <= 0:
        raise UserError('--style-blend-weights must not all be 0')
    for option in options.refused(config, options.IMAGE):
        raise UserError(f'{option.flag} applies to a video content only; {config.content[0]} is an image')
    if config.scales is None and len(config.iterations) > 1:
        raise UserError(f'--iterations has {len(config.iterations)} values but there are no --scales; give one number')
    if config.scales is not None and len(config.iterations) not in (1, len(config.scales)):
        raise UserError(f'--iterations has {len(config.iterations)} values for {len(config.scales)} scales; '
                        f'give one number or one per scale')
    if config.scales is not None and config.width is not None:
        raise UserError('--scales sets the output size (its last value); leave out --width')
    if config.bit_depth == 16 and os.path.splitext(config.output)[1].lower() not in ('.png', '.tif', '.tiff'):
        raise UserError(f'--bit-depth 16 writes a .png or .tif output, not {config.output}')
    if config.cluster_timeouts is not None and config.cluster is None:
        raise UserError('--cluster-timeouts is for the workers of --cluster')
    if (config.checkpoint_output is None) != (config.checkpoint_iterations is None):
        raise UserError('--checkpoint-output and --checkpoint-iterations go together')
    if config.checkpoint_output is not None and '%s' not in config.checkpoint_output:
        raise UserError(f'--checkpoint-output {config.checkpoint_output} has no %s for the iteration number')
    if config.tile_size is not None:
        deepest = vgg.deepest(config.content_layers + config.style_layers)
        if config.tile_size % tiling.alignment(deepest):
            raise UserError(f'--tile-size {config.tile_size} is not a multiple of {tiling.alignment(deepest)}, the '
                            f'stride of {deepest} (the deepest loss layer)')
    _check_device_name(config)
    chosen = [option for option, value in (('--device', config.device), ('--devices', config.devices),
                                           ('--cluster', config.cluster)) if value is not None]
    if len(chosen) > 1:
        raise UserError(f'{" and ".join(chosen)} each say where the run goes: give one of them')
    outputs = [config.output]
    if config.checkpoint_output:
        outputs += [files.checkpoint_path(config.checkpoint_output, i)
                    for i in range(config.checkpoint_iterations, sum(stage_iterations(config)), config.checkpoint_iterations)]
    written = ([('--output', config.output)] + [('--checkpoint-output', path) for path in outputs[1:]] +
               [('--progress-write', config.progress_write)] * bool(config.progress_write) +
               [('--progress-plot', config.progress_plot)] * bool(config.progress_plot))
    files.check_distinct(written)
    files.check_not_an_input(written, config.inputs())
    for path in outputs:
        images.check_image_path(path, config.overwrite)
    if config.progress_write:
        files.check_writable(config.progress_write, config.overwrite)
    if config.progress_plot:
        images.check_plot_path(config.progress_plot, config.overwrite)
    for option, path in config.inputs():  # a missing file is named before TensorFlow is imported (seconds)
        if not os.path.exists(path):
            raise images.ImageError(f'image {path} does not exist')
    _check_device(config)  # last: asking TensorFlow which devices it sees imports it


def check_video_options(config):
    """Checks a clip run's configuration against itself and the file system, before anything is read or
    computed."""
    if config.bit_depth != 8:  # before the others: its own sentence
        raise UserError('--bit-depth is for an image output; a video\'s frames are 8-bit')
    for option in options.refused(config, options.VIDEO):
        raise UserError(f'{option.flag} is not supported for a video content')
    iterations = config.iterations or []
    if len(iterations) > (1 if config.passes > 1 else 2):
        raise UserError(f'--iterations has {len(iterations)} values; for a video give one number, or two (the '
                        f'first frame\'s and the later frames\'), or one with --passes')
    if config.passes > 1 and config.long_term > 1:
        raise UserError('--long-term and --passes do not combine (the multi-pass algorithm ties each frame to its '
                        'neighbour only)')
    if config.start is not None and config.end is not None and config.end <= config.start:
        raise UserError(f'--end {config.end:g} is not after --start {config.start:g}')
    _check_layers(config)
    _check_device_name(config)
    kind = video.output_kind(config.output)
    output = config.output.rstrip('/') or config.output
    files.check_not_an_input([('--output', output)], config.inputs())
    if os.path.isdir(output) and kind != 'directory':
        raise UserError(f'{output} is a directory')
    directory = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(directory):
        raise UserError(f'cannot write {output}: directory {directory} does not exist')
    if not os.access(directory, os.W_OK):
        raise UserError(f'cannot write {output}: directory {directory} is not writable')
    _check_device(config)


def _check_layers(config):
    for option, layers in (('--content-layers', config.content_layers), ('--style-layers', config.style_layers)):
        repeated = sorted({layer for layer in layers if layers.count(layer) > 1}, key=vgg.LAYERS.index)
        if repeated:
            raise UserError(f'{option} names {" and ".join(repeated)} more than once; give each layer once '
                            f'(its weight goes in {option[:-1]}-weights)')


def _check_device_name(config):
    if config.device is not None and not devices.is_device_name(config.device):
        raise UserError(f'--device {config.device} is not a device name such as /cpu:0 or /gpu:0')


def import_tensorflow(config):
    """TensorFlow, imported without its start-up lines unless --verbose (quiet_tensorflow), by the first step of
    a run that needs it: after the checks that do not, so that a missing file is named in a moment, not after
    the seconds of TensorFlow's import."""
    try:
        return quiet_tensorflow.import_tensorflow(config.verbose)
    except ImportError as error:
        raise UserError(quiet_tensorflow.import_failure(error)) from None


def _check_device(config):
    if config.device is not None:
        import_tensorflow(config)
        try:
            devices.existing_device(config.device)
        except ValueError as error:
            raise UserError(f'--device: {error}') from None


def placement(config):
    """Where the run's graphs go: the devices of --cluster's workers, --devices, or --device (default: the GPU
    if TensorFlow sees one, else the CPU). Reaches every worker before any work (ClusterError)."""
    import_tensorflow(config)
    try:
        if config.cluster:
            return cluster.remote_placement(cluster.parse_addresses(config.cluster),
                                            *(config.cluster_timeouts or (devices.ANSWER_TIMEOUT, devices.STALL_CHECK)))
        if config.devices:
            return devices.local_placement(config.devices)
    except ValueError as error:
        raise UserError(str(error)) from None
    return devices.one_device(config.device)


def load_network(config):
    """The network of --network, or the file found without it, fetched into the cache on first use unless
    --no-download (or $NEURAL_STYLE_NO_DOWNLOAD) says not to; through load_net_cached's converted copy."""
    path = vgg.find_or_fetch_weights(config.network, download=not config.no_download)
    return vgg.load_net_cached(path, vgg.converted_cache_dir())


def run_network(config, net, placement):
    """(the network a run uses, None or a sentence to tell the user): `net`, the published network, as it is;
    with --normalize-network the paper's normalized network, its mean activations read from the cache directory
    (vgg.cache_dir(), wherever the weights file is) or computed on `placement` and cached there, the sentence
    saying when they could not be."""
    if not config.normalize_network:
        return net, None
    means, problem = network_normalization.cached_mean_activations(net, vgg.weights_digest(config.network)[1],
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

def stage_sizes(shape, config):
    """(height, width) of each stage: one per --scales value, that value the longest side (the content is
    enlarged when it is smaller: the sizes asked for are kept), or the one output size of --width / --max-size."""
    if config.scales is None:
        return [images.output_size(shape, config.width, config.max_size)]
    return [images.longest_side(shape, size) for size in config.scales]


def stage_iterations(config):
    """The iterations of each stage: --iterations, one number for all stages or one per stage."""
    stages = len(config.scales) if config.scales else 1
    return config.iterations * stages if len(config.iterations) == 1 else config.iterations


@dataclass(frozen=True)
class Inputs:
    """An image run's images as read (RGB float32 0..255): the photograph, the styles, the masks and the
    starting image (None where not given), and the (path, profile) of each input converted to sRGB from its
    colour profile."""
    photo: object
    styles: list
    masks: list
    initial: object
    converted: list


def read_inputs(config):
    """The images of a checked configuration, read before TensorFlow is imported (seconds)."""
    def read(path):
        return images.read_image(path, config.max_megapixels)

    return Inputs(read(config.content[0]), [read(path) for path in config.styles],
                  [read(path) for path in config.style_masks] if config.style_masks else None,
                  read(config.initial) if config.initial else None,
                  [(path, name) for _, path in config.inputs() for name in [images.converted_profile(path)] if name])


def check_inputs(config, inputs):
    """Checks the images against the output they make: its size, and each mask governing some of it."""
    sizes = stage_sizes(inputs.photo.shape, config)
    images.check_megapixels('the output', *sizes[-1], config.max_megapixels)
    for path, mask in zip(config.style_masks or [], inputs.masks or []):
        if not all(images.mask_at(mask, height, width).any() for height, width in sizes):
            raise UserError(f'mask {path} is black everywhere: its style would govern no part of the output')


def load(config, net=None, describe=None):
    """The Run of a checked configuration (check_options): its images read and checked, where it runs, and its
    network; `net`, the loaded network, lets a caller reuse it across runs. describe: as Run's."""
    inputs = read_inputs(config)
    where = placement(config)  # before any work: every worker of --cluster answers
    check_inputs(config, inputs)
    net, problem = run_network(config, net or load_network(config), where)
    network = vgg.weights_identity(config.network)  # now: an interrupt's write is not kept waiting for it
    return Run(config, inputs, where, net, problem, network, describe)


class Run:
    """One image run of a configuration (an image in stages, coarse to fine with --scales), made by load: the
    inputs, the placement, the network used, the sentence to tell about it (or None) and its identity
    (vgg.weights_identity). describe(config) -> {field: text}: what the caller adds to the settings recorded
    inside each image written (recorded_settings)."""

    def __init__(self, config, inputs, placement, net, network_problem, network, describe=None):
        self.config, self.placement, self.net, self.network_problem, self.network = (
            config, placement, net, network_problem, network)
        self.describe = describe or (lambda config: {})
        self.photo, self.masks, self.converted = inputs.photo, inputs.masks, inputs.converted
        self.sizes, self.iterations = stage_sizes(inputs.photo.shape, config), stage_iterations(config)
        self.content = colors.content_seen(config.preserve_colors, inputs.photo)
        self.styles = colors.styles_seen(config.preserve_colors, inputs.styles, inputs.photo)
        self.initial = None if inputs.initial is None else colors.content_seen(config.preserve_colors, inputs.initial)
        budget = (config.max_memory or tiling.default_memory()) * 1e9 if config.tile_size is None else None
        settings = run_settings(config, budget)
        self.plans = [tiling.plan(size, settings.content_layers, settings.style_layers, tile_size=settings.tile_size,
                                  max_memory=budget, optimizer=settings.optimizer,
                                  lbfgs_history=settings.lbfgs_history, devices=len(placement.devices))
                      for size in self.sizes]
        # Each stage's settings: its iterations, its beta, and the tiling planned for it.
        self.stages = [(size, dataclasses.replace(settings, iterations=count,
                                                  style_weight=style_weight_at(config, *size),
                                                  tile_size=plan.tile_size, max_memory=None))
                       for size, count, plan in zip(self.sizes, self.iterations, self.plans)]
        self.losses = []  # (iteration over all stages, content, style, tv, total) of each step: the plot's rows

    def as_written(self, image):
        """A result as written: with colour preservation applied."""
        return colors.recoloured(self.config.preserve_colors, image, self.photo)

    def plan(self):
        """What the run will do: a line, then one per stage, per input converted to sRGB, and the stages."""
        height, width = self.sizes[-1]
        config = self.config
        text = (f'output {width}x{height}, {len(self.styles)} style image(s), {config.optimizer}, '
                f'{sum(self.iterations)} iterations, on {", ".join(self.placement.devices)}, '
                f'{devices.arithmetic_in_words(config.precision, config.convolutions, self.placement.devices[0])}; '
                f'network {vgg.describe(self.net)}')
        if self.network_problem:
            text += f'\nnetwork: {self.network_problem}'
        for (size, settings), memory in zip(self.stages, self.plans):
            text += '\n' + self._plan_line(size, settings, memory)
        for path, profile in self.converted:
            text += f'\ncolour: {path} converted to sRGB from its profile, {profile}'
        if config.scales is not None:
            text += '\nstages: ' + ', '.join(f'{w}x{h} ({n} iterations)'
                                             for (h, w), n in zip(self.sizes, self.iterations))
        return text

    def _plan_line(self, size, settings, memory):
        """A stage's beta, how it is evaluated, tiled or not, and its estimated peak memory."""
        height, width = size
        beta = f'beta {settings.style_weight:.4g} ({beta_in_words(self.config)})'
        deepest = vgg.deepest(self.config.content_layers + self.config.style_layers)
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
        config, iterations = self.config, self.iterations
        staged = config.scales is not None
        log = images.ProgressLog(config.progress_write, staged) if config.progress_write else None
        progress, stop = None, None
        steps = stylize.stylize_in_stages(
            self.net, self.content, self.styles, self.stages, style_scales=config.style_scales or [1.0] * len(self.styles),
            style_masks=self.masks, init=config.init, initial=self.initial, placement=self.placement)
        try:
            for stage, progress in steps:
                done = sum(iterations[:stage]) + progress.iteration  # over all stages: names the checkpoints
                self.losses.append((done, progress.content, progress.style, progress.tv, progress.total))
                if log:
                    log.add(progress, stage + 1 if staged else None)
                if (config.checkpoint_iterations and progress.iteration
                        and done % config.checkpoint_iterations == 0 and done < sum(iterations)):
                    images.write_image(files.checkpoint_path(config.checkpoint_output, done),
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
            raise Stopped(f'error: could not write {config.output} ({error}); wrote the result to {written} instead', 1)

    def settings_record(self, progress):
        """The settings recorded inside an image written after `progress`, the last step."""
        return recorded_settings(self.config, self.describe(self.config), self.network, self.losses[-1][0],
                                 sum(self.iterations), progress)

    def _write_result(self, progress):
        try:
            return images.write_result(self.config.output, self.as_written(progress.best_image),
                                       self.settings_record(progress), self.config.bit_depth)
        except images.ImageError as error:
            raise Stopped(f'error: {error}', 1) from None

    def _stopped(self, reason, progress, finished=False):
        """Writes the best image so far to the output, for an interrupt, a loss that is not finite or a lost
        worker, and says so, with a command that continues the run. finished: the interrupt came after the last
        iteration, while the finished image was being written."""
        config = self.config
        resume, workers = not finished, ''
        if isinstance(reason, devices.DeviceLost):
            addresses = cluster.parse_addresses(config.cluster)
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
        others = [f'the {kind} to {path}' for kind, path in (('losses', config.progress_write),
                                                             ('plot', config.progress_plot)) if path]
        try:
            written, error = self._write_result(progress)
        except KeyboardInterrupt as again:  # the write is atomic: the output is as it was before it
            return Stopped(f'{what}, and {console.signal_name(again)} again while the best image so far was '
                           f'written: {config.output} was not written, that image is lost' +
                           (f'; wrote {" and ".join(others)}' if others else ''), code)
        saved = (f'wrote the finished image to {written}' if finished else
                 f'wrote the best image so far (iteration {progress.iteration}) to {written}')
        if error:
            saved = f'{saved} (could not write {config.output}: {error})'
        resumed = f'; continue with {self._continuation(written)}{workers}' if resume else ''
        return Stopped(f'{what}; {" and ".join([saved] + others)}{resumed}', code)

    def _continuation(self, written):
        """The options that, added to the same command, continue the run from `written`: --initial, and a
        new name for each file the run wrote, so that nothing it wrote is replaced (nor the --initial read)."""
        config = self.config
        options = ['--initial', written]
        for option, path in (('--output', config.output), ('--progress-write', config.progress_write),
                             ('--progress-plot', config.progress_plot),
                             ('--checkpoint-output', config.checkpoint_output)):
            if path:
                options += [option, files.continued_path(path)]
        return shlex.join(options)

    def plot(self):
        """The loss plot of the steps so far, stages marked: a matplotlib Figure (needs matplotlib)."""
        boundaries = [sum(self.iterations[:stage]) for stage in range(1, len(self.iterations))]
        return progress_plot.figure(self.losses, boundaries)

    def _write_plot(self):
        if self.config.progress_plot and self.losses:
            figure = self.plot()
            files.write_atomically(self.config.progress_plot, lambda f: progress_plot.save(figure, f))
