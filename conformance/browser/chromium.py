"""The headless Chromium every browser test drives (Debian's chromium and
chromedriver, through Selenium from the test venv that scripts/test.sh
prepares), and the one-JSON-line-per-step output the Rust tests read.

Import it from a test script with
    sys.path.insert(0, <this directory>); from chromium import close, headless_chrome, step
"""

import json
import os
import shutil
import tempfile
import time

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service


def find_binary(env, *names):
    for candidate in [os.environ.get(env)] + [shutil.which(n) for n in names]:
        if candidate and os.path.exists(candidate):
            return candidate
    raise SystemExit(f"none of {names} found (install Debian's chromium and chromium-driver, or set {env})")


def refound(action, attempts=5):
    """Runs `action` (which finds elements and uses them) again when the page
    rebuilt what it found meanwhile, as the admin page does when its data
    changes."""
    for attempt in range(attempts):
        try:
            return action()
        except StaleElementReferenceException:
            if attempt == attempts - 1:
                raise
            time.sleep(0.1)


def step(name, **detail):
    """One step's outcome, as the JSON line the Rust test reads."""
    print(json.dumps(dict(step=name, **detail)), flush=True)


def headless_chrome(extra_flags=()):
    """A headless Chromium with a fresh profile (its logs kept, for the browser console)."""
    options = webdriver.ChromeOptions()
    options.binary_location = find_binary("FLAGYARD_CHROMIUM", "chromium", "chromium-browser")
    profile = tempfile.mkdtemp(prefix="flagyard-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1200,1000", f"--user-data-dir={profile}",
                 *extra_flags):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=find_binary("FLAGYARD_CHROMEDRIVER", "chromedriver"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.flagyard_profile = profile
    return driver


def close(driver):
    """Quits the browser and removes its profile."""
    driver.quit()
    shutil.rmtree(driver.flagyard_profile, ignore_errors=True)
