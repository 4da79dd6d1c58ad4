"""The published OFREP web provider (@openfeature/ofrep-web-provider, from npm)
in a real headless Chromium, on a page served from another origin than the
flag server: it evaluates through CORS, follows a change through the
server's ADR-0008 change notifications (polling is off), and a page from an
origin the server does not allow gets no flags. Prints one JSON line per step.

Usage: ofrep_web.py PAGE_URL DENIED_PAGE_URL SERVER_BASE SDK_KEY ADMIN_TOKEN FLAG
(the page URLs without their query; the user is "browser-user", email
"ada@example.com")
"""

import json
import os
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../../conformance/browser"))
from chromium import close, headless_chrome, step  # noqa: E402


def wait_for(driver, what, check, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = driver.execute_script("return window.flagyard || null")
        if state is not None and check(state):
            return state
        time.sleep(0.02)
    logs = [entry["message"] for entry in driver.get_log("browser")]
    raise SystemExit(f"{what}: not within {seconds} s; page state {state}; console {logs}")


def main():
    page, denied_page, server, key, token, flag = sys.argv[1:7]
    query = urllib.parse.urlencode(dict(server=server, key=key, flag=flag, user="browser-user",
                                        email="ada@example.com"))
    driver = headless_chrome()
    try:
        driver.get(f"{page}?{query}")
        state = wait_for(driver, "provider ready", lambda s: s["ready"] or s["error"])
        if state["error"]:
            raise SystemExit(f"provider failed: {state['error']}; console "
                             f"{[e['message'] for e in driver.get_log('browser')]}")
        step("ready", origin=driver.execute_script("return location.origin"), details=state["details"])

        # A change through the admin API, timed until the page reads the new value.
        document = json.loads(urllib.request.urlopen(urllib.request.Request(
            f"{server}/v1/admin/document", headers={"Authorization": f"Bearer {token}"})).read())
        changed = document["flags"][flag]
        changed["defaultVariant"] = "green"
        changed.pop("targeting", None)
        request = urllib.request.Request(f"{server}/v1/admin/flags/{flag}", method="PUT",
                                         data=json.dumps(changed).encode(),
                                         headers={"Authorization": f"Bearer {token}",
                                                  "Content-Type": "application/json"})
        before = time.monotonic()
        urllib.request.urlopen(request).read()
        state = wait_for(driver, "change seen", lambda s: s["changes"] > 0 and s["details"]["variant"] == "green",
                         seconds=5)
        step("change seen", ms=round((time.monotonic() - before) * 1000), changes=state["changes"],
             details=state["details"])

        # The same page from an origin the server does not allow: no flags.
        driver.get(f"{denied_page}?{query}")
        state = wait_for(driver, "refused origin", lambda s: s["ready"] or s["error"])
        step("other origin", ready=state["ready"], error=state["error"],
             origin=driver.execute_script("return location.origin"))
    finally:
        close(driver)


if __name__ == "__main__":
    main()
