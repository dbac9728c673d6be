"""A run's configuration: RunConfig, typed and frozen, built once from the command line's parsed options
(from_options), with what the run chooses itself (its seed, its beta, an image's iterations) and what kind of run
the options name (an image, a clip, a batch). Everything below the command line reads this value, never the
parsed options; a batch's pairs are each a RunConfig of their own (for_pair).
"""
import dataclasses
import os
import re
import secrets

import stylize
from styletransfer.media import video
from styletransfer.run import options

COMMAND_LINE_ONLY = frozenset({'version', 'show_settings', 'settings_from'})  # acted on before any run
CHOSEN = frozenset({'style_weight', 'seed'})  # None on the command line: from_options chooses them


def _field_type(option):
    """The type of an option's value in a RunConfig, from its entry in the table: a flag's bool, a list's (or a
    comma-separated word's) tuple, a whole number's int, another number's float, else a str; or None when
    neither given nor chosen."""
    if option.action == 'store_true':
        kind = bool
    elif option.nargs or option.type in options.COMMA_SEPARATED:
        kind = tuple
    elif option.whole_number:
        kind = int
    else:
        kind = str if option.type is None else float
    optional = option.default is None and not option.required and option.dest not in CHOSEN
    return kind | None if optional else kind


def _inputs(config):
    """The files the run reads, (option, path): the contents, the styles, the masks and --initial."""
    return ([('--content', path) for path in config.content] + [('--styles', path) for path in config.styles] +
            [('--style-masks', path) for path in config.style_masks or []] +
            [('--initial', config.initial)] * bool(config.initial))


# The options of a run, one typed field per option of the table (options.py) besides COMMAND_LINE_ONLY, each the
# parsed value with lists as tuples; then what the run works out: the kind of run (options.IMAGE, VIDEO or BATCH)
# and whether --seed gave the seed (a clip's finished frames are keyed by it). An image's iterations default to
# stylize.ITERATIONS; a clip's stay None, video.py's defaults.
_WORKED_OUT = (('kind', str), ('seed_given', bool))
RunConfig = dataclasses.make_dataclass(
    'RunConfig', [(option.dest, _field_type(option)) for option in options.table()
                  if option.dest not in COMMAND_LINE_ONLY] + list(_WORKED_OUT),
    frozen=True, namespace={'inputs': _inputs, '__module__': __name__,
                            '__doc__': "A run's options and what it chose (from_options)."})


def from_options(parsed, kind=None):
    """The RunConfig of the command line's parsed options (an argparse Namespace), of the `kind` of run the
    options name unless one is given. A run without --seed gets a seed of its own, recorded in its images so that
    they can be made again (white noise from a chosen seed is as random as from none); without --style-weight,
    the beta of its network, recorded too (a later version may change the default). Raises video.ClipError for a
    content named like a video that ffmpeg cannot read."""
    given = {field.name: options.frozen(getattr(parsed, field.name)) for field in dataclasses.fields(RunConfig)
             if field.name not in dict(_WORKED_OUT)}
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
