"""Files written so that nothing is lost: atomically, with the mode the user's umask gives, after checking that
they can be written, that no two outputs are one file and that no output is an input; files' digests; a
checkpoint's name; and a new name beside a file for a run that continues it."""
import glob
import hashlib
import os
import stat
import tempfile


class PathError(Exception):
    """A path that cannot be written, or may not be replaced: one sentence for the user."""


def umask():
    """The process's umask, which can only be read by setting it: set to the usual value and put back."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temporary_beside(path, suffix='.tmp'):
    """A new hidden temporary file in `path`'s directory, to be renamed over `path`: (descriptor, its path),
    its name ending in `suffix`. It has the mode the file will keep: an existing file's, else what open() gives
    a new file under the umask (mkstemp makes it owner-only, and the mode survives the rename)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=directory, prefix='.' + os.path.basename(path) + '.', suffix=suffix)
    try:
        os.fchmod(fd, stat.S_IMODE(os.stat(path).st_mode) if os.path.exists(path) else 0o666 & ~umask())
    except BaseException:
        os.close(fd)
        os.unlink(temporary)
        raise
    return fd, temporary


def temporary_directory_beside(path):
    """A new hidden temporary directory in `path`'s directory, to be renamed over `path`, with the mode
    os.mkdir gives under the umask (mkdtemp makes it owner-only, and the mode survives the rename)."""
    directory = os.path.dirname(os.path.abspath(path))
    temporary = tempfile.mkdtemp(dir=directory, prefix='.' + os.path.basename(path) + '.', suffix='.tmp')
    os.chmod(temporary, 0o777 & ~umask())
    return temporary


def write_atomically(path, write):
    """Calls write(file) on a temporary file beside `path` (temporary_beside), then renames it over `path`: a
    crash never leaves half a file."""
    fd, temporary = temporary_beside(path)
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def check_writable(path, overwrite):
    """Raises PathError unless `path` can be written: it does not exist (or `overwrite`), is not a directory, and
    a temporary file beside it can be made."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.exists(path) and not overwrite:
        raise PathError(f'{path} exists; choose another name or pass --overwrite')
    if os.path.isdir(path):
        raise PathError(f'{path} is a directory')
    if not os.path.isdir(directory):
        raise PathError(f'cannot write {path}: directory {directory} does not exist')
    if not os.access(directory, os.W_OK):
        raise PathError(f'cannot write {path}: directory {directory} is not writable')
    try:  # the file system has the last word (/proc, a read-only mount, a name too long): try it
        fd, temporary = temporary_beside(path)
        os.close(fd)
        os.unlink(temporary)
    except OSError as error:
        raise PathError(f'cannot write {path}: {error.strerror or error}') from None


def check_distinct(outputs):
    """Refuses two outputs, (option, path), on one file: the later write would replace the earlier silently."""
    seen = {}
    for option, path in outputs:
        earlier = seen.setdefault(os.path.realpath(path), (option, path))
        if earlier != (option, path):
            raise PathError(f'{earlier[0]} {earlier[1]} and {option} {path} are the same file; give each output '
                            f'a name of its own')


def check_not_an_input(outputs, inputs):
    """Refuses an output, (option, path), that is one of the inputs, (option, path), by its name or as the same
    file (a hard link, a symbolic link): writing it would destroy the input, --overwrite or not."""
    for option, path in outputs:
        for input_option, input_path in inputs:
            same = os.path.realpath(path) == os.path.realpath(input_path)
            if not same and os.path.exists(path) and os.path.exists(input_path):
                same = os.path.samefile(path, input_path)
            if same:
                raise PathError(f'{option} {path} is the same file as {input_option} {input_path}: writing it '
                                f'would destroy that input (refused even with --overwrite); give the output a '
                                f'name of its own')


def checkpoint_path(pattern, iteration):
    """--checkpoint-output's file for an iteration: every %s replaced by its number, any other % kept."""
    return pattern.replace('%s', str(iteration))


def digests(path, hashes):
    """Feeds the file at `path` into each of `hashes` (hashlib objects) in one read; returns them."""
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            for digest in hashes:
                digest.update(block)
    return hashes


def file_digest(path):
    """SHA256 of a file's contents, in hex."""
    return digests(path, [hashlib.sha256()])[0].hexdigest()


def continued_path(path):
    """A name for the continuation of a run's file `path`: `out.png` -> `out-continued.png`, or
    `out-continued-2.png` (3, ...) when that exists; a --checkpoint-output pattern's %s is kept."""
    stem, extension = os.path.splitext(path)
    number, candidate = 1, f'{stem}-continued{extension}'
    while os.path.exists(candidate) or '%s' in candidate and glob.glob(glob.escape(candidate).replace('%s', '*')):
        number += 1
        candidate = f'{stem}-continued-{number}{extension}'
    return candidate
