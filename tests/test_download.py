"""`python vgg.py download` against a local HTTP server: success, resume, and each failure in one line."""
import hashlib
import http.server
import os
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest

import vgg
from conftest import ROOT

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
    # Issue 19, item 10: through Keras, its "URL fetch failure on ...: None -- [Errno ...]" was printed
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


def test_keras_source_goes_through_keras_get_file(server, tmp_path, capsys):
    code = vgg.main(['download', '--source', 'keras', '--url', server.url, '--sha256', SHA256,
                     '--dest', str(tmp_path)])
    assert code == 0
    assert (tmp_path / vgg.KERAS_WEIGHTS_FILE).read_bytes() == DATA
    server.mode = 'wrong'
    code = vgg.main(['download', '--source', 'keras', '--url', server.url, '--sha256', SHA256,
                     '--dest', str(tmp_path / 'other')])
    assert code == 1 and 'hash does not match' in error_line(capsys.readouterr().err)
    assert os.listdir(tmp_path / 'other') == []
