"""Drives the Email Maintenance page of a running `mailhost serve --http` in Debian's Chromium
through Playwright (no browser download: the system's /usr/bin/chromium).

Usage: page_check.py CONFIG.json, where the file holds:
  base          the page's address, http://127.0.0.1:PORT
  token         an API token
  sent_subject  the subject of an email that was sent
  failed_subject the subject of an email that failed
  hostile       subjects full of markup that must show as text
  fix           {"argv": [...], "stdin": "..."}: the command that fixes the failure's cause
  shots         a folder for the screenshots (list.png, email.png, phone.png)

Prints one line per step; exits 1 (with the reason) at the first step that does not hold.
"""

import json
import re
import subprocess
import sys

from playwright.sync_api import expect, sync_playwright


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        config = json.load(f)
    base = config["base"]
    dialogs, errors = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=config.get("chromium", "/usr/bin/chromium"),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        context = browser.new_context(viewport={"width": 1360, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15000)
        expect.set_options(timeout=15000)

        def on_dialog(dialog):
            dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))

        # 1. Sign in with the API token.
        response = page.goto(base + "/")
        csp = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp
        assert response.headers.get("x-content-type-options") == "nosniff"
        page.get_by_label("API token").fill("mh_not-a-real-token")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("not valid")
        # The refused sign-in is answered 401, which Chromium logs; nothing else may be.
        assert all("status of 401" in e for e in errors), errors
        errors.clear()
        page.get_by_label("API token").fill(config["token"])
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("table")).to_be_visible()
        cookies = context.cookies()
        session = [c for c in cookies if c["name"] == "mailhost_session"]
        assert session and session[0]["httpOnly"] and session[0]["sameSite"] == "Strict", cookies
        assert page.evaluate("document.cookie") == "", "the session cookie is readable by script"
        print("signed in")

        # 2. A sent and a failed email in the list.
        sent_row = page.locator("tr", has=page.get_by_role("link", name=config["sent_subject"], exact=True))
        expect(sent_row.locator(".status")).to_have_text("sent")
        failed_row = page.locator("tr", has=page.get_by_role("link", name=config["failed_subject"], exact=True))
        expect(failed_row.locator(".status")).to_have_text("failed")
        expect(failed_row.locator("td.error")).not_to_be_empty()
        print("sent and failed emails listed")

        # 3. Hostile subjects show as text and run nothing.
        for subject in config["hostile"]:
            expect(page.get_by_role("link", name=subject, exact=True)).to_be_visible()
        assert page.locator("main img").count() == 0, "an <img> from a subject became markup"
        assert page.locator("main script").count() == 0, "a <script> from a subject became markup"
        print("hostile subjects render as text")
        page.screenshot(path=config["shots"] + "/list.png", full_page=True)

        # 4. Open the failed email: its error and what to do.
        page.get_by_role("link", name=config["failed_subject"], exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(config["failed_subject"])
        expect(page.locator("#error-h")).to_have_text("Last error")
        expect(page.locator("p.fix")).to_contain_text("What to do")
        expect(page.get_by_role("heading", name=re.compile(r"Attempts \(1\)"))).to_be_visible()
        expect(page.get_by_role("heading", name=re.compile(r"Attachments \(1\)"))).to_be_visible()
        page.screenshot(path=config["shots"] + "/email.png", full_page=True)
        print("failed email shows its error and the fix")

        # 5. Fix the cause through the CLI, retry, watch it become sent (live refresh).
        fix = config["fix"]
        done = subprocess.run(fix["argv"], input=fix.get("stdin", ""), text=True, capture_output=True)
        assert done.returncode == 0, done.stderr
        # The service re-reads a staff member's route after at most 2 s (LANE_TTL).
        page.wait_for_timeout(2500)
        page.get_by_role("button", name="Retry now").click()
        expect(page.get_by_role("status")).to_contain_text("Retry asked")
        expect(page.locator("#email-h + p .status")).to_have_text("sent", timeout=60000)
        expect(page.get_by_role("heading", name="Receipt")).to_be_visible()
        print("retried after the fix; live refresh showed it sent")

        # 6. Filter and search.
        page.get_by_role("link", name="← All emails").click()
        page.get_by_label("Status", exact=True).select_option("failed")
        page.get_by_role("button", name="Filter").click()
        expect(page.locator("p.empty").first).to_have_text("No emails match.")
        page.get_by_label("Status", exact=True).select_option("sent")
        page.get_by_role("button", name="Filter").click()
        expect(page.locator("tbody tr")).to_have_count(config["sent_count"])
        page.get_by_label("Status", exact=True).select_option("")
        page.keyboard.press("Escape")
        page.locator("body").click(position={"x": 5, "y": 5})
        page.keyboard.press("/")
        expect(page.get_by_label("Search", exact=True)).to_be_focused()
        page.keyboard.type("alert")
        page.keyboard.press("Enter")
        expect(page.locator("tbody tr")).to_have_count(len(config["hostile"]))
        page.get_by_label("Search", exact=True).fill(config["sent_subject"].split()[0])
        page.get_by_role("button", name="Filter").click()
        rows = page.locator("tbody tr")
        expect(rows).to_have_count(config["search_count"])
        print("filter and search")

        # 7. Readable on a phone.
        phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2)
        phone.add_cookies(cookies)
        small = phone.new_page()
        small.on("dialog", on_dialog)
        small.on("pageerror", lambda e: errors.append(str(e)))
        small.goto(base + "/")
        expect(small.get_by_role("link", name=config["sent_subject"], exact=True)).to_be_visible()
        width = small.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the list is {width} px wide on a 390 px phone"
        small.screenshot(path=config["shots"] + "/phone.png", full_page=False)
        print("readable on a phone")

        browser.close()
    assert not dialogs, f"a dialog opened: {dialogs}"
    assert not errors, f"console errors: {errors}"
    print("no dialog, no console error")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as e:
        print(f"FAILED: {e}")
        sys.exit(1)
