"""A run's configuration: RunConfig, typed and frozen, built once from the command line's parsed options
(from_options), with what the run chooses itself (its seed, its beta, an image's iterations) and what kind of run
the options name (an image, a clip, a batch). Everything below the command line reads this value, never the
parsed options; a batch's pairs are each a RunConfig of their own (for_pair).
"""
import dataclasses
import os
import re
import secrets
from dataclasses import dataclass

import stylize
from styletransfer.media import video
from styletransfer.run import options

@dataclass(frozen=True)
class RunConfig:
    """The options of a run, one field per option of the table (options.py; each holds the parsed value, lists
    as tuples), and what the run chose: the seed and beta when not given, and an image's iterations."""
    content: tuple  # one path for a single run; several, or directories, for a batch
    styles: tuple
    output: str
    overwrite: bool
    bit_depth: int
    max_size: int
    width: int | None
    style_scales: tuple | None
    style_masks: tuple | None
    preserve_colors: str | None
    max_megapixels: float
    network: str | None
    no_download: bool
    content_weight: float
    style_weight: float  # chosen from --normalize-network when not given
    raw_style_weight: bool
    tv_weight: float
    content_layers: tuple
    content_layer_weights: tuple | None
    style_layers: tuple
    style_layer_weights: tuple | None
    style_blend_weights: tuple | None
    pooling: str
    padding: str
    normalize_network: bool
    optimizer: str
    iterations: tuple | None  # an image's default when not given; None for a clip: video.py's defaults
    scales: tuple | None
    tolerance: float | None
    tolerance_window: int
    lbfgs_history: int
    learning_rate: float
    beta1: float
    beta2: float
    eps: float
    init: str
    initial: str | None
    initial_noiseblend: float
    seed: int  # chosen when not given
    precision: str
    device: str | None
    devices: str | None
    cluster: str | None
    cluster_timeouts: tuple | None
    tile_size: int | None
    max_memory: float | None
    start: float | None
    end: float | None
    frames: int | None
    temporal_weight: float | None
    long_term: int
    passes: int
    flow: str
    print_iterations: int
    progress_write: str | None
    progress_plot: str | None
    checkpoint_output: str | None
    checkpoint_iterations: int | None
    verbose: bool
    kind: str  # options.IMAGE, options.VIDEO or options.BATCH
    seed_given: bool  # --seed gave the seed: a clip's finished frames are keyed by it

    def inputs(self):
        """The files the run reads, (option, path): the contents, the styles, the masks and --initial."""
        return ([('--content', path) for path in self.content] + [('--styles', path) for path in self.styles] +
                [('--style-masks', path) for path in self.style_masks or []] +
                [('--initial', self.initial)] * bool(self.initial))


# Not options: what from_options works out.
_WORKED_OUT = frozenset({'kind', 'seed_given'})


def from_options(parsed, kind=None):
    """The RunConfig of the command line's parsed options (an argparse Namespace), of the `kind` of run the
    options name unless one is given. A run without --seed gets a seed of its own, recorded in its images so that
    they can be made again (white noise from a chosen seed is as random as from none); without --style-weight,
    the beta of its network, recorded too (a later version may change the default). Raises video.ClipError for a
    content named like a video that ffmpeg cannot read."""
    given = {field.name: options.frozen(getattr(parsed, field.name)) for field in dataclasses.fields(RunConfig)
             if field.name not in _WORKED_OUT}
    kind = kind or _kind(given['content'], given['styles'], given['output'])
    if given['iterations'] is None and kind != options.VIDEO:  # a clip's default is video.py's
        given['iterations'] = (stylize.ITERATIONS,)
    if given['style_weight'] is None:
        given['style_weight'] = (stylize.NORMALIZED_STYLE_WEIGHT if given['normalize_network']
                                 else stylize.STYLE_WEIGHT)
    seed_given = given['seed'] is not None
    if not seed_given:
        given['seed'] = _new_seed()
    return RunConfig(**given, kind=kind, seed_given=seed_given)


def for_pair(config, content, styles, output):
    """A batch's pair's configuration: the batch's with the pair's files, an image run, and a seed of its own
    unless --seed gave one (as each single run gets)."""
    return dataclasses.replace(config, content=(content,), styles=tuple(styles), output=output, kind=options.IMAGE,
                               seed=config.seed if config.seed_given else _new_seed())


def _new_seed():
    return secrets.randbelow(2 ** 31)


def _kind(content, styles, output):
    """A batch for several contents, a directory of contents or styles, or an output directory or pattern for a
    photograph (for a video, an output directory is where its frames go); else a clip or an image, by the
    content."""
    if len(content) > 1 or any(os.path.isdir(path) for path in content + styles):
        return options.BATCH
    if video.is_video(content[0]):
        return options.VIDEO
    return options.IMAGE if output_pattern(output) is None else options.BATCH


def output_pattern(output):
    """The outputs' path pattern: DIR/options.BATCH_PATTERN for a directory (a path ending in / or an existing
    directory), the output itself when it holds a field in braces ({content}, {style}); None for the one file of
    a single run."""
    if output.endswith(('/', os.sep)) or os.path.isdir(output):
        return os.path.join(output, options.BATCH_PATTERN)
    if re.search(r'{[^{}]*}', output):
        return output
    return None
