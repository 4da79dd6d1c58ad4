"""Disables one document flag on the admin page in a real headless Chromium,
as a user would: log in, press the flag's Disable button, wait for the page
to confirm. Prints one JSON line per step.

Usage: toggle.py BASE_URL ADMIN_TOKEN FLAG
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../../conformance/browser"))
from chromium import close, headless_chrome, refound, step  # noqa: E402

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def main():
    base, token, flag = sys.argv[1], sys.argv[2], sys.argv[3]
    driver = headless_chrome()
    wait = WebDriverWait(driver, 10)
    css = lambda selector: wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, selector)))
    try:
        driver.get(base + "/admin")
        css("#token").send_keys(token)
        css("#login-button").click()
        wait.until(EC.visibility_of_element_located((By.ID, "app")))
        button = f'button[data-toggle-document-flag="{flag}"]'
        step("shown", label=refound(lambda: css(button).text))
        refound(lambda: css(button).click())
        wait.until(EC.text_to_be_present_in_element((By.ID, "message"), f"{flag} disabled"))
        step("disabled", message=driver.find_element(By.ID, "message").text)
    finally:
        close(driver)


if __name__ == "__main__":
    main()
