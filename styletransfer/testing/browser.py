"""Headless Chromium for the page's browser tests and its screenshot (benchmarks/page_screenshot.py)."""
import os
import shutil

CHROMIUM = os.environ.get('CHROMIUM') or shutil.which('chromium') or '/usr/bin/chromium'
CHROMEDRIVER = os.environ.get('CHROMEDRIVER') or shutil.which('chromedriver') or '/usr/bin/chromedriver'
# Headless, and quiet: no sandbox (root in a container), no GPU, no calls home, a profile of its own.
CHROMIUM_FLAGS = ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
                  '--disable-background-networking', '--disable-component-update', '--no-first-run',
                  '--window-size=1280,1600')


def chromium(tmp_path):
    """Headless Chromium driven by Selenium through Debian's chromedriver (so Selenium Manager downloads
    nothing)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS + (f'--user-data-dir={tmp_path / "chromium-profile"}',):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def available():
    return os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)


SEED = '#seed textarea, #seed input'
# The page's fields by their elem_id (app.py), as set_fields_and_start names them.
FIELDS = {'iterations': '#iterations input', 'size': '#size input[type=number]', 'seed': SEED}


def open_and_upload(driver, url, content, style):
    """Opens the page and gives it a content and a style image."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    find = WebDriverWait(driver, 60).until
    find(lambda d: d.find_element(By.CSS_SELECTOR, '#content input[type=file]')).send_keys(content)
    driver.find_element(By.CSS_SELECTOR, '#styles input[type=file]').send_keys(style)
    find(lambda d: d.find_elements(By.CSS_SELECTOR, SEED))


def set_fields_and_start(driver, **values):
    """Types each value into its field (FIELDS), then presses Start once the upload is shown."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    for name, value in values.items():
        field = driver.find_element(By.CSS_SELECTOR, FIELDS[name])
        field.clear()
        field.send_keys(str(value))
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, '#content img'))
    driver.find_element(By.CSS_SELECTOR, '#start').click()


def wait_for_the_end(driver, timeout):
    """The status line once the run has ended (done, or one of the command line's sentences), with the result
    shown and the page scrolled to its top."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    status = WebDriverWait(driver, timeout).until(
        lambda d: (lambda text: text if text.startswith(('done', 'neural_style.py', 'Give')) else None)(
            d.find_element(By.CSS_SELECTOR, '#status textarea').get_attribute('value')))
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, '#result img'))
    driver.execute_script('window.scrollTo(0, 0)')
    return status
