"""A batch: several contents and styles in one command. Each pair is a job.Run of its own, of a
run_config.RunConfig of its own (run_config.for_pair), all sharing one loaded network; the outputs are named by a
pattern, and those already there are skipped, so that running the same command again continues the batch. run()
runs it, printing as the command line does.

Which pairs: every content file given, and every image file in a content directory, with each style of the
styles: a directory of styles (or a directory among --styles) makes one pair per style file; several style files
alone are blended into one style, as in a single run (one output per content).
"""
import dataclasses
import os
import sys
import time
from dataclasses import dataclass

from styletransfer.media import files
from styletransfer.run import console, job, options, run_config

UNFINISHED = '.unfinished'  # beside a pair's output while it runs and after it stopped: a rerun redoes that pair


@dataclass
class Pair:
    """A pair of the batch: its number (1-based), the content file, the style files blended, the output, and
    the configuration of its run (run_config.for_pair)."""
    number: int
    content: str
    styles: list
    output: str
    config: run_config.RunConfig

    def unfinished_marker(self):
        return self.output + UNFINISHED

    def pending(self):
        """Whether the pair is still to be run: its output is missing, unfinished, or to be redone (--overwrite)."""
        return (self.config.overwrite or not os.path.exists(self.output)
                or os.path.exists(self.unfinished_marker()))

    def start(self):
        """Marks the output unfinished until finish(); returns the configuration to run, which may replace an
        output left unfinished."""
        config = self.config
        if os.path.exists(self.unfinished_marker()):
            config = dataclasses.replace(config, overwrite=True)
        files.write_atomically(self.unfinished_marker(), lambda f: f.write(
            b'neural_style.py has not finished the image beside this file: run the same batch again to redo it\n'))
        return config

    def finish(self):
        """The output is finished: the marker goes."""
        os.unlink(self.unfinished_marker())

    def stopped(self):
        """The run stopped: the marker stays beside an output written (the best image so far), and only there."""
        if not os.path.exists(self.output):
            self.finish()


def image_files(paths, option):
    """The files of `paths`: each file as given, and a directory's image files (by the extensions Pillow knows,
    hidden files left out) sorted by name."""
    from PIL import Image

    known, found = Image.registered_extensions(), []
    for path in paths:
        if not os.path.isdir(path):
            found.append(path)
            continue
        inside = sorted(os.path.join(path, name) for name in os.listdir(path)
                        if not name.startswith('.') and os.path.splitext(name)[1].lower() in known
                        and not os.path.isdir(os.path.join(path, name)))
        if not inside:
            raise job.UserError(f'{option} directory {path} holds no image files')
        found += inside
    return found


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def pairs(config):
    """The pairs of a batch's configuration, in order (contents, then styles). UserError for a batch it cannot
    name, before any work."""
    contents = image_files(config.content, '--content')
    styles = image_files(config.styles, '--styles')
    groups = [[style] for style in styles] if any(os.path.isdir(path) for path in config.styles) else [styles]
    pattern = run_config.output_pattern(config.output)
    if pattern is None:
        raise job.UserError(f'a batch ({len(contents) * len(groups)} pair(s)) needs an output directory (--output '
                            f'DIR/) or a name pattern with {{content}} and {{style}}, not the one file {config.output}')
    # An image's options that a batch does not take each name one file; a video's are refused by the first
    # pair's checks (prepare), as for a single image.
    for option in options.refused(config, options.BATCH):
        if options.IMAGE in option.applies:
            raise job.UserError(f'{option.flag} names one file: it is not for a batch of pairs')
    found, seen = [], {}
    for content in contents:
        for group in groups:
            try:
                output = pattern.format(content=_stem(content), style='+'.join(_stem(style) for style in group))
            except (KeyError, IndexError, ValueError):
                raise job.UserError(f'--output {config.output}: a name pattern may hold {{content}} and {{style}} '
                                    f'only') from None
            described = f'{content} with {" + ".join(group)}'
            earlier = seen.setdefault(os.path.realpath(output), described)
            if earlier != described:
                raise job.UserError(f'--output {config.output} names {output} for two pairs, {earlier} and '
                                    f'{described}: put {{content}} and {{style}} in the pattern, or rename a file')
            found.append(Pair(len(found) + 1, content, group, output,
                              run_config.for_pair(config, content, group, output)))
    return found


