"""The console in a real browser (Debian's chromium, driven by selenium through chromedriver),
against a running hub. Run by scripts/console-test, which starts the hub and passes
SWITCHBOARD_URL and SWITCHBOARD_ADMIN_TOKEN. Every test saves a screenshot of its final page
in SCREENSHOTS (target/console-screenshots by default)."""

import csv
import http.server
import json
import threading
import os
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

BASE = os.environ["SWITCHBOARD_URL"]
ADMIN = os.environ["SWITCHBOARD_ADMIN_TOKEN"]
SCREENSHOTS = os.environ.get("SCREENSHOTS", "target/console-screenshots")
CORPUS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "corpus", "phonecom")


def api(method, path, token, body=None, raw=False):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read().decode()
            return r.status, (text if raw else json.loads(text))
    except urllib.error.HTTPError as e:
        with e:
            return e.code, json.loads(e.read().decode() or "null")


_accounts = [0]


def new_account():
    _accounts[0] += 1
    account_id = 4200000 + os.getpid() % 1000 * 100 + _accounts[0]
    status, body = api("POST", "/admin/accounts", ADMIN, {"name": "console", "id": account_id})
    assert status == 201, body
    return body["id"], body["token"]


def call_events(scenario, tag):
    """A corpus call's events, its ids made unique by `tag`."""
    with open(os.path.join(CORPUS, scenario, "events.json")) as f:
        text = f.read()
    return json.loads(text.replace('"pc-', '"pc-' + tag + "-"))


def ingest(token, events):
    body = "\n".join(json.dumps(e) for e in events).encode()
    req = urllib.request.Request(BASE + "/ingest/phonecom", data=body, method="POST")
    req.add_header("Authorization", "Bearer " + token)
    req.add_header("Content-Type", "application/x-ndjson")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 202


class Receiver:
    """A webhook receiver whose answer can be changed: 200 until told otherwise."""

    def __init__(self):
        self.status = 200
        self.got = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                receiver.got.append(self.rfile.read(length))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


