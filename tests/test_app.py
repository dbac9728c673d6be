"""The page (app.py): its handler as a function, the page over HTTP with gradio_client, and in headless Chromium."""
import glob
import hashlib
import os
import shlex
import socket
import stat
import subprocess
import sys
import time
from importlib.metadata import version

import numpy as np
import pytest
from PIL import Image

import app
import neural_style
from styletransfer.testing import browser
from helpers import ROOT, random_image, save
from styletransfer.testing.workers import free_port, terminate

# The page's settings (Painter.SETTINGS) for a quick run: beta 10^4 (the default), 3 iterations at 16 px, seed 0,
# the rest as the page starts.
SETTINGS = dict(style_weight=4.0, iterations=3, max_size=16, optimizer='lbfgs', init='noise', preserve_colors='off',
                seed=0, content_weight=1.0, tv_weight=3.0, pooling='avg', scales='', learning_rate=10.0,
                precision='auto')
# The same run on the command line, written out by hand.
COMMAND = ['--iterations', '3', '--max-size', '16', '--seed', '0']


def settings(**changes):
    values = dict(SETTINGS, **changes)
    return [values[name] for name in app.Painter.FIELDS]


def read(path):
    with Image.open(path) as image:
        return np.asarray(image.convert('RGB'))


@pytest.fixture(scope='module')
def reference(tmp_path_factory, network_path):
    """A content and a style image, and what neural_style.py writes for them with COMMAND."""
    directory = tmp_path_factory.mktemp('reference')
    content = save(directory / 'photo.png', random_image(18, 24, seed=1))
    style = save(directory / 'painting.png', random_image(20, 20, seed=2))
    output = str(directory / 'out.png')
    assert neural_style.main(['--content', content, '--styles', style, '--network', network_path,
                              '--output', output, '--print-iterations', '0'] + COMMAND) == 0
    return dict(content=content, style=style, network=network_path, output=output, dir=directory)


@pytest.fixture
def painter(tmp_path, network_path):
    """The page's runs, showing every step."""
    return app.Painter(str(tmp_path), network=network_path, refresh_seconds=0, drawing_share=1)


def test_the_handler_streams_the_run_and_ends_with_what_the_command_line_writes(painter, reference):
    updates = list(painter.paint(reference['content'], [reference['style']], *settings()))
    intermediate = [update for update in updates if isinstance(update.image, np.ndarray)]
    assert [update.status.split()[:2] for update in intermediate] == [['iteration', f'{i}/3'] for i in range(4)]
    assert all(update.image.shape == (12, 16, 3) and update.image.dtype == np.uint8 for update in intermediate)
    assert all(update.plot is not None for update in intermediate)
    final = updates[-1]
    assert final.status.startswith('done: iteration 3/3')
    assert final.image == final.download and os.path.basename(final.download) == app.OUTPUT_NAME
    np.testing.assert_array_equal(read(final.image), read(reference['output']))
    np.testing.assert_array_equal(intermediate[-1].image, read(reference['output']))
    assert final.command == shlex.join(['python', 'neural_style.py', '--content', 'photo.png', '--styles',
                                        'painting.png', '--output', app.OUTPUT_NAME, '--network',
                                        reference['network']] + COMMAND)
    assert len(final.plot.axes[0].get_lines()[0].get_xdata()) == 4  # iterations 0..3


def test_stop_keeps_the_best_image_so_far(painter, reference, tmp_path):
    steps = painter.paint(reference['content'], [reference['style']], *settings())
    for update in steps:
        if isinstance(update.image, np.ndarray):  # iteration 0 shown: Stop
            painter.stop()
            break
    final = list(steps)[-1]
    assert final.status == 'stopped at iteration 1: the best image so far is below'
    # L-BFGS's first iteration is the same in a run of 1 iteration: that run's output is the image kept.
    one = str(tmp_path / 'one.png')
    assert neural_style.main(['--content', reference['content'], '--styles', reference['style'], '--network',
                              reference['network'], '--output', one, '--print-iterations', '0', '--iterations',
                              '1', '--max-size', '16', '--seed', '0']) == 0
    np.testing.assert_array_equal(read(final.download), read(one))


