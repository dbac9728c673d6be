"""run_config.py: the run's configuration, built once from the parsed options without changing them, with the
seed, beta and iterations the run chooses and the kind of run the options name."""
import copy
import dataclasses

import pytest

import neural_style
import stylize
from styletransfer.media import video
from styletransfer.run import options, run_config
from helpers import random_image, save

# The options that act, or are consumed, on the command line before there is a run.
COMMAND_LINE_ONLY = {'version', 'show_settings', 'settings_from'}


def parsed(tmp_path, *extra, content=None):
    return neural_style.build_parser().parse_args(
        ['--content', content or save(tmp_path / 'c.png', random_image(8, 8, seed=1)), '--styles',
         str(tmp_path / 's.png'), '--output', str(tmp_path / 'out.png'), *extra])


def test_a_field_for_each_option_a_run_reads_and_for_what_the_building_works_out():
    fields = {field.name for field in dataclasses.fields(run_config.RunConfig)}
    assert fields == {o.dest for o in options.table()} - COMMAND_LINE_ONLY | {'kind', 'seed_given'}


def test_each_field_has_the_type_of_its_options_values():
    types = {field.name: field.type for field in dataclasses.fields(run_config.RunConfig)}
    assert {name: types[name] for name in ('overwrite', 'content', 'cluster_timeouts', 'width', 'max_size', 'tolerance',
                                           'learning_rate', 'seed', 'style_weight', 'iterations', 'pooling',
                                           'initial')} == {
        'overwrite': bool, 'content': tuple, 'cluster_timeouts': tuple | None, 'width': int | None, 'max_size': int,
        'tolerance': float | None, 'learning_rate': float, 'seed': int, 'style_weight': float,
        'iterations': tuple | None, 'pooling': str, 'initial': str | None}


def test_the_seed_and_beta_are_chosen_without_changing_the_parsed_options(tmp_path):
    args = parsed(tmp_path)
    before = copy.deepcopy(vars(args))
    config = run_config.from_options(args)
    assert vars(args) == before
    assert isinstance(config.seed, int) and not config.seed_given
    assert config.style_weight == stylize.STYLE_WEIGHT and config.iterations == (stylize.ITERATIONS,)
    assert config.kind == options.IMAGE and config.content == (args.content[0],)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 1
    normalized = run_config.from_options(parsed(tmp_path, '--normalize-network'))
    assert normalized.style_weight == stylize.NORMALIZED_STYLE_WEIGHT
    given = run_config.from_options(parsed(tmp_path, '--seed', '7', '--style-weight', '5', '--iterations', '2'))
    assert (given.seed, given.seed_given, given.style_weight, given.iterations) == (7, True, 5.0, (2,))


def test_a_clip_leaves_its_iterations_to_video_py(tmp_path):
    clip = str(tmp_path / 'clip.mp4')
    video.write_clip(clip, [random_image(16, 16, seed=k).astype('uint8') for k in range(2)], 10)
    config = run_config.from_options(parsed(tmp_path, content=clip))
    assert (config.kind, config.iterations) == (options.VIDEO, None)


def test_each_pair_of_a_batch_gets_a_seed_of_its_own_unless_one_is_given(tmp_path):
    batch = run_config.from_options(parsed(tmp_path, '--max-size', '16'))
    pairs = [run_config.for_pair(batch, f'c{k}.png', ['s.png'], f'o{k}.png') for k in range(8)]
    assert len({pair.seed for pair in pairs}) > 1 and not any(pair.seed_given for pair in pairs)
    assert pairs[0].content == ('c0.png',) and pairs[0].styles == ('s.png',) and pairs[0].max_size == 16
    seeded = run_config.from_options(parsed(tmp_path, '--seed', '3'))
    assert {run_config.for_pair(seeded, 'c.png', ['s.png'], f'o{k}.png').seed for k in range(4)} == {3}
