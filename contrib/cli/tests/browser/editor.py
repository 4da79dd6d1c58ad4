"""Drives the flag editor of the admin page in a real headless Chromium, from
an empty server, as a new user would: creates a boolean kill switch, a 30/70
string experiment and a rule on the email domain with the forms (no JSON
typed), previews one, meets a conflict (another writer changed the flag
meanwhile) and reloads, changes a flag, reads its diff in the history,
restores the version before, sees a lint warning while typing JSON, deletes
a flag after confirming, and logs in as a viewer, who sees no control that writes. Prints one JSON line
per step.

Usage: editor.py BASE_URL ADMIN_TOKEN VIEWER_TOKEN
"""

import json
import os
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../../conformance/browser"))
from chromium import close, headless_chrome, refound, step  # noqa: E402

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


def main():
    base, token, viewer_token = sys.argv[1], sys.argv[2], sys.argv[3]
    driver = headless_chrome()
    wait = WebDriverWait(driver, 10)
    css = lambda selector: wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, selector)))
    by_id = lambda id_: css("#" + id_)

    def typed(element, text):
        element.clear()
        element.send_keys(text)

    def message_contains(text):
        wait.until(EC.text_to_be_present_in_element((By.ID, "message"), text))
        return by_id("message").text

    def api(method, path, body=None, bearer=token):
        request = urllib.request.Request(base + path, method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Authorization": "Bearer " + bearer,
                                                  "Content-Type": "application/json"})
        return json.loads(urllib.request.urlopen(request).read() or "null")

    def login(with_token):
        driver.get(base + "/admin")
        typed(by_id("token"), with_token)
        by_id("login-button").click()
        wait.until(EC.visibility_of_element_located((By.ID, "app")))

    def new_flag(key, kind):
        by_id("new-flag").click()
        wait.until(EC.visibility_of_element_located((By.ID, "editor")))
        typed(by_id("editor-key"), key)
        Select(by_id("editor-type")).select_by_value(kind)

    def save(key):
        by_id("save-flag").click()
        return message_contains("Saved " + key)

    try:
        login(token)
        step("logged in", who=by_id("who").text)

        # A boolean kill switch, on for everyone.
        new_flag("kill-switch", "boolean")
        Select(by_id("editor-default")).select_by_value("on")
        step("kill switch created", message=save("kill-switch"))

        # A string experiment: two variants renamed, weights 30/70.
        new_flag("checkout-experiment", "string")
        for i, name in enumerate(["control", "treatment"]):
            # Select and overtype (clearing would rename the variant to "" first).
            field = css(f'input[data-variant-name="{i}"]')
            field.send_keys(Keys.CONTROL, "a")
            field.send_keys(name, Keys.TAB)
            wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f'input[data-variant-name="{i}"][value="{name}"]')))
        Select(by_id("rule-kind")).select_by_value("rollout")
        typed(css('input[data-weight="control"]'), "30")
        typed(css('input[data-weight="treatment"]'), "70")
        shares = [css(f'span[data-share="{n}"]').text for n in ("control", "treatment")]
        total = by_id("rollout-sum").get_attribute("data-sum")
        step("experiment created", message=save("checkout-experiment"), shares=shares, sum=total)

        # A rule on the email domain: on for @example.com, off otherwise.
        new_flag("staff-beta", "boolean")
        Select(by_id("rule-kind")).select_by_value("ends_with")
        typed(css('input[data-rule="text"]'), "@example.com")
        step("email rule created", message=save("staff-beta"),
             json=json.loads(by_id("editor-json").get_attribute("value")))

        # Preview for a context, as OFREP answers it.
        typed(by_id("preview-context"), '{"targetingKey": "u1", "email": "ada@example.com"}')
        by_id("preview-button").click()
        result = by_id("preview-result")
        wait.until(lambda d: result.get_attribute("data-reason"))
        step("previewed", value=json.loads(result.get_attribute("data-value")),
             variant=result.get_attribute("data-variant"), reason=result.get_attribute("data-reason"),
             text=result.text)

        # A conflict: someone else changes the kill switch while it is open here.
        refound(lambda: css('button[data-edit-flag="kill-switch"]').click())
        wait.until(EC.text_to_be_present_in_element((By.ID, "editor-title"), "kill-switch"))
        theirs = api("GET", "/v1/admin/flags/kill-switch")
        theirs["defaultVariant"] = "off"
        api("PUT", "/v1/admin/flags/kill-switch", theirs)
        Select(by_id("editor-state")).select_by_value("DISABLED")
        by_id("save-flag").click()
        wait.until(EC.visibility_of_element_located((By.ID, "editor-conflict")))
        conflict = by_id("editor-conflict-text").text
        by_id("reload-flag").click()
        wait.until(EC.invisibility_of_element_located((By.ID, "editor-conflict")))
        reloaded = Select(by_id("editor-default")).first_selected_option.get_attribute("value")
        step("conflict shown", text=conflict, reloaded_default=reloaded)

        # Change it, then read the diff in the history.
        Select(by_id("editor-state")).select_by_value("DISABLED")
        save("kill-switch")
        wait.until(EC.text_to_be_present_in_element((By.ID, "history"), "state ENABLED → DISABLED"))
        rows = driver.find_elements(By.CSS_SELECTOR, "#history tr[data-history-version]")
        newest = rows[0].get_attribute("data-history-version")
        step("diff shown", newest=int(newest),
             summary=rows[0].find_element(By.CSS_SELECTOR, "td[data-diff] summary").text)

        # Restore the version before the change: the flag is served enabled again.
        before = int(newest) - 1
        refound(lambda: css(f'button[data-rollback-version="{before}"]').click())
        driver.switch_to.alert.accept()
        message_contains("rolled back to v" + str(before))
        served = json.loads(urllib.request.urlopen(base + "/v1/flags").read())
        step("restored", version=before, state=served["flags"]["kill-switch"]["state"])

        # Typing JSON: the server's lints appear as warnings.
        new_flag("typo", "boolean")
        Select(by_id("rule-kind")).select_by_value("json")
        typed(by_id("editor-json"), json.dumps({"state": "ENABLED", "variants": {"on": True, "off": False},
                                                  "defaultVariant": "off", "targetting": {}}))
        warning = css('#editor-problems li[data-warning="/flags/typo/targetting"]')
        step("lint shown", text=warning.text)
        by_id("close-editor").click()

        # Delete, after confirming.
        api("PUT", "/v1/admin/flags/temporary", {"state": "ENABLED", "variants": {"on": True}, "defaultVariant": "on"})
        refound(lambda: css('button[data-delete-flag="temporary"]').click())
        driver.switch_to.alert.accept()
        message_contains("temporary deleted")
        wait.until(EC.invisibility_of_element_located((By.CSS_SELECTOR, 'tr[data-document-flag="temporary"]')))
        served = json.loads(urllib.request.urlopen(base + "/v1/flags").read())
        step("deleted", served="temporary" in served["flags"])

        # A viewer sees everything and no control that writes.
        by_id("logout").click()
        login(viewer_token)
        css('tr[data-document-flag="staff-beta"]')
        css("#history tr[data-history-version]")
        writes = driver.find_elements(By.CSS_SELECTOR,
                                      "button[data-edit-flag], button[data-delete-flag], "
                                      "button[data-toggle-document-flag], button[data-rollback-version]")
        step("viewer reads only", write_buttons=len(writes), new_flag_shown=by_id("new-flag").is_displayed(),
             view_buttons=len(driver.find_elements(By.CSS_SELECTOR, "button[data-view-version]")))
    finally:
        close(driver)


if __name__ == "__main__":
    main()