def test_the_command_lines_errors_are_shown_in_one_sentence(painter, reference, tmp_path):
    def status(content, styles, **changes):
        updates = list(painter.paint(content, styles, *settings(**changes)))
        assert updates[-1].image is None and updates[-1].download is None
        return updates[-1].status

    broken = tmp_path / 'broken.png'
    broken.write_text('not an image')
    assert status(str(broken), [reference['style']]).startswith('neural_style.py: error: image broken.png could '
                                                                'not be read: ')  # named as given, not by Gradio's copy
    assert status(reference['content'], [reference['style']], scales='12,x') == \
        'neural_style.py: error: argument --scales: must be an integer, not x'
    assert status(None, [reference['style']]) == 'Give a content image and at least one style image.'
    missing = app.Painter(str(tmp_path), network=str(tmp_path / 'none.mat'), refresh_seconds=0, drawing_share=1)
    message = list(missing.paint(reference['content'], [reference['style']], *settings()))[-1].status
    assert message.startswith('neural_style.py: error: ') and 'none.mat' in message and '\n' not in message


def test_one_run_at_a_time(tmp_path):
    page = app.build_page(app.Painter(str(tmp_path)))
    runs = [fn for fn in page.fns.values() if fn.api_name == 'paint']
    assert len(runs) == 1 and runs[0].concurrency_limit == 1 and runs[0].queue


def test_the_footer_names_the_versions_and_the_network(tmp_path, network_path):
    """What a bug report needs, on the page as neural_style.py --version prints it."""
    page = app.build_page(app.Painter(str(tmp_path), network_path))
    (footer,) = [block for block in page.blocks.values() if getattr(block, 'elem_id', None) == 'versions']
    with open(network_path, 'rb') as f:
        sha256 = hashlib.sha256(f.read()).hexdigest()
    assert footer.value == (f'neural-style {neural_style.VERSION} · TensorFlow {version("tensorflow")} · '
                            f'numpy {version("numpy")} · network {network_path}, SHA256 {sha256}')


