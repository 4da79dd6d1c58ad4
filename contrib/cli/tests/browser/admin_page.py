"""Drives the admin web page in a real headless Chromium (Debian's chromium and
chromedriver, through Selenium): a wrong token is refused, the right one logs
in, a switch is toggled, a sample ratio set, a switch created, a user
override added and removed, the history shows the changes under the token's
name, another environment is picked and one of its flags disabled, and a
viewer's token sees everything but no control that writes. Prints one JSON
line per step.

Usage: admin_page.py BASE_URL ADMIN_TOKEN VIEWER_TOKEN [SCREENSHOT.png]
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../../conformance/browser"))
from chromium import close, headless_chrome, refound, step  # noqa: E402

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait


def main():
    base, token, viewer_token = sys.argv[1], sys.argv[2], sys.argv[3]
    screenshot = sys.argv[4] if len(sys.argv) > 4 else None
    driver = headless_chrome()
    wait = WebDriverWait(driver, 10)
    css = lambda selector: wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, selector)))

    def on(selector, action):
        return refound(lambda: action(css(selector)))

    try:
        driver.get(base + "/admin")
        token_input = css("#token")
        token_input.send_keys("not-the-token")
        driver.find_element(By.ID, "login-button").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "message"), "wrong admin token"))
        step("wrong token refused", message=driver.find_element(By.ID, "message").text)

        token_input.clear()
        token_input.send_keys(token)
        driver.find_element(By.ID, "login-button").click()
        wait.until(EC.visibility_of_element_located((By.ID, "app")))
        row = css('tr[data-switch="NEW_UI"] td[data-state]')
        step("logged in", new_ui=row.get_attribute("data-state"),
             who=driver.find_element(By.ID, "who").text)

        on('button[data-toggle-switch="NEW_UI"]', lambda e: e.click())
        css('tr[data-switch="NEW_UI"] td[data-state="on"]')
        step("switch toggled", new_ui="on")

        on('input[data-sample-ratio="ROLLOUT"]', lambda e: (e.clear(), e.send_keys("25")))
        on('button[data-set-sample="ROLLOUT"]', lambda e: e.click())
        css('tr[data-sample="ROLLOUT"] td[data-ratio="25"]')
        step("sample set", rollout=25)

        css("#create-kind").send_keys("switch")
        on("#create-name", lambda e: e.send_keys("dark_mode"))
        driver.find_element(By.CSS_SELECTOR, '#create-form button[type="submit"]').click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "message"), "created"))
        created = css('tr[data-switch="DARK_MODE"] td[data-state]')
        step("switch created", message=driver.find_element(By.ID, "message").text,
             state=created.get_attribute("data-state"))

        on('input[data-override-id="BETA"]', lambda e: e.send_keys("ada"))
        # A periodic refresh (every 3 s) with nothing changed keeps what is typed.
        time.sleep(3.5)
        typed = css('input[data-override-id="BETA"]').get_attribute("value")
        step("typing survives a refresh", typed=typed)
        on('button[data-add-override="BETA"]', lambda e: e.click())
        css('tr[data-flag="BETA"] span[data-override="user:ada"]')
        step("override added", beta="user:ada")

        on('button[data-remove-override="BETA:user:ada"]', lambda e: e.click())
        wait.until(EC.invisibility_of_element_located((By.CSS_SELECTOR, 'span[data-override="user:ada"]')))
        step("override removed", beta="none")

        wait.until(EC.text_to_be_present_in_element((By.ID, "history"), "clear-user"))
        history = driver.find_element(By.ID, "history").text
        step("history shown", has_enable="enable" in history, has_set="set" in history,
             by_name="page-admin" in history)

        # Another environment: its own flags, changed there, in its history.
        on("#environment", lambda e: e.send_keys("staging"))
        css('tr[data-document-flag="staging-only"]')
        on('button[data-toggle-document-flag="staging-only"]', lambda e: e.click())
        try:
            wait.until(EC.text_to_be_present_in_element((By.ID, "document-flags"), "DISABLED"))
        except Exception:
            raise SystemExit("not disabled; the page says: " + driver.find_element(By.ID, "message").text)
        wait.until(EC.text_to_be_present_in_element((By.ID, "history"), "staging v2"))
        flags = driver.find_element(By.ID, "document-flags").text
        step("environment switched", shows_staging="staging-only" in flags,
             shows_default="checkout" in flags,
             heading=driver.find_element(By.ID, "document-environment").text)

        # A viewer reads everything and is offered nothing that writes.
        driver.find_element(By.ID, "logout").click()
        on("#token", lambda e: (e.clear(), e.send_keys(viewer_token)))
        driver.find_element(By.ID, "login-button").click()
        wait.until(EC.visibility_of_element_located((By.ID, "app")))
        css('tr[data-switch="NEW_UI"]')
        css('tr[data-document-flag="staging-only"]')
        writes = driver.find_elements(By.CSS_SELECTOR,
            "button[data-toggle-switch], button[data-toggle-document-flag], button[data-set-sample], button[data-add-override]")
        step("viewer reads only", who=driver.find_element(By.ID, "who").text, write_buttons=len(writes),
             create_form_shown=driver.find_element(By.ID, "create-form").is_displayed(),
             notice=driver.find_element(By.ID, "read-only").text)
        if screenshot:
            driver.save_screenshot(screenshot)
    finally:
        close(driver)


if __name__ == "__main__":
    main()
