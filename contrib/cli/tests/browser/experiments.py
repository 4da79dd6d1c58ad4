"""Drives the experiments section of the admin page in a real headless
Chromium: reads an experiment's results (the sentence, the sample-ratio
warning, the chart's whiskers, the lift and p-value per variant), stops it,
deletes it after confirming, and starts a new one with the form. Prints one
JSON line per step.

Usage: experiments.py BASE_URL ADMIN_TOKEN
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../../conformance/browser"))
from chromium import close, headless_chrome, refound, step  # noqa: E402

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def main():
    base, token = sys.argv[1], sys.argv[2]
    driver = headless_chrome()
    wait = WebDriverWait(driver, 10)
    css = lambda selector: wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, selector)))
    by_id = lambda id_: css("#" + id_)

    def message_contains(text):
        wait.until(EC.text_to_be_present_in_element((By.ID, "message"), text))
        return by_id("message").text

    try:
        driver.get(base + "/admin")
        by_id("token").send_keys(token)
        by_id("login-button").click()
        wait.until(EC.visibility_of_element_located((By.ID, "app")))
        card = '.experiment[data-experiment="banner-color"]'
        css(card)

        def results():
            row = lambda variant: driver.find_element(
                By.CSS_SELECTOR, f'{card} tr[data-metric="purchase_completed"][data-variant="{variant}"]')
            return dict(
                title=driver.find_element(By.CSS_SELECTOR, card + " h3").text,
                verdicts=[p.text for p in driver.find_elements(By.CSS_SELECTOR, card + " .verdict")],
                warning=[w.text for w in driver.find_elements(By.CSS_SELECTOR, card + " .srm-warning")],
                whiskers=len(driver.find_elements(By.CSS_SELECTOR, card + " svg.whiskers line[data-whisker]")),
                dots=len(driver.find_elements(By.CSS_SELECTOR, card + " svg.whiskers circle")),
                green_lift=row("green").find_element(By.CSS_SELECTOR, ".lift").text,
                green_p=row("green").find_element(By.CSS_SELECTOR, ".p-value").text,
                red_lift=row("red").find_element(By.CSS_SELECTOR, ".lift").text,
            )

        step("results shown", **refound(results))

        css(f'button[data-stop="banner-color"]').click()
        message_contains("experiment banner-color stopped")
        wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, card + " h3"), "stopped"))
        step("stopped", title=refound(lambda: driver.find_element(By.CSS_SELECTOR, card + " h3").text),
             stop_buttons=len(driver.find_elements(By.CSS_SELECTOR, 'button[data-stop]')))

        css('button[data-delete-experiment="banner-color"]').click()
        alert = driver.switch_to.alert
        question = alert.text
        alert.accept()
        message_contains("experiment banner-color deleted")
        wait.until(EC.visibility_of_element_located((By.ID, "no-experiments")))
        step("deleted", question=question)

        by_id("experiment-flag").send_keys("banner-color")
        by_id("experiment-metrics").send_keys("purchase_completed, revenue:value")
        by_id("experiment-control").send_keys("red")
        by_id("experiment-create").click()
        message_contains("experiment on banner-color started")
        css(card)
        step("created", title=refound(lambda: driver.find_element(By.CSS_SELECTOR, card + " h3").text))
    finally:
        close(driver)


if __name__ == "__main__":
    main()