@pytest.fixture(scope='module')
def server(tmp_path_factory, network_path):
    """app.py on 127.0.0.1 at a free port, with nothing sent off the machine, for this module's tests; stopped at
    the end, pass or fail."""
    tmp_path = tmp_path_factory.mktemp('server')
    port, log = free_port(), tmp_path / 'server.log'
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED='False', GRADIO_TEMP_DIR=str(tmp_path / 'gradio'),
               TMPDIR=str(tmp_path), TF_CPP_MIN_LOG_LEVEL='3')
    with open(log, 'w') as out:
        process = subprocess.Popen([sys.executable, os.path.join(ROOT, 'app.py'), '--host', '127.0.0.1', '--port',
                                    str(port), '--network', network_path], env=env, cwd=tmp_path, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()
            try:
                socket.create_connection(('127.0.0.1', port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.5)
        yield f'http://127.0.0.1:{port}/'
        # What the page wrote or received (the runs, the uploads, Gradio's copies) is for its
        # user only while it lives, and goes when the page stops.
        written = [path for path in tmp_path.rglob('*') if path.is_file() and path.name != 'server.log']
        assert any(path.name == app.OUTPUT_NAME for path in written) and any('photo' in path.name for path in written)
        assert {stat.S_IMODE(path.stat().st_mode) & 0o077 for path in written} == {0}
    finally:
        terminate(process)
    assert 'reachable from the network' not in log.read_text()
    # Gradio's lines about launch() and share=True are not this program's: they would mislead its user
    assert f'app.py: serving on http://127.0.0.1:{port}/' in log.read_text() and 'share=True' not in log.read_text()
    assert 'Traceback' not in log.read_text()  # a file that is not an image is one sentence, on the page
    assert [path.name for path in tmp_path.iterdir()] == ['server.log']  # the page's files are removed when it stops


def test_over_http_with_gradio_client(server, reference, tmp_path, monkeypatch):
    from gradio_client import Client, handle_file

    monkeypatch.setenv('GRADIO_ANALYTICS_ENABLED', 'False')  # gradio_client's own switch is not enough

    client = Client(server, download_files=str(tmp_path / 'downloads'), analytics_enabled=False, verbose=False)
    image, plot, status, command, download = client.predict(
        handle_file(reference['content']), [handle_file(reference['style'])], *settings(), api_name='/paint')
    assert status.startswith('done: iteration 3/3')
    np.testing.assert_array_equal(read(image), read(reference['output']))
    np.testing.assert_array_equal(read(download), read(reference['output']))
    assert plot['type'] == 'matplotlib'
    assert command.startswith('python neural_style.py --content photo.png --styles painting.png ')


def fill_in_and_finish(driver, url, content, style):
    """Opens the page, uploads the images, sets 3 iterations at 16 px with seed 0, presses Start, and waits for
    the end; returns the status line."""
    from selenium.webdriver.common.by import By

    browser.open_and_upload(driver, url, content, style)
    assert driver.find_element(By.CSS_SELECTOR, browser.SEED).get_attribute('value') == '', \
        'the seed field starts empty: a new white noise every run'
    browser.set_fields_and_start(driver, iterations=3, size=16, seed=0)
    return browser.wait_for_the_end(driver, timeout=180)


@pytest.mark.skipif(not browser.available(),
                    reason=f'no Chromium at {browser.CHROMIUM} or no chromedriver at {browser.CHROMEDRIVER}: on Debian, '
                    f'as root, apt-get install chromium chromium-driver (or set CHROMIUM and CHROMEDRIVER to their '
                    f'paths)')
def test_in_headless_chromium(server, reference, tmp_path, monkeypatch):
    from selenium.webdriver.common.by import By

    monkeypatch.setenv('SE_OFFLINE', 'true')  # Selenium Manager, should anything call it, stays off the network
    driver = browser.chromium(tmp_path)
    try:
        status = fill_in_and_finish(driver, server, reference['content'], reference['style'])
        assert status.startswith('done: iteration 3/3'), status
        assert driver.title == app.TITLE
        assert 'python neural_style.py --content photo.png' in driver.find_element(By.CSS_SELECTOR, '#command').text
        assert f'neural-style {neural_style.VERSION} · TensorFlow' in driver.find_element(By.CSS_SELECTOR, '#versions').text
        assert driver.save_screenshot(str(tmp_path / 'page.png'))
    finally:
        driver.quit()
    with Image.open(tmp_path / 'page.png') as screenshot:
        assert screenshot.size[0] >= 1000


def test_a_server_reachable_from_the_network_is_announced():
    assert [app._reachable_from_network(host) for host in ('127.0.0.1', '::1', 'localhost', '127.0.0.2')] == \
        [False] * 4
    assert [app._reachable_from_network(host) for host in ('0.0.0.0', '::', '192.168.1.20', 'example.org')] == \
        [True] * 4



def test_refreshes_take_at_most_their_share_of_the_time():
    # drawing took 0.05 s: the next refresh a second later; took 0.5 s: 4.5 s later, so 10% of the time is drawing
    assert app.next_refresh(10.0, 10.05, refresh_seconds=1.0, drawing_share=0.1) == pytest.approx(11.05)
    assert app.next_refresh(10.0, 10.5, refresh_seconds=1.0, drawing_share=0.1) == pytest.approx(15.0)
    assert (0.5 / (15.0 - 10.0)) == pytest.approx(0.1)
    assert app.next_refresh(10.0, 10.5, refresh_seconds=0, drawing_share=1) == 10.5  # every step


def test_stop_over_http_is_not_queued_behind_the_run(server, reference, tmp_path, monkeypatch):
    """Stop reaches the running job of its session at once (the run holds the queue's one slot) and the best
    image so far comes back."""
    from gradio_client import Client, handle_file

    monkeypatch.setenv('GRADIO_ANALYTICS_ENABLED', 'False')
    client = Client(server, download_files=str(tmp_path / 'downloads'), analytics_enabled=False, verbose=False)
    job = client.submit(handle_file(reference['content']), [handle_file(reference['style'])],
                        *settings(iterations=10000), api_name='/paint')
    deadline = time.monotonic() + 120
    while not any(output[0] for output in job.outputs()):  # the first image is shown
        assert time.monotonic() < deadline and not job.done()
        time.sleep(0.2)
    client.predict(api_name='/stop')
    image, plot, status, command, download = job.result(timeout=60)
    assert status.startswith('stopped at iteration ') and int(status.split()[3].rstrip(':')) < 10000
    assert read(image).shape == (12, 16, 3) and read(download).shape == (12, 16, 3)


class Session:
    """What the handlers read of Gradio's request: the page's session."""

    def __init__(self, name):
        self.session_hash = name


def test_stop_cancels_a_queued_run(painter, reference, tmp_path):
    """Stop pressed while the run waited in the queue once did nothing, and the run then ran to its
    end. The page's Start marks the run as queued at once, outside the queue, then paints."""
    first, second = Session('first'), Session('second')
    painter.queued(first)
    painter.queued(second)
    painter.stop(second)
    (update,) = list(painter.paint(reference['content'], [reference['style']], *settings(), request=second))
    assert update.status == 'stopped while waiting in the queue; nothing run, nothing written'
    assert os.listdir(tmp_path) == []  # no run directory
    assert list(painter.paint(reference['content'], [reference['style']], *settings(),
                              request=first))[-1].status.startswith('done: ')  # the other session's run is not stopped
    painter.stop(first)  # a Stop with nothing queued nor running stops nothing later
    assert list(painter.paint(reference['content'], [reference['style']], *settings(),
                              request=first))[-1].status.startswith('done: ')
    page = app.build_page(app.Painter(str(tmp_path)))
    (paint,) = [fn for fn in page.fns.values() if fn.api_name == 'paint']
    (marking,) = [fn for fn in page.fns.values() if fn.fn.__name__ == 'queued']
    assert not marking.queue and paint.trigger_after == marking._id and paint.queue


def test_a_file_that_is_not_an_image_is_one_sentence_naming_it_as_given(server, reference, tmp_path, monkeypatch):
    """A content that is not an image once got bare "Error" badges and tracebacks in the server's
    log; a bad style file was named by Gradio's temporary path."""
    from gradio_client import Client, handle_file

    monkeypatch.setenv('GRADIO_ANALYTICS_ENABLED', 'False')
    (tmp_path / 'n.jpg').write_text('x')
    client = Client(server, download_files=str(tmp_path / 'downloads'), analytics_enabled=False, verbose=False)
    for content, style in [(str(tmp_path / 'n.jpg'), reference['style']), (reference['content'], str(tmp_path / 'n.jpg'))]:
        image, plot, status, command, download = client.predict(
            handle_file(content), [handle_file(style)], *settings(), api_name='/paint')
        assert status == "neural_style.py: error: image n.jpg could not be read: cannot identify image file 'n.jpg'"
        assert image is None and download is None


def test_the_progress_line_is_refreshed_while_the_image_is_held_back(painter, reference, monkeypatch):
    """On a loaded machine the page once showed nothing for long stretches between image refreshes. Here
    the image and plot are held back for good after the first step (refresh_seconds huge), and the line is
    refreshed at every step (TEXT_SECONDS 0), leaving the image and plot as shown."""
    monkeypatch.setattr(app, 'TEXT_SECONDS', 0.0)
    painter.refresh_seconds = 1e9
    updates = list(painter.paint(reference['content'], [reference['style']], *settings()))
    steps = [update for update in updates if update.status.startswith('iteration')]
    assert [update.status.split()[1] for update in steps] == ['0/3', '1/3', '2/3', '3/3']
    assert isinstance(steps[0].image, np.ndarray)
    assert all(update.image is app.UNCHANGED and update.plot is app.UNCHANGED for update in steps[1:])
    page = app.build_page(app.Painter(painter.workdir))
    (plot,) = [block for block in page.blocks.values() if getattr(block, 'elem_id', None) == 'plot']
    assert plot.show_label is False  # its "losses" label covered the plot's top tick


def test_a_port_in_use_is_one_sentence_about_port(tmp_path):
    """It once told the user about GRADIO_SERVER_PORT and launch()."""
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, os.path.join(ROOT, 'app.py'), '--port', str(port)], cwd=tmp_path,
                                capture_output=True, text=True, timeout=300,
                                env=dict(os.environ, GRADIO_ANALYTICS_ENABLED='False', TMPDIR=str(tmp_path),
                                         TF_CPP_MIN_LOG_LEVEL='3'))
    assert result.returncode == 1, result
    assert result.stderr.strip().splitlines()[-1] == (f'app.py: error: cannot serve on 127.0.0.1:{port}: the port is '
                                                      f'in use; choose another with --port')
    assert 'GRADIO_SERVER_PORT' not in result.stdout + result.stderr and os.listdir(tmp_path) == []
    help_text = subprocess.run([sys.executable, os.path.join(ROOT, 'app.py'), '--help'], capture_output=True,
                               text=True, timeout=60).stdout
    assert 'None' not in help_text and help_text.count('(default:') == 3  # --host, --port, --network