def prepare(batch):
    """Makes the outputs' directories and checks the options once, on the first pair; UserError (or another of
    job.USER_ERRORS) for what would fail every pair."""
    for directory in sorted({os.path.dirname(os.path.abspath(pair.output)) for pair in batch}):
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as error:
            raise files.PathError(f'cannot make the output directory {directory}: {error.strerror}') from None
    # Whether the first output exists is that pair's business.
    job.check_options(dataclasses.replace(batch[0].config, overwrite=True))


def run(pairs, net, run_image, describe, prog):
    """Runs the pending pairs, one network for all (`net`, or loaded here), printing each pair's progress with
    run_image(job.Run, label, batch_remaining) and what happens to each pair; a pair that fails is reported in a
    sentence and the batch goes on; an interrupt writes the current pair's best image and stops (job.Stopped).
    describe: as job.Run's. Raises job.Stopped (status 1) at the end if a pair failed."""
    prepare(pairs)
    pending = [pair for pair in pairs if pair.pending()]
    print(f'batch of {len(pairs)} pairs: {len(pairs) - len(pending)} done before, {len(pending)} to run', flush=True)
    if pending:
        net = net or job.load_network(pairs[0].config)  # fetched on first use, as a single run does
    started, iterations_done, written, failed = time.perf_counter(), 0, 0, {}  # failed: why -> pair numbers
    for pair in pairs:
        label = f'pair {pair.number}/{len(pairs)}  '
        if pair not in pending:
            print(f'{label}{pair.output} exists: skipped (--overwrite redoes it)', flush=True)
            continue
        pending.remove(pair)
        print(f'{label}{pair.content} in the style of {" + ".join(pair.styles)}', flush=True)
        config = pair.start()
        try:
            job.check_options(config)
            image_run = job.load(config, net, describe)
        except job.USER_ERRORS as error:
            pair.stopped()
            print(f'{prog}: {label}skipped: {error}', file=sys.stderr, flush=True)
            failed.setdefault(str(error), []).append(pair.number)
            continue
        except KeyboardInterrupt as interrupt:
            pair.stopped()
            raise job.Stopped(f'interrupted ({console.signal_name(interrupt)}) before {label.strip()} started; '
                              f'{written} pair(s) written; run the same command again to finish the batch',
                              console.signal_exit_code(interrupt)) from None
        per_pair, left = sum(image_run.iterations), len(pending)

        def batch_remaining(done_in_pair):
            done = iterations_done + done_in_pair
            return (time.perf_counter() - started) / done * (per_pair * (left + 1) - done_in_pair) if done else None

        try:
            run_image(image_run, label, batch_remaining)
        except job.Stopped as stop:
            pair.stopped()
            if stop.code != 1:  # an interrupt: the batch stops
                raise job.Stopped(f'{label.strip()}: {stop}; run the same command again to finish the batch (this '
                                  f'pair is done again)', stop.code) from None
            print(f'{prog}: {label}{stop}', file=sys.stderr, flush=True)
            failed.setdefault(str(stop), []).append(pair.number)
            continue
        pair.finish()
        iterations_done += per_pair
        written += 1
    failures = sum(len(numbers) for numbers in failed.values())
    print(f'batch of {len(pairs)} pairs: {written} written, {len(pairs) - written - failures} skipped (done before), '
          f'{failures} failed, in {console.format_duration(time.perf_counter() - started)}', flush=True)
    if failed:
        raise job.Stopped(f'{failures} of {len(pairs)} pairs failed: ' + '; '.join(
            f'{why} (pair{"s" * (len(numbers) > 1)} {", ".join(map(str, numbers))})' for why, numbers in failed.items()), 1)