class Console(unittest.TestCase):
    def setUp(self):
        self.downloads = tempfile.mkdtemp()
        options = Options()
        options.binary_location = "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,800"):
            options.add_argument(arg)
        options.add_experimental_option("prefs", {
            "download.default_directory": self.downloads,
            "download.prompt_for_download": False,
        })
        self.browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        self.browser.implicitly_wait(0)
        # A view is replaced whole when it refreshes: an element read a moment ago may be gone.
        self.wait = WebDriverWait(self.browser, 30, poll_frequency=0.1,
                                  ignored_exceptions=[StaleElementReferenceException,
                                                      NoSuchElementException])

    def tearDown(self):
        os.makedirs(SCREENSHOTS, exist_ok=True)
        self.browser.save_screenshot(os.path.join(SCREENSHOTS, self.id().split(".")[-1] + ".png"))
        logs = self.browser.get_log("browser")
        self.browser.quit()
        # A page that threw shows it here.
        errors = [l for l in logs if l["level"] == "SEVERE" and "favicon" not in l["message"]
                  and "Failed to load resource" not in l["message"]]
        self.assertEqual(errors, [])

    def find(self, css):
        return self.wait.until(lambda b: b.find_element(By.CSS_SELECTOR, css))

    def click(self, css):
        # The view may be fetched again between finding an element and clicking it.
        self.wait.until(lambda b: b.find_element(By.CSS_SELECTOR, css).click() or True)

    def text_of(self, css):
        return self.find(css).text

    def sign_in(self, token, account=""):
        self.browser.get(BASE + "/console")
        self.find("#token").send_keys(token)
        if account:
            self.find("#account").send_keys(str(account))
        self.click("#sign-in button[type=submit]")

    def live_states(self):
        rows = self.browser.find_elements(By.CSS_SELECTOR, "[data-testid=live-calls] tbody tr")
        return {r.get_attribute("data-call"): r.get_attribute("data-state") for r in rows}

    def test_a_call_appears_live_while_it_rings_and_talks_and_leaves_when_it_ends(self):
        account, token = new_account()
        self.sign_in(token)
        self.wait.until(lambda b: "account %d" % account in b.find_element(By.ID, "who").text)
        self.wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#view .empty"))
        events = call_events("outbound-answered", "live")
        ingest(token, events[:2])  # the first leg: new, then ringing the far end
        self.wait.until(lambda b: "initiated" in self.live_states().values()
                        or "ringing" in self.live_states().values())
        ingest(token, events[2:6])  # the far end answers
        self.wait.until(lambda b: list(self.live_states().values()) == ["active"])
        call_id = next(iter(self.live_states()))
        answered = self.text_of("[data-testid=live-calls] tbody tr td:nth-child(7)")
        self.assertIn("+15557654321", answered)
        ingest(token, events[6:])  # both legs end
        self.wait.until(lambda b: self.live_states() == {})
        # It is in the history, and opens with its legs drawn and its events listed.
        self.browser.get(BASE + "/console#/history")
        self.wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "tr[data-call='%s']" % call_id))
        self.click("tr[data-call='%s'] a" % call_id)
        self.wait.until(lambda b: b.find_element(By.CSS_SELECTOR, "[data-testid=call-id]").text == call_id)
        status, call = api("GET", "/v4/accounts/%d/calls/%s" % (account, call_id), token)
        self.assertEqual(status, 200)
        legs = self.browser.find_elements(By.CSS_SELECTOR, "svg[data-testid=legs] g.leg")
        self.assertEqual(len(legs), len(call["legs"]))
        self.assertEqual(len(self.browser.find_elements(By.CSS_SELECTOR, "svg g.leg rect.talk")), 2)
        timeline = self.browser.find_elements(By.CSS_SELECTOR, "[data-testid=timeline] tbody tr")
        self.assertEqual(len(timeline), len(call["timeline"]))
        # Each event as it was sent, and as the hub read it.
        self.assertEqual(len(self.browser.find_elements(
            By.CSS_SELECTOR, "[data-testid=timeline] tbody tr details")), 2 * len(call["timeline"]))
        self.assertEqual(self.text_of("[data-testid=call-disposition]").split()[0], call["disposition"])
        # Times are shown in the browser's zone, with UTC on hover.
        title = self.find("[data-testid=call-summary] time").get_attribute("title")
        self.assertTrue(title.endswith("(UTC)"), title)

    def test_the_history_exports_exactly_its_filtered_rows_as_csv(self):
        account, token = new_account()
        for i, scenario in enumerate(["outbound-answered", "outbound-failed", "busy-device-missed",
                                      "caller-abandons-while-ringing"]):
            ingest(token, call_events(scenario, "csv%d" % i))
        self.sign_in(token)
        self.browser.get(BASE + "/console#/history")
        self.click("#f-direction option[value=outbound]")
        self.click("#filters button[type=submit]")
        self.wait.until(lambda b: "direction=outbound" in b.current_url)
        status, listed = api("GET", "/v4/accounts/%d/calls?direction=outbound&limit=500" % account, token)
        self.assertEqual(status, 200)
        self.wait.until(lambda b: self.text_of("[data-testid=history-total]") == str(listed["total"]))
        self.click("#filters button[data-action=export]")
        path = os.path.join(self.downloads, "calls.csv")
        WebDriverWait(self.browser, 30).until(lambda b: os.path.exists(path))
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        self.assertEqual(rows[0][:3], ["id", "started_at", "answered_at"])
        self.assertEqual([r[0] for r in rows[1:]], [c["id"] for c in listed["items"]])
        for row, item in zip(rows[1:], listed["items"]):
            self.assertEqual(row[4], item["direction"])
            self.assertEqual(row[9], item["disposition"])
        self.assertGreater(len(rows), 1)

    def test_a_failing_callback_stands_out_and_a_delivery_is_sent_again_from_the_page(self):
        account, token = new_account()
        receiver = Receiver()
        self.addCleanup(receiver.close)
        status, made = api("POST", "/v4/accounts/%d/integrations/events/overview" % account, token,
                           {":callback": {"name": "CRM", "config": {"url": receiver.url}},
                            ":subscriptions": [{":tags": ["call"]}]})
        self.assertEqual(status, 200, made)
        receiver.status = 500
        ingest(token, call_events("outbound-answered", "fail"))
        self.sign_in(token)
        # The first screen says so.
        banner = self.find("[data-testid=callback-trouble]")
        self.wait.until(lambda b: "failing since" in b.find_element(
            By.CSS_SELECTOR, "[data-testid=callback-trouble]").text)
        self.assertIn("CRM", banner.text)
        self.click("[data-testid=callback-trouble] a")
        self.wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "tr[data-status=failed-retrying]"))
        # Fixed, and one delivery sent again from the page: it goes through.
        receiver.status = 200
        row = self.find("tr[data-status=failed-retrying]")
        delivery = row.get_attribute("data-delivery")
        self.click("tr[data-delivery='%s'] button[data-action=retry]" % delivery)
        self.wait.until(lambda b: b.find_element(
            By.CSS_SELECTOR, "tr[data-delivery='%s']" % delivery).get_attribute("data-status") == "succeeded")
        # Filtered by status, the list shows only those.
        self.click("#f-status option[value=succeeded]")
        self.click("#delivery-filter button[type=submit]")
        self.wait.until(lambda b: "status=succeeded" in b.current_url)
        self.wait.until(lambda b: {r.get_attribute("data-status") for r in b.find_elements(
            By.CSS_SELECTOR, "[data-testid=deliveries] tbody tr")} == {"succeeded"})
        # The call's page lists every delivery made about it, and its call log once made.
        status, calls = api("GET", "/v4/accounts/%d/calls" % account, token)
        call_id = calls["items"][0]["id"]
        self.browser.get(BASE + "/console#/calls/" + call_id)
        # Its eight events went to the one listener.
        self.wait.until(lambda b: len(b.find_elements(
            By.CSS_SELECTOR, "[data-testid=call-deliveries] tbody tr")) >= 8)
        self.wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "[data-testid=call-logs] tbody tr"))
        self.assertIn(delivery, [r.get_attribute("data-delivery") for r in self.browser.find_elements(
            By.CSS_SELECTOR, "[data-testid=call-deliveries] tbody tr")])

    def test_the_configuration_is_edited_with_the_apis_errors_next_to_the_field(self):
        account, token = new_account()
        receiver = Receiver()
        self.addCleanup(receiver.close)
        # As the admin: the console acts for the account it looks at.
        self.sign_in(ADMIN, account)
        self.wait.until(lambda b: "admin, account %d" % account in b.find_element(By.ID, "who").text)
        self.browser.get(BASE + "/console#/config")
        url = self.find("#new-callback-config-url")
        url.send_keys("ftp://example.org/hook")
        self.click("#new-callback button[type=submit]")
        error = "#new-callback [data-error-for='config.url']"
        self.wait.until(lambda b: b.find_element(By.CSS_SELECTOR, error).text)
        self.assertEqual(self.find("#new-callback-config-url").get_attribute("aria-invalid"), "true")
        # A URL that answers: made, and listed.
        url = self.find("#new-callback-config-url")
        url.clear()
        url.send_keys(receiver.url)
        self.find("#new-callback-name").send_keys("CRM")
        self.click("#new-callback button[type=submit]")
        self.wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "[data-callback]"))
        status, listed = api("GET", "/v4/accounts/%d/integrations/events/callbacks" % account, token)
        self.assertEqual([c["name"] for c in listed["items"]], ["CRM"])
        # A listener on it, subscribed to calls, with a filter refused then accepted.
        self.click("#new-listener button[type=submit]")
        listener = self.find("[data-listener]").get_attribute("data-listener")
        self.click("#sub%s-tags option[value=call]" % listener)
        self.click("#sub%s button[type=submit]" % listener)
        self.wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "[data-subscription]"))
        ingest(token, call_events("outbound-answered", "cfg"))
        WebDriverWait(self.browser, 30).until(lambda b: len(receiver.got) >= 9)  # 8 events and the test POST
        # Replayed from the page: what it matched in a time range is sent again.
        before = len(receiver.got)
        for field, value in (("from", "2026-01-01T00:00"), ("to", "2027-12-31T23:59")):
            self.browser.execute_script("arguments[0].value = arguments[1]",
                                        self.find("#replay%s-%s" % (listener, field)), value)
        self.click("#replay%s button[type=submit]" % listener)
        self.wait.until(lambda b: "Queued to be sent again: 8" in b.find_element(By.ID, "notice").text)
        WebDriverWait(self.browser, 30).until(lambda b: len(receiver.got) >= before + 8)
        self.find("#filter%s-filter_value-eq" % listener).send_keys("five")
        self.click("#filter%s button[type=submit]" % listener)
        self.wait.until(lambda b: "phone number" in b.find_element(
            By.CSS_SELECTOR, "#filter%s [data-error-for='filter_value.eq']" % listener).text)
        eq = self.find("#filter%s-filter_value-eq" % listener)
        eq.clear()
        eq.send_keys("+15557654321")
        self.click("#filter%s button[type=submit]" % listener)
        self.wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "[data-filter]"))
        status, filters = api("GET", "/v4/accounts/%d/integrations/events/listeners/%s/filters"
                              % (account, listener), token)
        self.assertEqual(filters["items"][0]["filter_value"], {"eq": "+15557654321"})
        # Edited in place.
        fid = self.find("[data-filter]").get_attribute("data-filter")
        eq = self.find("#f%s-filter_value-eq" % fid)
        eq.clear()
        eq.send_keys("+15550001111")
        self.click("#f%s button[type=submit]" % fid)
        self.wait.until(lambda b: api("GET", "/v4/accounts/%d/integrations/events/listeners/%s/filters"
                                      % (account, listener), token)[1]["items"][0]["filter_value"]
                        == {"eq": "+15550001111"})
        self.click("#listener%s-version option[value=canonical]" % listener)
        self.click("#listener%s button[type=submit]" % listener)
        self.wait.until(lambda b: api("GET", "/v4/accounts/%d/integrations/events/listeners/%s"
                                      % (account, listener), token)[1]["version"] == "canonical")
        # A callback in use cannot be deleted: the API's 409 says why.
        self.click("[data-callback] button[data-action=api-delete]")
        self.wait.until(lambda b: "in use" in b.find_element(
            By.CSS_SELECTOR, "[data-testid=config-error]").text
                        or "in use" in " ".join(e.text for e in b.find_elements(By.CSS_SELECTOR, ".form-error")))
        # A profile: its e-mail is checked.
        self.find("#new-profile-name").send_keys("Ops")
        self.find("#new-profile-support_email").send_keys("ops@example.org")
        self.click("#new-profile button[type=submit]")
        self.wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "[data-profile]"))
        self.click("[data-profile] button[data-action=api-delete]")
        self.wait.until(lambda b: not b.find_elements(By.CSS_SELECTOR, "[data-profile]"))
        # A schedule: its time zone is checked; then a listener passes events in its hours.
        self.find("#new-schedule-name").send_keys("Office")
        tz = self.find("#new-schedule-timezone")
        tz.clear()
        tz.send_keys("Mars/Olympus_Mons")
        self.click("#new-schedule-days option[value=mon]")
        self.click("#new-schedule button[type=submit]")
        self.wait.until(lambda b: "unknown time zone" in b.find_element(
            By.CSS_SELECTOR, "#new-schedule [data-error-for=timezone]").text)
        tz = self.find("#new-schedule-timezone")
        tz.clear()
        tz.send_keys("America/New_York")
        self.click("#new-schedule button[type=submit]")
        self.wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "[data-schedule]"))
        self.assertIn("mon 09:00–17:00", self.text_of("[data-schedule]"))
        self.click("#schedule-filter%s button[type=submit]" % listener)
        self.wait.until(lambda b: any(
            f["filter_type"] == "schedule" for f in api(
                "GET", "/v4/accounts/%d/integrations/events/listeners/%s/filters" % (account, listener),
                token)[1]["items"]))

    def test_a_wrong_token_is_refused_with_the_apis_message(self):
        self.sign_in("sb_api_1_not-a-token")
        self.wait.until(lambda b: b.find_element(By.ID, "sign-in-error").text)
        self.assertIn("not valid", self.text_of("#sign-in-error"))
        self.assertFalse(self.find("#nav").is_displayed())
        self.assertIsNone(self.browser.execute_script("return sessionStorage.getItem('sb-token')"))

    def test_an_extension_token_sees_its_extensions_calls_only(self):
        account, token = new_account()
        ingest(token, call_events("outbound-answered", "ext"))
        status, ext_token = api("POST", "/admin/accounts/%d/tokens" % account, ADMIN,
                                {"scope": "api", "extension_id": 500})
        self.assertEqual(status, 201, ext_token)
        status, other_token = api("POST", "/admin/accounts/%d/tokens" % account, ADMIN,
                                  {"scope": "api", "extension_id": 777})
        self.sign_in(other_token["token"])
        self.wait.until(lambda b: "extension 777" in b.find_element(By.ID, "who").text)
        self.browser.get(BASE + "/console#/history")
        self.wait.until(lambda b: self.text_of("[data-testid=history-total]") == "0")
        self.click("#sign-out")
        self.sign_in(ext_token["token"])
        self.wait.until(lambda b: "extension 500" in b.find_element(By.ID, "who").text)
        self.browser.get(BASE + "/console#/history")
        self.wait.until(lambda b: self.text_of("[data-testid=history-total]") == "1")

    def test_the_admin_picks_an_account_and_a_bad_call_id_gives_a_friendly_page(self):
        account, token = new_account()
        self.sign_in(ADMIN)
        self.wait.until(lambda b: "account id" in b.find_element(By.ID, "sign-in-error").text)
        self.find("#account").send_keys(str(account))
        self.click("#sign-in button[type=submit]")
        self.wait.until(lambda b: "admin, account %d" % account in b.find_element(By.ID, "who").text)
        self.browser.get(BASE + "/console#/calls/no-such-call")
        self.wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "[data-testid=error]"))
        self.assertEqual(self.text_of("[data-testid=error]"), "Not found: call not found")
        # Signing out forgets the token.
        self.click("#sign-out")
        self.assertIsNone(self.browser.execute_script("return sessionStorage.getItem('sb-token')"))
        self.assertTrue(self.find("#sign-in").is_displayed())

    def test_the_console_is_used_with_the_keyboard_alone(self):
        account, token = new_account()
        ingest(token, call_events("outbound-answered", "keys"))
        self.browser.get(BASE + "/console")
        self.find("#token")
        active = lambda: self.browser.switch_to.active_element
        self.wait.until(lambda b: active().get_attribute("id") == "token")
        active().send_keys(token + Keys.ENTER)
        self.wait.until(lambda b: "account %d" % account in b.find_element(By.ID, "who").text)
        # The first view's heading takes the focus once it is shown.
        self.wait.until(lambda b: active().tag_name == "h2" and active().text.startswith("Live calls"))
        # Back (shift+tab) to the History link above, and follow it; the view's heading takes
        # the focus.
        for _ in range(20):
            if (active().get_attribute("href") or "").endswith("#/history"):
                break
            active().send_keys(Keys.SHIFT + Keys.TAB)
        active().send_keys(Keys.ENTER)
        self.wait.until(lambda b: active().tag_name == "h2" and active().text == "History")
        # On to the call's row link, and open it.
        for _ in range(40):
            if (active().get_attribute("href") or "").find("#/calls/") >= 0:
                break
            active().send_keys(Keys.TAB)
        active().send_keys(Keys.ENTER)
        self.wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "[data-testid=call-id]"))

    def test_pages_are_usable_on_a_phones_width_with_labels_on_every_control(self):
        account, token = new_account()
        ingest(token, call_events("outbound-answered", "phone"))
        self.browser.set_window_size(390, 844)
        self.sign_in(token)
        self.browser.get(BASE + "/console#/history")
        self.find("#filters")
        for control in self.browser.find_elements(By.CSS_SELECTOR, "input, select"):
            cid = control.get_attribute("id")
            if not control.is_displayed():
                continue
            labels = self.browser.find_elements(By.CSS_SELECTOR, "label[for='%s']" % cid)
            self.assertTrue(labels, "control %s has no label" % cid)
        width = self.browser.execute_script("return document.documentElement.scrollWidth")
        self.assertLessEqual(width, 390 + 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
