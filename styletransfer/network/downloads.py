"""Verified downloads: a file fetched over HTTP(S) takes its final name only once its digest matches the one its
distributor publishes; a cut download resumes (HTTP Range); a progress bar shows it; and several sources of the
same thing are tried in turn, each failure said in one line.

This module knows HTTP, files and digests, nothing about what it fetches: the caller names each Source.
"""
import errno
import hashlib
import http.client
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from styletransfer.media import files

DOWNLOAD_TIMEOUT = 60  # seconds without a byte before an explicit download counts as cut
CHUNK = 1 << 20


class DownloadError(Exception):
    """A download failed; the message says why and what to do, in one sentence."""


@dataclass(frozen=True)
class Source:
    """One file to fetch: what it is (in words), where from, where to, and its published digest."""
    what: str
    url: str
    path: str  # the final file; the bytes go to path + '.part' until verified
    digest: str  # hashlib's name of the published digest: 'sha256' or 'md5'
    expected: str  # its hex value


class ProgressBar:
    """`  123.4/534.9 MB [#######.............]  24%  5.2 MB/s` on one line of `stream`, redrawn at most 5 times
    a second."""

    def __init__(self, stream, total, done):
        self.stream, self.total, self.start_done = stream, total, done
        self.started = self.drawn = time.monotonic()

    def update(self, done, final=False):
        now = time.monotonic()
        if not final and now - self.drawn < 0.2:
            return
        self.drawn = now
        rate = (done - self.start_done) / max(now - self.started, 1e-9) / 1e6
        line = f'{done / 1e6:8.1f}'
        if self.total:
            filled = int(30 * done / self.total)
            line += f'/{self.total / 1e6:.1f} MB [{"#" * filled}{"." * (30 - filled)}] {100 * done / self.total:3.0f}%'
        else:
            line += ' MB'
        self.stream.write(f'\r{line}  {rate:.1f} MB/s' + ('\n' if final else ''))
        self.stream.flush()


def _hash(source):
    return hashlib.new(source.digest)


def fetch(source, stream, timeout=DOWNLOAD_TIMEOUT, unreachable_hint=''):
    """Fetches `source` to source.path and returns that path; a file already there is verified, not fetched.

    `timeout`: seconds to wait for the connection, the answer, and each later read. Raises DownloadError with one
    sentence on failure (for a host that cannot be reached, ending with `unreachable_hint`, such as how to name a
    mirror); a cut download leaves its .part, which the next call resumes.
    """
    final, part = source.path, source.path + '.part'
    directory = os.path.dirname(os.path.abspath(final))
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as error:
        raise DownloadError(f'cannot create the directory {directory}: {error.strerror}') from None
    if os.path.exists(final):
        digest = files.digests(final, [_hash(source)])[0].hexdigest()
        if digest != source.expected:
            raise DownloadError(f'{final} exists but its {source.digest.upper()} is {digest}, not {source.expected}: '
                                f'move it away and run the command again')
        stream.write(f'{final} is already there ({source.digest.upper()} verified)\n')
        return final
    if not os.access(directory, os.W_OK):
        raise DownloadError(f'cannot write into {directory}: it is read-only')
    offset = os.path.getsize(part) if os.path.exists(part) else 0
    request = urllib.request.Request(source.url, headers={'Range': f'bytes={offset}-'} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # the part is as long as the file already (or longer): check it
            return _finish(source, files.digests(part, [_hash(source)])[0], stream)
        raise DownloadError(f'{source.url} answered HTTP {error.code} {error.reason}: the link may be dead') from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        reason = getattr(error, 'reason', None) or error or 'no answer'
        if isinstance(reason, TimeoutError) or 'timed out' in str(reason):
            reason = f'no answer within {timeout:g} s'
        reason = getattr(reason, 'strerror', None) or reason  # "Connection refused", not "[Errno 111] ..."
        raise DownloadError(f'cannot reach {urllib.parse.urlsplit(source.url).netloc or source.url}: {reason}; check '
                            f'the network connection{unreachable_hint}') from None
    with response:
        if 'html' in response.headers.get('Content-Type', ''):
            raise DownloadError(f'{source.url} served an HTML page, not {source.what} (a dead link or a login page?)')
        resumed = response.status == 206 and response.headers.get('Content-Range', '').startswith(f'bytes {offset}-')
        if not resumed:
            offset = 0  # the server sends the whole file: start again
        length = response.headers.get('Content-Length')
        total = offset + int(length) if length and length.isdigit() else None
        digest = files.digests(part, [_hash(source)])[0] if offset else _hash(source)
        stream.write(f'{"resuming" if offset else "downloading"} {source.what} from {source.url} to {final}\n')
        done = _receive(response, part, offset, digest, ProgressBar(stream, total, offset), source)
    if total is not None and done < total:
        raise DownloadError(f'the connection broke after {done / 1e6:.1f} of {total / 1e6:.1f} MB; run the same '
                            f'command again to resume')
    return _finish(source, digest, stream)


def _receive(response, part, offset, digest, bar, source):
    """Appends the response's body to `part` (from `offset`), updating `digest`; returns the bytes in `part`."""
    done = offset
    try:
        f = open(part, 'ab' if offset else 'wb')
    except OSError as error:
        raise DownloadError(f'cannot write {part}: {error.strerror}') from None
    with f:
        while True:
            try:
                chunk = response.read(CHUNK)
            except (OSError, http.client.HTTPException) as error:  # reset, timed out, cut short
                bar.update(done, final=True)
                raise DownloadError(f'the connection broke after {done / 1e6:.1f} MB ({error}); run the same '
                                    f'command again to resume') from None
            if not chunk:
                break
            if done == 0 and chunk.lstrip()[:1] == b'<':
                f.close()
                os.unlink(part)
                raise DownloadError(f'{source.url} served an HTML page, not {source.what} (a dead link or a login '
                                    f'page?)')
            try:
                f.write(chunk)
                f.flush()
            except OSError as error:
                bar.update(done, final=True)
                if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                    raise DownloadError(f'no room to write {part} ({error.strerror}) after {done / 1e6:.1f} MB: '
                                        f'free some space and run the same command again to resume') from None
                raise DownloadError(f'cannot write {part}: {error.strerror}') from None
            digest.update(chunk)
            done += len(chunk)
            bar.update(done)
        bar.update(done, final=True)
        os.fsync(f.fileno())
    return done


def _finish(source, digest, stream):
    """Gives the .part its final name if its digest is the expected one; deletes it otherwise. The file keeps
    the mode open() gave it under the umask."""
    part, name = source.path + '.part', source.digest.upper()
    if digest.hexdigest() != source.expected:
        os.unlink(part)
        raise DownloadError(f'the downloaded file has {name} {digest.hexdigest()}, not the expected {source.expected}: '
                            f'deleted it; run the command again, or check the address and the digest')
    os.replace(part, source.path)
    stream.write(f'saved {source.path} ({name} verified)\n')
    return source.path


def fetch_first(sources, stream, timeout):
    """Fetches the first of `sources` that can be had, trying them in order; says in one line on `stream` why each
    one before it failed. Returns (the path, its Source); raises DownloadError naming every failure if none
    could be had."""
    failures = []
    for source in sources:
        try:
            return fetch(source, stream, timeout), source
        except DownloadError as error:
            stream.write(f'could not get {source.what}: {error}\n')
            failures.append(f'{source.what}: {error}')
    raise DownloadError('none of the sources could be had (' + '; '.join(failures) + ')')
