"""The labeling web app in a real browser, from the keyboard alone.

Log in, label five items, go back and change one label, reload: the progress is kept, the
store holds one event per action, and a cell holding HTML shows as text, never as markup.
A reviewer clears a review queue the same way (the last test).

Drives the system Chromium (/usr/bin/chromium, Debian package ``chromium``; another path in
``ACTIVE_LABELING_CHROMIUM``) through Playwright, never a browser Playwright downloads;
without either, the module skips, with the reason and the way to install it in the test
summary (``tests/conftest.py`` repeats it in a line of its own). The
fixtures live here, not in a conftest.py: under --doctest-modules two conftest modules of
the same name would clash.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest

from active_labeling.flow.project import Project
from active_labeling.labeling.auth import add_user
from active_labeling.labeling.dashboard import PANELS
from active_labeling.store import datasets
from active_labeling.store.labels import LabelEvent, append_events

from flow_helpers import write_pool_csv

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install playwright"
)
expect = sync_api.expect
# A loaded 2-core CI machine can be slow: wait up to 15 s, as for the page itself.
expect.set_options(timeout=15_000)

CHROMIUM = Path(os.environ.get("ACTIVE_LABELING_CHROMIUM", "/usr/bin/chromium"))
#: The login page, with or without the ``next`` page to return to.
LOGIN_URL = re.compile(r"/login\.html(\?next=[^&]*)?$")
if not CHROMIUM.exists():
    pytest.skip(
        f"no system Chromium at {CHROMIUM}: the browser tests did not run; install it with "
        "`apt-get install chromium` (Debian, Ubuntu) or set ACTIVE_LABELING_CHROMIUM",
        allow_module_level=True,
    )
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """The system Chromium, headless, for the whole session."""
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`active-labeling serve` in a child process, on 127.0.0.1 and a free port."""

    def __init__(self, project_root: Path, log_path: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "active_labeling.cli",
                "serve",
                str(project_root),
                *("--host", "127.0.0.1", "--port", str(self.port)),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        self.stop()
        pytest.fail(f"the labeling server did not start:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        """Stop the server; its store is free for other connections afterwards."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@pytest.fixture
def labeling_server(tmp_path):
    """A factory: ``labeling_server(project_root)`` starts a server; all stop at teardown."""
    servers: list[Server] = []

    def start(project_root: Path) -> Server:
        server = Server(Path(project_root), tmp_path / f"serve-{len(servers)}.log")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


PAYLOAD = "<img src=x onerror=alert(1)>"
CLASSES = ["yes", "no"]
NO_QUEUE = "No ranked queue yet: items come in dataset order until the query sampler ranks them."
SCREENSHOT = Path("/tmp/labeling.png")


def make_labeling_project(root: Path) -> tuple[Project, str]:
    """60 items, no labels, no queue; item I0's review is an HTML payload. Returns the
    project and the password of labeler 'ann'."""
    project = Project.init(root, classes=CLASSES, id_column="id")
    pool = write_pool_csv(root / "pool.csv", n=60)
    header, first, *rest = pool.read_text(encoding="utf-8").splitlines()
    assert first.startswith("I0,")
    first = f"{first.rsplit(',', 1)[0]},{PAYLOAD}"
    pool.write_text("\n".join([header, first, *rest]) + "\n", encoding="utf-8")
    with project.connect() as con:
        project.record_dataset(datasets.import_file(con, "pool", pool, id_column="id"))
        password = add_user(con, "ann", "labeler")
    return project, password


def test_keyboard_labeling_back_relabel_and_reload(tmp_path, browser, labeling_server):
    project, password = make_labeling_project(tmp_path / "p")
    server = labeling_server(project.root)

    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    dialogs: list[str] = []
    problems: list[str] = []

    def on_dialog(dialog):
        dialogs.append(dialog.message)
        dialog.dismiss()

    def on_console(message):
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            problems.append(message.text)

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", on_console)

    card = page.locator("#item")

    # Waits go through locators: the page's CSP forbids the string evaluation that
    # wait_for_function needs, and the CSP stays on to prove the pages comply with it.
    def next_item(previous: str | None) -> str:
        """Wait until the card shows an item other than ``previous``; its id."""
        if previous is not None:
            expect(card).not_to_have_attribute("data-item-id", previous)
        expect(card).to_have_attribute("data-item-id", re.compile(r".+"))
        return card.get_attribute("data-item-id")

    def writes_settled() -> None:
        expect(page.locator("body")).to_have_attribute("data-pending-writes", "0")

    # Logged out, the app sends us to the login form, whose first field has the focus.
    page.goto(server.url + "/")
    page.wait_for_url(LOGIN_URL)
    expect(page.locator("#username")).to_be_focused()
    page.keyboard.type("ann")
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    page.wait_for_url("**/index.html")

    # No queue yet: items come in dataset order, and the page says so (not that a ranked
    # queue is done: there never was one).
    item = next_item(None)
    assert item == "I0"
    expect(page.locator("#banner")).to_have_text(NO_QUEUE)

    # The HTML in the data is text on the page, and nothing of it runs.
    expect(card.locator("dd", has_text=PAYLOAD)).to_have_count(1)
    assert page.locator('img[src="x"]').count() == 0
    assert card.locator("img").count() == 0

    # Five labels, digit keys only: 1 is 'yes', 2 is 'no' (class order).
    expect(page.locator(".class-button .key-badge")).to_have_text(["1", "2"])
    labeled: dict[str, str] = {}
    for key in "12121":
        page.keyboard.press(key)
        labeled[item] = CLASSES[int(key) - 1]
        item = next_item(item)
    on_screen = item
    writes_settled()
    expect(page.locator("#p-mine-session")).to_have_text("5")

    # Left arrow: the last item labeled, its label highlighted; 2 changes it to 'no'.
    last = list(labeled)[-1]
    assert labeled[last] == "yes"
    page.keyboard.press("ArrowLeft")
    expect(card).to_have_attribute("data-source", "back")
    expect(card).to_have_attribute("data-item-id", last)
    expect(page.locator(".class-button[aria-pressed='true']")).to_have_attribute(
        "data-label", "yes"
    )
    page.keyboard.press("2")
    labeled[last] = "no"
    # Then back to the queue, on the item we left.
    expect(card).to_have_attribute("data-source", "queue")
    expect(card).to_have_attribute("data-item-id", on_screen)
    writes_settled()

    # A reload starts a new labeling session; the progress is kept, and so is our lease.
    page.reload()
    expect(card).to_have_attribute("data-item-id", on_screen)
    expect(page.locator("#p-total")).to_have_text("5")
    expect(page.locator("#p-mine-total")).to_have_text("5")  # items: the relabel counts once
    expect(page.locator("#p-mine-session")).to_have_text("0")
    expect(page.locator("#recent .recent-item").first).to_contain_text(last)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    assert dialogs == []
    assert problems == []
    context.close()
    server.stop()

    with project.connect(read_only=True) as con:
        events = con.execute(
            "SELECT item_id, label, status, session, lead_time_ms FROM label_events "
            "WHERE annotator = 'ann' ORDER BY event_id"
        ).fetchall()
        current = dict(
            con.execute(
                "SELECT item_id, label FROM current_labels WHERE dataset = 'pool'"
            ).fetchall()
        )
    assert len(events) == 6
    assert [e[2] for e in events] == ["labeled"] * 6
    assert [(e[0], e[1]) for e in events[-1:]] == [(last, "no")]
    assert current == labeled
    assert len({e[3] for e in events}) == 1  # one page load, one session id
    assert all(isinstance(e[4], int) and e[4] >= 0 for e in events)


def test_multi_label_items_by_keyboard(tmp_path, browser, labeling_server):
    """A multi-label project: class keys choose and unchoose, Enter saves the choice."""
    project = Project.init(tmp_path / "m", classes=["red", "green", "blue"], multi_label=True)
    pool = write_pool_csv(tmp_path / "m" / "pool.csv", n=10)
    with project.connect() as con:
        project.record_dataset(datasets.import_file(con, "pool", pool, id_column="id"))
        password = add_user(con, "ann", "labeler")
    server = labeling_server(project.root)
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    card = page.locator("#item")
    page.goto(server.url + "/")
    page.wait_for_url(LOGIN_URL)
    page.locator("#username").fill("ann")
    page.locator("#password").fill(password)
    page.keyboard.press("Enter")
    page.wait_for_url("**/index.html")
    expect(card).to_have_attribute("data-item-id", "I0")
    expect(page.locator("#btn-save")).to_be_visible()

    page.keyboard.press("1")
    page.keyboard.press("3")
    page.keyboard.press("1")  # unchosen again
    page.keyboard.press("2")
    chosen = page.locator(".class-button[aria-pressed='true']")
    expect(chosen).to_have_count(2)
    page.keyboard.press("Enter")
    expect(card).to_have_attribute("data-item-id", "I1")
    expect(page.locator(".class-button[aria-pressed='true']")).to_have_count(0)  # fresh item
    page.keyboard.press("Enter")  # nothing chosen: "no class applies" is an answer too
    expect(card).to_have_attribute("data-item-id", "I2")
    expect(page.locator("body")).to_have_attribute("data-pending-writes", "0")

    page.keyboard.press("ArrowLeft")  # back to I1, then I0: the saved choice shows
    expect(card).to_have_attribute("data-item-id", "I1")
    expect(page.locator("#item-meta")).to_contain_text("(no class)")
    page.keyboard.press("ArrowLeft")
    expect(card).to_have_attribute("data-item-id", "I0")
    expect(page.locator(".class-button[aria-pressed='true']")).to_have_count(2)
    context.close()
    server.stop()

    with project.connect(read_only=True) as con:
        current = dict(con.execute("SELECT item_id, label FROM current_labels").fetchall())
    assert current == {"I0": '["green", "blue"]', "I1": "[]"}


def test_dashboard_shows_the_advice_and_every_plot(tmp_path, browser, labeling_server):
    import json
    from datetime import datetime, timezone

    project = Project.init(tmp_path / "d", classes=CLASSES, id_column="id")
    pool = write_pool_csv(tmp_path / "d" / "pool.csv", n=10)
    now = datetime.now(timezone.utc)
    with project.connect() as con:
        project.record_dataset(datasets.import_file(con, "pool", pool, id_column="id"))
        password = add_user(con, "rita", "reviewer")
        con.executemany(
            "INSERT INTO metrics VALUES ('pool', 'contradiction_ratio', ?, 'clf', ?, ?, ?, '{}')",
            [[0.3, "1", 10, now], [0.05, "2", 20, now]],
        )
        con.execute(
            "INSERT INTO stopping_advice (dataset, advice, reasons, model_name, model_version, "
            "n_labels, computed_at, votes) VALUES ('pool', 'check', ?, 'clf', '2', 20, ?, ?)",
            [
                json.dumps([PAYLOAD]),
                now,
                json.dumps(
                    {
                        "policy": "cautious",
                        "votes": [
                            {"rule": PAYLOAD, "vote": "stop", "decides": True, "stuck": False}
                        ],
                    }
                ),
            ],
        )
    server = labeling_server(project.root)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Refused to" in m.text or "Security" in m.text else 0,
    )
    page.goto(server.url + "/")
    page.wait_for_url(LOGIN_URL)
    page.locator("#username").fill("rita")
    page.locator("#password").fill(password)
    page.keyboard.press("Enter")
    page.wait_for_url("**/index.html")
    page.locator("#dashboard-link").click()
    page.wait_for_url("**/dashboard.html")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#advice")).to_have_attribute("data-advice", "check")
    expect(page.locator("#advice-reasons li")).to_have_text([PAYLOAD])  # as text
    # Each reason carries its rule's mark (here the rule says stop: met).
    expect(page.locator("#advice-reasons li.vote.met")).to_have_count(1)
    expect(page.locator(".legend")).to_contain_text("✓ the rule says stop")
    expect(page.locator("#advice-votes li")).to_have_text([f"{PAYLOAD} (decides): says stop"])
    expect(page.locator("#advice-explain")).to_contain_text("the deciding rules agree")
    expect(page.locator("#advice-expected")).to_contain_text("In the advice study")
    expect(page.locator("#strategy-word")).to_have_text("none yet")  # no queue yet
    plots = page.locator("#plots figure img")
    expect(plots).to_have_count(len(PANELS))
    for i in range(len(PANELS)):  # every image loaded (an SVG drawn by the server)
        expect(plots.nth(i)).to_have_js_property("complete", True)
        assert plots.nth(i).evaluate("img => img.naturalWidth") > 0
    expect(page.locator("#plots a.download")).to_have_count(2 * len(PANELS))
    page.screenshot(path="/tmp/dashboard.png", full_page=True)
    page.screenshot(path="/tmp/n18-dashboard.png", full_page=True)
    page.get_by_role("link", name="Activity").click()  # the admin page, on common.js too
    page.wait_for_url("**/admin.html")
    expect(page.locator("#labelers-empty")).to_be_visible()  # nobody labeled yet
    expect(page.locator(".export-link").first).to_be_hidden()  # reviewers do not export
    assert problems == []
    context.close()


def test_a_labeler_opening_the_admin_pages_is_sent_back_to_labeling(
    tmp_path, browser, labeling_server
):
    project, password = make_labeling_project(tmp_path / "p")
    server = labeling_server(project.root)
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(server.url + "/")
    page.wait_for_url(LOGIN_URL)
    page.locator("#username").fill("ann")
    page.locator("#password").fill(password)
    page.keyboard.press("Enter")
    page.wait_for_url("**/index.html")
    expect(page.locator("#admin-link")).to_be_hidden()
    for staff_page in ("admin.html", "dashboard.html"):
        page.goto(f"{server.url}/static/{staff_page}")
        page.wait_for_url("**/static/index.html")
        expect(page.locator("#item")).to_have_attribute("data-item-id", re.compile(r".+"))
    context.close()


WIDE_CLASSES = ["invoice", "receipt", "contract", "spam"]
LONG_TEXT = "The customer writes about the delivery that arrived late and damaged; " * 8


def make_wide_project(root: Path, n_columns: int = 32) -> tuple[Project, dict[str, str]]:
    """40 items of ``n_columns`` columns, the id included (numbers, categories and four
    long texts); the passwords of admin 'ada' and labeler 'ann'."""
    project = Project.init(root, classes=WIDE_CLASSES, id_column="id")
    n_numbers = n_columns - 9
    names = [f"feature_{i:02d}" for i in range(n_numbers)]
    names += ["country", "channel", "segment", "currency"]
    names += ["subject", "body", "notes", "history"]
    lines = ["id," + ",".join(names)]
    for row in range(40):
        numbers = [f"{(row * 7 + i) % 97 / 3:.2f}" for i in range(n_numbers)]
        words = ["France", "email", "retail", "EUR"]
        texts = [f'"{LONG_TEXT}{row}"'] * 4
        lines.append(",".join([f"W{row}", *numbers, *words, *texts]))
    csv = root / "wide.csv"
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with project.connect() as con:
        project.record_dataset(datasets.import_file(con, "wide", csv, id_column="id"))
        passwords = {"ada": add_user(con, "ada", "admin"), "ann": add_user(con, "ann", "labeler")}
    return project, passwords


def log_in(page, server, name: str, password: str) -> None:
    page.goto(server.url + "/")
    page.wait_for_url(LOGIN_URL)
    page.locator("#username").fill(name)
    page.locator("#password").fill(password)
    page.keyboard.press("Enter")
    page.wait_for_url("**/index.html")


def in_viewport(locator, height: int) -> bool:
    box = locator.bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height


def test_a_wide_row_fits_a_laptop_screen_with_the_admins_guide(tmp_path, browser, labeling_server):
    """32 columns at 1366x768: the classes, skip, back and undo are in the window without
    scrolling (they sat at y=1651), the fields run in two columns with long texts clamped,
    and the task and the class guidance an admin set on the admin page show, as text."""
    project, passwords = make_wide_project(tmp_path / "w")
    server = labeling_server(project.root)
    size = {"width": 1366, "height": 768}
    problems: list[str] = []

    # The admin writes the guide on the admin page.
    admin = browser.new_context(viewport=size, locale="en-US")
    page = admin.new_page()
    page.set_default_timeout(15_000)
    page.on("pageerror", lambda error: problems.append(str(error)))
    log_in(page, server, "ada", passwords["ada"])
    page.goto(server.url + "/static/admin.html")
    expect(page.locator("#guide-editor")).to_be_visible()
    task = (
        "Sort each customer document by what it is. Read the subject first; the body "
        "decides when the subject is vague. " + PAYLOAD + " When unsure, skip and say why "
        "in the comment. Two documents in one item: label the first one."
    )
    page.locator("#guide-task").fill(task)
    areas = page.locator("#guide-classes textarea")
    expect(areas).to_have_count(4)
    areas.nth(0).fill("A request to pay: an amount due and a due date.")
    areas.nth(3).fill(f"Unsolicited, or not from a customer. {PAYLOAD}")
    page.locator("#guide-save").click()
    expect(page.locator("#guide-status")).to_contain_text("Saved")
    page.screenshot(path="/tmp/n18-admin-guide.png", full_page=True)
    admin.close()

    context = browser.new_context(viewport=size, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("pageerror", lambda error: problems.append(str(error)))
    log_in(page, server, "ann", passwords["ann"])
    card = page.locator("#item")
    expect(card).to_have_attribute("data-item-id", re.compile(r"^W\d+$"))
    first = card.get_attribute("data-item-id")
    expect(card.locator(".fields.compact .item-field")).to_have_count(32)
    assert page.evaluate("window.scrollY") == 0
    buttons = [page.locator(".class-button").nth(i) for i in range(4)]
    buttons += [page.locator(f"#btn-{name}") for name in ("skip", "back", "undo")]
    assert all(in_viewport(button, size["height"]) for button in buttons)
    page.screenshot(path="/tmp/n18-labeling-1366x768.png")

    # The guide, as text: the payload shows, nothing of it runs or becomes markup.
    expect(page.locator("#task-text")).to_have_text(task)
    assert page.locator("#task img").count() == 0 and page.locator('img[src="x"]').count() == 0
    expect(page.locator(".class-button").nth(0)).to_have_attribute(
        "title", "A request to pay: an amount due and a due date."
    )
    page.locator("#class-guide summary").click()
    expect(page.locator("#class-guide-list dd")).to_have_text(
        [
            "A request to pay: an amount due and a due date.",
            f"Unsolicited, or not from a customer. {PAYLOAD}",
        ]
    )

    # A long text: three lines and a control that shows it whole.
    body = card.locator(".item-field", has_text="body").locator(".value")
    more = card.locator(".item-field", has_text="body").locator("button.more")
    expect(more).to_be_visible()
    clamped = body.evaluate("e => [e.clientHeight, e.scrollHeight]")
    assert clamped[0] < clamped[1]
    more.click()
    expect(more).to_have_attribute("aria-expanded", "true")
    assert body.evaluate("e => e.clientHeight") >= clamped[1] - 1
    for name in ("subject", "notes", "history"):
        card.locator(".item-field", has_text=name).locator("button.more").click()
    page.mouse.wheel(0, 400)
    expect(page.locator("#comment")).to_be_visible()
    assert page.evaluate("window.scrollY") > 0  # the item is taller than the window now
    assert all(in_viewport(button, size["height"]) for button in buttons)  # still in view
    page.screenshot(path="/tmp/n18-labeling-1366x768-expanded.png")

    page.keyboard.press("1")  # labeling from the keyboard still works
    expect(card).not_to_have_attribute("data-item-id", first)
    expect(page.locator("body")).to_have_attribute("data-pending-writes", "0")
    assert problems == []
    context.close()


def test_the_login_page_never_sends_to_another_site(tmp_path, browser, labeling_server):
    """?next= is followed only within the app: '/%09/evil.example' is '//evil.example' once
    the browser drops the tab, a link to another site."""
    project, password = make_labeling_project(tmp_path / "p")
    server = labeling_server(project.root)
    context = browser.new_context(locale="en-US")
    elsewhere: list[str] = []  # requests to the other site, answered here, never sent

    def other_site(route):
        elsewhere.append(route.request.url)
        route.fulfill(body="elsewhere", content_type="text/html")

    context.route(re.compile(r"^https?://evil\.example"), other_site)
    page = context.new_page()
    page.set_default_timeout(15_000)

    def landed(url: str) -> bool:
        return not url.startswith(server.url) or url.startswith(server.url + "/static/index")

    crafted = ["/%09/evil.example", "/%0A/evil.example", "/%0D%5Cevil.example", "//evil.example"]
    # Logging in through the form, then (logged in) the page sends on at once.
    page.goto(f"{server.url}/static/login.html?next={crafted[0]}")
    page.locator("#username").fill("ann")
    page.locator("#password").fill(password)
    page.keyboard.press("Enter")
    page.wait_for_url(landed)
    assert page.url.startswith(server.url) and elsewhere == []
    for next_page in crafted:
        page.goto(f"{server.url}/static/login.html?next={next_page}")
        page.wait_for_url(landed)
        assert page.url.startswith(server.url) and elsewhere == [], next_page
    # A page of the app is still followed, with its query and fragment.
    page.goto(f"{server.url}/static/login.html?next=/static/index.html%3Ffrom%3Dlogin%23top")
    page.wait_for_url(landed)
    assert page.url == f"{server.url}/static/index.html?from=login#top"
    context.close()


# --- task types: spans, boxes and audio, by keyboard and mouse, with screenshots --------------
# (/tmp/n17-*.png, or the folder in ACTIVE_LABELING_SCREENSHOTS). In this module: its
# session's Chromium is the one Playwright allows per process.

import json  # noqa: E402

from active_labeling.store.media import import_folder  # noqa: E402

from media_helpers import TEXTS, spans_project, wav_bytes  # noqa: E402

SHOTS = Path(os.environ.get("ACTIVE_LABELING_SCREENSHOTS", "/tmp"))
XSS = '<img src=x onerror="window.__xss = 1"> <script>window.__xss = 2</script> Ada Lovelace'


def _open(browser, server, password, size=(1280, 860)):
    context = browser.new_context(viewport={"width": size[0], "height": size[1]}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(server.url + "/")
    page.wait_for_url(LOGIN_URL)
    page.locator("#username").fill("ann")
    page.locator("#password").fill(password)
    page.keyboard.press("Enter")
    page.wait_for_url("**/index.html")
    return context, page


def _until(page, expression: str, timeout: float = 15.0) -> None:
    """Poll ``expression`` in the page until it is true (wait_for_function evaluates a string,
    which the app's CSP forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {expression}"
        time.sleep(0.05)


def _current(project):
    with project.connect(read_only=True) as con:
        return {
            r[0]: r[1] for r in con.execute("SELECT item_id, label FROM current_labels").fetchall()
        }


def test_spans_by_keyboard_and_mouse_with_prelabels_rtl_and_an_xss_payload_as_text(
    tmp_path, browser, labeling_server
):
    texts = [
        (XSS, []),
        TEXTS[0],
        ("שלום דוד , ברוך הבא לירושלים .", []),
        ("Ada Lovelace and Marie Curie .", []),
        TEXTS[1],
    ]
    project = spans_project(tmp_path / "s", texts=texts)
    with project.connect() as con:
        password = add_user(con, "ann", "labeler")
        # An earlier label: the dictionary proposes "Ada Lovelace" again.
        from active_labeling.store.labels import LabelEvent, append_events

        append_events(
            con,
            [
                LabelEvent(
                    "texts",
                    "t3",
                    "labeled",
                    "bob",
                    label=json.dumps([{"start": 0, "end": 12, "label": "PER"}]),
                )
            ],
        )
    server = labeling_server(project.root)
    context, page = _open(browser, server, password)
    card, text = page.locator("#item"), page.locator("#spans-text")

    # 1. The payload shows as text: no element, no script ran. Keyboard: End, Shift+←, 1.
    expect(card).to_have_attribute("data-item-id", "t0")
    expect(text).to_contain_text("Ada Lovelace")
    shown = text.evaluate(
        "el => Array.from(el.childNodes).filter(n => !(n.classList && "
        "n.classList.contains('span-chip'))).map(n => n.textContent).join('')"
    )
    assert shown == XSS  # the text as it is, chips aside
    assert text.locator("img, script").count() == 0
    assert page.evaluate("window.__xss") is None
    page.keyboard.press("End")
    page.keyboard.press("Shift+ArrowLeft")
    page.keyboard.press("1")
    expect(page.locator(".span-chip")).to_have_text("PER")
    page.screenshot(path=str(SHOTS / "n17-spans-xss.png"))
    page.keyboard.press("Enter")

    # 2. A prelabel from the dictionary; the mouse marks London; an overlap is refused.
    expect(card).to_have_attribute("data-item-id", "t1")
    expect(page.locator("#spans-note")).to_contain_text("proposed from the spans labeled before")
    london = text.locator(".tok", has_text="London")
    london.click()
    page.locator(".class-button[data-label='LOC']").click()
    lovelace, met = text.locator(".tok", has_text="Lovelace"), text.locator(".tok", has_text="met")
    lovelace.hover()
    page.mouse.down()
    met.hover()
    page.mouse.up()
    page.keyboard.press("1")
    expect(page.locator("#messages")).to_contain_text("overlaps a span already marked")
    page.keyboard.press("Escape")  # drop the selection
    charles, babbage = (
        text.locator(".tok", has_text="Charles"),
        text.locator(".tok", has_text="Babbage"),
    )
    charles.hover()
    page.mouse.down()
    babbage.hover()
    page.mouse.up()
    page.keyboard.press("1")
    expect(page.locator(".span-chip")).to_have_count(3)
    page.screenshot(path=str(SHOTS / "n17-spans.png"))
    page.keyboard.press("Enter")

    # 3. Right to left: shown so, and → moves back in reading order. S skips, Z undoes it.
    expect(card).to_have_attribute("data-item-id", "t2")
    expect(text).to_have_attribute("dir", "rtl")
    text.focus()
    page.keyboard.press("ArrowLeft")  # forward in Hebrew: the cursor is on the 2nd token
    expect(text.locator(".tok.cursor")).to_have_text("דוד")
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("1")
    page.screenshot(path=str(SHOTS / "n17-spans-rtl.png"))
    page.keyboard.press("Delete")
    expect(page.locator(".span-chip")).to_have_count(0)
    page.keyboard.press("s")
    expect(card).to_have_attribute("data-item-id", "t4")
    page.keyboard.press("z")
    expect(card).to_have_attribute("data-item-id", "t2")
    expect(page.locator("body")).to_have_attribute("data-pending-writes", "0")
    context.close()
    server.stop()

    current = _current(project)
    assert json.loads(current["t0"]) == [{"start": len(XSS) - 12, "end": len(XSS), "label": "PER"}]
    assert json.loads(current["t1"]) == [
        {"start": 0, "end": 12, "label": "PER"},
        {"start": 17, "end": 32, "label": "PER"},
        {"start": 36, "end": 42, "label": "LOC"},
    ]
    assert "t2" not in current


def _picture(width, height, seed):
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (235, 240, 245))
    draw = ImageDraw.Draw(image)
    draw.ellipse((40 + seed * 10, 40, 160 + seed * 10, 150), fill=(230, 120, 40))
    draw.rectangle((200, 90, 300, 200), fill=(60, 110, 200))
    return image


def test_boxes_drawn_moved_resized_and_deleted_by_mouse_and_keys(
    tmp_path, browser, labeling_server
):
    folder = tmp_path / "pics"
    folder.mkdir()
    for i in range(2):
        _picture(320, 240, i).save(folder / f"p{i}.png")
    project = Project.init(tmp_path / "b", classes=["ball", "box"])
    with project.connect() as con:
        project.record_dataset(
            import_folder(con, "pics", folder, project.root / "media", task="boxes")
        )
        password = add_user(con, "ann", "labeler")
    server = labeling_server(project.root)
    context, page = _open(browser, server, password)
    card, stage = page.locator("#item"), page.locator("#boxes-stage")
    expect(card).to_have_attribute("data-item-id", "p0.png")
    expect(page.locator("#boxes-note")).to_contain_text("320 × 240 px")
    page.locator(".boxes-image").evaluate("img => img.decode()")
    area = stage.bounding_box()
    sx, sy = area["width"] / 320, area["height"] / 240

    def at(x, y):  # image pixels to the page
        return area["x"] + x * sx, area["y"] + y * sy

    # Mouse: draw the ball's box, then drag the handle to resize it.
    page.mouse.move(*at(40, 40))
    page.mouse.down()
    page.mouse.move(*at(100, 100), steps=4)
    page.mouse.move(*at(150, 140), steps=4)
    page.mouse.up()
    page.mouse.move(*at(150, 140))
    page.mouse.down()
    page.mouse.move(*at(160, 150), steps=4)
    page.mouse.up()
    # Keys: Esc deselects, 2 chooses "box", N adds a box, arrows move it, Shift+arrows grow it.
    page.keyboard.press("Escape")
    page.keyboard.press("2")
    page.keyboard.press("n")
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+ArrowDown")
    # A third box, deleted again.
    page.keyboard.press("n")
    page.keyboard.press("Delete")
    boxes = json.loads(page.locator("body").get_attribute("data-boxes"))
    assert [b["label"] for b in boxes] == ["ball", "box"]
    page.screenshot(path=str(SHOTS / "n17-boxes.png"))
    page.keyboard.press("Enter")
    expect(card).to_have_attribute("data-item-id", "p1.png")
    # Mouse again: move a box by dragging it, on the second image.
    page.locator(".boxes-image").evaluate("img => img.decode()")
    area = stage.bounding_box()
    page.keyboard.press("n")
    page.mouse.move(*at(160, 120))
    page.mouse.down()
    page.mouse.move(*at(100, 80), steps=5)
    page.mouse.up()
    page.keyboard.press("Enter")
    expect(page.locator("body")).to_have_attribute("data-pending-writes", "0")
    context.close()
    server.stop()

    current = _current(project)
    first = json.loads(current["p0.png"])
    ball, box = first
    assert ball["label"] == "ball" and abs(ball["x"] - 40) <= 3 and abs(ball["y"] - 40) <= 3
    assert abs(ball["w"] - 120) <= 4 and abs(ball["h"] - 110) <= 4  # drawn to 150,140, then +10
    assert box == {
        "x": 135.0,
        "y": 90.0,
        "w": 80.0,
        "h": 63.0,
        "label": "box",
    }  # 320/4 wide, moved 5 x 3 px
    moved = json.loads(current["p1.png"])[0]
    assert abs(moved["x"] - 60) <= 3 and abs(moved["y"] - 50) <= 3  # 120,90 dragged by -60,-40
    for b in [*first, moved]:
        assert 0 <= b["x"] and b["x"] + b["w"] <= 320 and 0 <= b["y"] and b["y"] + b["h"] <= 240


def test_audio_plays_seeks_by_key_then_takes_a_class(tmp_path, browser, labeling_server):
    folder = tmp_path / "sounds"
    folder.mkdir()
    for i in range(2):
        (folder / f"s{i}.wav").write_bytes(wav_bytes(12.0, tone=330 + 110 * i))
    project = Project.init(tmp_path / "a", classes=["speech", "music"])
    with project.connect() as con:
        project.record_dataset(import_folder(con, "sounds", folder, project.root / "media"))
        password = add_user(con, "ann", "labeler")
    server = labeling_server(project.root)
    context, page = _open(browser, server, password)
    card, player = page.locator("#item"), page.locator("#audio-player")
    expect(card).to_have_attribute("data-item-id", "s0.wav")
    expect(player).to_be_visible()
    _until(page, "document.getElementById('audio-player').readyState >= 1")
    page.locator("#item").focus()
    page.keyboard.press("]")
    page.keyboard.press("]")
    assert page.evaluate("document.getElementById('audio-player').currentTime") == pytest.approx(10)
    page.keyboard.press("[")
    assert page.evaluate("document.getElementById('audio-player').currentTime") == pytest.approx(5)
    page.keyboard.press(" ")
    _until(page, "!document.getElementById('audio-player').paused")
    page.screenshot(path=str(SHOTS / "n17-audio.png"))
    page.keyboard.press(" ")
    _until(page, "document.getElementById('audio-player').paused")
    page.keyboard.press("2")
    expect(card).to_have_attribute("data-item-id", "s1.wav")
    page.locator(".class-button[data-label='speech']").click()
    expect(page.locator("body")).to_have_attribute("data-pending-writes", "0")
    context.close()
    server.stop()
    assert _current(project) == {"s0.wav": "music", "s1.wav": "speech"}


# --- review ---------------------------------------------------------------------------------
# A reviewer corrects three items and sends one back with a comment, from the keyboard; the
# labeler who asks next gets it first, with the comment. Screenshots for the record:
# /tmp/n15-review-suspect.png (a likely label error), /tmp/n15-review-disagreement.png (two
# labelers who disagree), /tmp/n15-review-send-back.png (the comment box open for a
# send-back), /tmp/n15-review-done.png (the decisions), /tmp/n15-sent-back.png (the
# labeler's page) and /tmp/n15-dashboard-quality.png.

SHOTS = Path("/tmp")
#: ann and bob disagree on these items (ann says yes, bob no).
SPLIT = ["I1", "I2", "I3", "I4"]


def make_review_project(root: Path) -> tuple[Project, dict[str, str]]:
    """40 items; I10 labeled 'yes' once and doubted by model 'clf' v1 (as the label-errors
    step marks a suspect); ann and bob split on SPLIT. Returns the passwords."""
    project = Project.init(root, classes=["yes", "no"], id_column="id")
    pool = write_pool_csv(root / "pool.csv", n=40)
    with project.connect() as con:
        project.record_dataset(datasets.import_file(con, "pool", pool, id_column="id"))
        passwords = {
            "rita": add_user(con, "rita", "reviewer"),
            "ann": add_user(con, "ann", "labeler"),
        }
        events = [LabelEvent("pool", "I10", "labeled", "cy", label="yes", comment="looks fine")]
        for item in SPLIT:
            events += [
                LabelEvent("pool", item, "labeled", "ann", label="yes"),
                LabelEvent("pool", item, "labeled", "bob", label="no", comment="not sure"),
            ]
        append_events(con, events)
        (state_event,) = con.execute(
            "SELECT event_id FROM item_state WHERE item_id = 'I10'"
        ).fetchone()
        now = datetime.now(timezone.utc)
        con.execute(
            "INSERT INTO label_suspects VALUES ('pool', 'clf', '1', 'I10', ?, 'yes', 'no', "
            "0.07, 1, ?)",
            [state_event, now],
        )
        con.execute("INSERT INTO label_error_runs VALUES ('pool', 'clf', '1', 9, 1, 5, ?)", [now])
    return project, passwords


def _login(page, url: str, name: str, password: str, landing: str) -> None:
    page.goto(url + "/")
    page.wait_for_url(LOGIN_URL)
    # Into the fields, not to whatever has the focus: typing before the page's autofocus
    # took hold lost the name about once in four runs.
    page.locator("#username").fill(name)
    page.locator("#password").fill(password)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/{landing}")


def test_a_reviewer_corrects_three_items_and_sends_one_back_by_keyboard(
    tmp_path, browser, labeling_server
):
    project, passwords = make_review_project(tmp_path / "p")
    server = labeling_server(project.root)
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )

    _login(page, server.url, "rita", passwords["rita"], "index.html")
    expect(page.locator("#review-link")).to_be_visible()
    page.goto(server.url + "/static/review.html")
    card = page.locator("#item")

    def showing(item: str) -> None:
        expect(card).to_have_attribute("data-item-id", item)

    # First the likely label error, with what the model suggests.
    showing("I10")
    expect(page.locator("#item-reasons")).to_contain_text("likely label error")
    expect(page.locator("#why")).to_contain_text("suggests no")
    expect(page.locator("#queue-size")).to_contain_text("1 likely label errors, 4 disagreements")
    expect(page.locator(".class-button .key-badge")).to_have_text(["1", "2"])
    page.screenshot(path=str(SHOTS / "n15-review-suspect.png"), full_page=True)
    page.keyboard.press("2")  # corrected to 'no'

    showing("I1")
    expect(page.locator("#why")).to_contain_text("No consensus")
    expect(page.locator("#why")).to_contain_text("bob labeled no — “not sure”")
    expect(page.locator("#btn-accept")).to_be_disabled()  # nothing to accept: a tie
    page.screenshot(path=str(SHOTS / "n15-review-disagreement.png"), full_page=True)
    page.keyboard.press("1")  # ann was right
    showing("I2")
    page.keyboard.press("2")  # bob was right

    # S opens the comment box; the comment typed, Enter sends the item back.
    showing("I3")
    page.keyboard.press("s")
    expect(page.locator("#comment")).to_be_focused()
    page.keyboard.type("Which animal? Read the guide on foxes.")
    page.screenshot(path=str(SHOTS / "n15-review-send-back.png"), full_page=True)
    page.keyboard.press("Enter")
    showing("I4")
    # Enter on a tie accepts nothing and says why; → leaves it for later.
    page.keyboard.press("Enter")
    expect(page.locator("#messages")).to_contain_text("no consensus to accept")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-pending-writes", "0")
    expect(page.locator("#decisions .recent-item")).to_have_count(4)
    expect(page.locator("#decisions .recent-item").first).to_contain_text("sent back")
    page.screenshot(path=str(SHOTS / "n15-review-done.png"), full_page=True)

    page.goto(server.url + "/static/dashboard.html")
    expect(page.locator("#quality-queue")).to_contain_text("1 disagreements")
    expect(page.locator("#quality-queue")).to_contain_text("3 corrected, 1 sent back")
    expect(page.locator("#quality-suspects tbody tr")).to_have_count(1)
    expect(page.locator("#quality-suspects tbody tr td").nth(4)).to_have_text("1")  # confirmed
    page.locator("#quality").screenshot(path=str(SHOTS / "n15-dashboard-quality.png"))

    # The labeler who asks next gets the item sent back, with the reviewer's comment.
    labeler = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US")
    ann = labeler.new_page()
    _login(ann, server.url, "ann", passwords["ann"], "index.html")
    expect(ann.locator("#item")).to_have_attribute("data-item-id", "I3")
    expect(ann.locator("#sent-back")).to_have_text(
        "Sent back by reviewer rita: Which animal? Read the guide on foxes."
    )
    ann.screenshot(path=str(SHOTS / "n15-sent-back.png"), full_page=True)
    assert problems == []
    labeler.close()
    context.close()
    server.stop()

    with project.connect(read_only=True) as con:
        decisions = con.execute(
            "SELECT item_id, label, review, annotator, comment FROM label_events "
            "WHERE review IS NOT NULL ORDER BY event_id"
        ).fetchall()
        states = dict(
            con.execute(
                "SELECT item_id, status || ':' || coalesce(label, '') FROM item_state"
            ).fetchall()
        )
    assert decisions == [
        ("I10", "no", "corrected", "rita", None),
        ("I1", "yes", "corrected", "rita", None),
        ("I2", "no", "corrected", "rita", None),
        ("I3", None, "sent_back", "rita", "Which animal? Read the guide on foxes."),
    ]
    assert (
        states["I10"] == "reviewed:no"
        and states["I3"] == "undone:"
        and states["I4"] == "labeled:no"
    )


# --- review of spans, boxes and audio items ----------------------------------------------------


def _review_page(browser, server, password):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    _login(page, server.url, "rita", password, "index.html")
    page.goto(server.url + "/static/review.html")
    return context, page, problems


def _decisions(project):
    with project.connect(read_only=True) as con:
        return con.execute(
            "SELECT item_id, label, review FROM label_events WHERE review IS NOT NULL "
            "ORDER BY event_id"
        ).fetchall()


def test_a_reviewer_fixes_spans_boxes_and_audio_by_keyboard_and_mouse(
    tmp_path, browser, labeling_server
):
    ada = [{"start": s, "end": e, "label": c} for s, e, c in TEXTS[0][1]]

    # Spans: ann marked three, bob missed London. The reviewer starts from bob's, marks
    # London LOC with the mouse and a key, and Enter decides.
    project = spans_project(tmp_path / "s")
    with project.connect() as con:
        password = add_user(con, "rita", "reviewer")
        append_events(
            con,
            [
                LabelEvent("texts", "t0", "labeled", "ann", label=json.dumps(ada)),
                LabelEvent("texts", "t0", "labeled", "bob", label=json.dumps(ada[:2])),
            ],
        )
    server = labeling_server(project.root)
    context, page, problems = _review_page(browser, server, password)
    expect(page.locator("#item")).to_have_attribute("data-item-id", "t0")
    why = page.locator("#why")
    expect(why).to_contain_text("ann marked 3 spans: “Ada Lovelace” PER")
    expect(why).to_contain_text("the labelers' spans differ")
    expect(page.locator(".span-chip")).to_have_count(3)  # the first labeler's, to start from
    why.locator(".review-use").nth(1).click()  # bob's
    expect(page.locator(".span-chip")).to_have_count(2)
    page.locator("#spans-text .tok", has_text="London").click()
    page.keyboard.press("2")  # LOC
    expect(page.locator(".span-chip")).to_have_count(3)
    page.screenshot(path=str(SHOTS / "n17-review-spans.png"), full_page=True)
    page.keyboard.press("Enter")
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-pending-writes", "0")
    expect(page.locator("#decisions .recent-item").first).to_contain_text("corrected to 3 spans")
    assert problems == []
    context.close()
    server.stop()
    ((item, label, review),) = _decisions(project)
    assert (item, review) == ("t0", "corrected") and json.loads(label) == ada

    # Boxes: ann and bob drew one box each with different classes; the reviewer keeps
    # ann's, adds a second box by key (N), sets its class (2) and decides.
    folder = tmp_path / "pics"
    folder.mkdir()
    _picture(320, 240, 0).save(folder / "p0.png")
    project = Project.init(tmp_path / "b", classes=["ball", "box"])
    drawn = {"x": 40, "y": 40, "w": 120, "h": 110}
    with project.connect() as con:
        project.record_dataset(
            import_folder(con, "pics", folder, project.root / "media", task="boxes")
        )
        password = add_user(con, "rita", "reviewer")
        append_events(
            con,
            [
                LabelEvent(
                    "pics", "p0.png", "labeled", who, label=json.dumps([{**drawn, "label": c}])
                )
                for who, c in (("ann", "ball"), ("bob", "box"))
            ],
        )
    server = labeling_server(project.root)
    context, page, problems = _review_page(browser, server, password)
    expect(page.locator("#item")).to_have_attribute("data-item-id", "p0.png")
    expect(page.locator("#why")).to_contain_text("bob drew 1 box: box at 40,40 120×110")
    page.locator(".boxes-image").evaluate("img => img.decode()")
    expect(page.locator(".box")).to_have_count(1)
    page.keyboard.press("2")  # the next box's class: box
    page.keyboard.press("n")
    expect(page.locator(".box")).to_have_count(2)
    page.screenshot(path=str(SHOTS / "n17-review-boxes.png"), full_page=True)
    page.keyboard.press("Enter")
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-pending-writes", "0")
    assert problems == []
    context.close()
    server.stop()
    ((item, label, review),) = _decisions(project)
    assert item == "p0.png" and review == "corrected"
    assert [(b["label"], b["w"]) for b in json.loads(label)] == [("ball", 120), ("box", 80)]

    # Audio: ann heard a bird, bob a car; the reviewer plays it (Space) and presses 2.
    folder = tmp_path / "sounds"
    folder.mkdir()
    (folder / "c0.wav").write_bytes(wav_bytes(1.0))
    project = Project.init(tmp_path / "a", classes=["bird", "car"])
    with project.connect() as con:
        project.record_dataset(
            import_folder(con, "sounds", folder, project.root / "media", task="audio")
        )
        password = add_user(con, "rita", "reviewer")
        append_events(
            con,
            [
                LabelEvent("sounds", "c0.wav", "labeled", who, label=c)
                for who, c in (("ann", "bird"), ("bob", "car"))
            ],
        )
    server = labeling_server(project.root)
    context, page, problems = _review_page(browser, server, password)
    expect(page.locator("#item")).to_have_attribute("data-item-id", "c0.wav")
    expect(page.locator("#audio-player")).to_have_attribute("src", re.compile(r"^/media/"))
    expect(page.locator("#why")).to_contain_text("bob labeled car")
    page.screenshot(path=str(SHOTS / "n17-review-audio.png"), full_page=True)
    page.keyboard.press("2")
    expect(page.locator("#empty")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-pending-writes", "0")
    assert problems == []
    context.close()
    server.stop()
    assert _decisions(project) == [("c0.wav", "car", "corrected")]
