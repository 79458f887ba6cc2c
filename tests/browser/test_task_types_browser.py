"""Spans, boxes and audio in a real browser, by keyboard and by mouse, with screenshots
(/tmp/n17-*.png, or the folder in ACTIVE_LABELING_SCREENSHOTS). The fixtures (the system
Chromium, the server) are test_labeling_browser's."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from active_labeling.flow.project import Project
from active_labeling.labeling.auth import add_user
from active_labeling.store.media import import_folder

from media_helpers import TEXTS, spans_project, wav_bytes

base = pytest.importorskip("test_labeling_browser")
browser = base.browser
labeling_server = base.labeling_server
expect = base.expect
SHOTS = Path(os.environ.get("ACTIVE_LABELING_SCREENSHOTS", "/tmp"))
XSS = '<img src=x onerror="window.__xss = 1"> <script>window.__xss = 2</script> Ada Lovelace'


def _open(browser, server, password, size=(1280, 860)):
    context = browser.new_context(viewport={"width": size[0], "height": size[1]}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(server.url + "/")
    page.wait_for_url(base.LOGIN_URL)
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