@pytest.mark.skipif(not browser.available(),
                    reason=f'no Chromium at {browser.CHROMIUM} or no chromedriver at {browser.CHROMEDRIVER}')
def test_closing_the_tab_mid_run_stops_the_run_and_its_files_go(server, reference, tmp_path, tmp_path_factory,
                                                                 monkeypatch):
    """A run of 100000 iterations started in a tab that is then closed: its directory goes,
    and the queue's one slot is free again (a run from another client finishes)."""
    from gradio_client import Client, handle_file
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    monkeypatch.setenv('SE_OFFLINE', 'true')
    monkeypatch.setenv('GRADIO_ANALYTICS_ENABLED', 'False')
    runs = str(tmp_path_factory.getbasetemp() / 'server[0-9]*' / 'neural-style-page-*' / 'run-*')
    before = set(glob.glob(runs))
    driver = browser.chromium(tmp_path)
    try:
        browser.open_and_upload(driver, server, reference['content'], reference['style'])
        browser.set_fields_and_start(driver, iterations=100000, size=16)
        WebDriverWait(driver, 180).until(lambda d: d.find_element(By.CSS_SELECTOR, '#status textarea')
                                         .get_attribute('value').startswith('iteration'))
        new = set(glob.glob(runs)) - before
        assert len(new) == 1, (new, before)
        (started,) = new
        first = driver.current_window_handle
        driver.switch_to.new_window('tab')
        driver.switch_to.window(first)
        driver.close()  # the tab, not the browser
    finally:
        driver.quit()
    deadline = time.monotonic() + 60
    while os.path.exists(started):
        assert time.monotonic() < deadline, 'the closed tab\'s run directory is still there'
        time.sleep(0.5)
    client = Client(server, download_files=str(tmp_path / 'downloads'), analytics_enabled=False, verbose=False)
    job = client.submit(handle_file(reference['content']), [handle_file(reference['style'])], *settings(),
                        api_name='/paint')
    assert job.result(timeout=120)[2].startswith('done: iteration 3/3')  # the slot was free: the run had stopped
