"""The option table (options.py) against what is built from it, and against what the docs promise."""
import dataclasses
import fnmatch
import os
import re
import shlex

import pytest

import neural_style
import stylize
from styletransfer.run import batch, job, options, run_config
from helpers import ROOT, random_image, save

# A value other than the default, as command-line text, for each way of reading an option's text.
SAMPLES = {int: '16', options.positive_int: '2', options.positive_ints: '2', options.scales: '16,32',
           options.non_negative_int: '2', options.positive_float: '2.5', options.non_negative_float: '2.5',
           options.fraction: '0.5', options.layer: 'relu1_1', options.cluster_timeouts: '1,2'}
# The Settings fields that the run sets itself, not an option.
SET_BY_THE_RUN = {'iterations', 'temporal_weight', 'max_memory'}
TAKEN = [option for option in options.table() if option.applies and not option.required]


def sample(option, directory):
    """The words that give `option` a value other than its default."""
    if option.action == 'store_true':
        return [option.flag]
    if option.choices:
        return [option.flag, str(next(choice for choice in option.choices if choice != option.default))]
    return [option.flag, SAMPLES[option.type] if option.type else str(directory / 'x')]


def parse(directory, *extra, output='out.png'):
    return neural_style.build_parser().parse_args(
        ['--content', str(directory / 'c.png'), '--styles', str(directory / 's.png'),
         '--output', f'{directory}/{output}', *extra])


def test_the_parser_has_the_tables_options_and_no_other(monkeypatch, tmp_path):
    monkeypatch.setenv('COLUMNS', '10000')  # one line per option: the help texts are whole
    parser = neural_style.build_parser()
    assert set(re.findall(r'(?<![\w-])--[a-z0-9-]+', parser.format_usage())) == {o.flag for o in options.table()}
    text = ' '.join(parser.format_help().split())
    for option in options.table():
        assert ' '.join(option.help.replace('%%', '%').split()) in text, option.flag
    for option in TAKEN:
        assert parser.get_default(option.dest) == option.default, option.flag
        words = sample(option, tmp_path)
        assert getattr(parse(tmp_path, *words), option.dest) != option.default, option.flag


def test_the_recorded_command_holds_exactly_the_recorded_options(tmp_path):
    for option in TAKEN:
        args = parse(tmp_path, *sample(option, tmp_path))
        again = parse(tmp_path, *shlex.split(neural_style.command_line(run_config.from_options(args)))[2:])
        expected = getattr(args, option.dest) if option.recorded else option.default
        assert getattr(again, option.dest) == expected, option.flag


def refusal(check, args):
    """The sentence in which `check` refuses an option of `args` (the parsed options, their run_config.RunConfig
    built as the command line builds it) for its kind of run, or None: a refusal names the option first and the
    kind of run (a video, a batch)."""
    try:
        check(run_config.from_options(args))
    except job.USER_ERRORS as error:
        message = str(error)
        if re.match(r'--[a-z0-9-]+ ', message) and ('video' in message or 'batch' in message):
            return message
    return None


@pytest.mark.parametrize('option', TAKEN, ids=lambda option: option.flag)
def test_each_run_refuses_exactly_the_options_the_table_does_not_apply_to_it(option, tmp_path):
    for name in ('c.png', 's.png'):
        save(tmp_path / name, random_image(16, 16, seed=1))
    words = sample(option, tmp_path)
    runs = {options.IMAGE: (job.check_options, 'out.png'), options.VIDEO: (job.check_video_options, 'out.mp4'),
            options.BATCH: (lambda config: batch.prepare(batch.pairs(config)), 'out/')}
    for run, (check, output) in runs.items():
        message = refusal(check, parse(tmp_path, *words, output=output))
        assert (message is not None) == (run not in option.applies), (run, message)
        if message:
            assert message.startswith(option.flag + ' ')


def test_every_settings_field_but_the_runs_own_is_fed_by_one_option(tmp_path):
    fed = [option.setting for option in options.table() if option.setting]
    assert len(fed) == len(set(fed))
    assert set(fed) == {field.name for field in dataclasses.fields(stylize.Settings)} - SET_BY_THE_RUN
    for option in options.table():
        if option.setting:
            words = sample(option, tmp_path)
            if option.setting.endswith('_layer_weights'):  # one per layer of the default layers
                words += words[1:] * (len(options.named(option.setting.replace('_weights', 's')).default) - 1)
            args = parse(tmp_path, *words)
            value = getattr(args, option.dest)
            expected = tuple(value) if isinstance(value, list) else value  # Settings holds lists as tuples
            assert getattr(job.run_settings(run_config.from_options(args)), option.setting) == expected, option.flag


def flags_in(text):
    """The flags a passage of the docs names in backticks, `--checkpoint-*` standing for each it matches."""
    named = re.findall(r'`(--[a-z0-9*-]+)[^`]*`', text)
    return {flag for pattern in named for flag in fnmatch.filter([o.flag for o in options.table()], pattern)}


def passage(document, start, end):
    with open(os.path.join(ROOT, 'docs', document)) as f:
        text = ' '.join(f.read().split())
    return text[text.index(start):text.index(end, text.index(start))]


def test_the_docs_name_what_a_video_and_a_batch_refuse():
    """The table against the promise written independently of it: a table entry that drifts fails here."""
    for_images = {o.flag for o in TAKEN if options.VIDEO not in o.applies}
    assert flags_in(passage('video.md', 'Not supported for a video', 'frames are evaluated untiled')) == for_images
    video_only = {o.flag for o in TAKEN if options.IMAGE not in o.applies}
    listed = flags_in(passage('video.md', '| option | meaning |', 'Everything else applies'))
    assert video_only <= listed and all(options.VIDEO in options.named(flag[2:].replace('-', '_')).applies
                                        for flag in listed)
    single_image = {o.flag for o in TAKEN if options.IMAGE in o.applies and options.BATCH not in o.applies}
    assert flags_in(passage('batches.md', 'the options that name one file', 'are refused')) == single_image


def test_the_pages_fields_are_the_tables_in_its_order(tmp_path):
    import app
    places = [option.page for option in options.page_fields()]
    assert places == list(range(1, len(places) + 1))
    page = app.build_page(app.Painter(str(tmp_path)))
    (paint,) = [fn for fn in page.fns.values() if fn.api_name == 'paint']
    fields = paint.inputs[2:]  # after the content and the styles
    assert [field.info for field in fields] == [o.help.replace('%%', '%') for o in options.page_fields()]
