"""The page at ``/`` in headless Chromium (Selenium + the system chromedriver): upload, read, show.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium chromium-driver``);
skipped when they are absent. The browser only talks to the test server on 127.0.0.1.
"""

from __future__ import annotations

import base64
import os

import pytest

from conftest import CHROMEDRIVER, CHROMIUM, ServerThread, render_text  # noqa: E402

if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    pytest.skip(f"headless browser test needs {CHROMIUM} and {CHROMEDRIVER} "
                "(apt-get install -y chromium chromium-driver)", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install selenium)")
pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from test_serve_app import SETTINGS, png  # noqa: E402

from crnn import Recognizer  # noqa: E402
from crnn.serve.app import create_app  # noqa: E402

WAIT = 60


@pytest.fixture(scope="module")
def served(toy_data, tmp_path_factory):
    from conftest import tiny_model_path

    path = tiny_model_path(toy_data, tmp_path_factory)
    with ServerThread(create_app(Recognizer.load(path), SETTINGS)) as s:
        yield s, Recognizer.load(path)


# the `browser` fixture (headless Chromium) is in conftest.py


def _wait_state(driver, *states: str) -> str:
    WebDriverWait(driver, WAIT).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state")
                                      in states)
    return driver.find_element(By.TAG_NAME, "body").get_attribute("data-state")


def test_upload_shows_text_confidence_and_alignment(served, browser, tmp_path):
    server, rec = served
    img = render_text("AB-7")
    path = tmp_path / "line.png"
    img.save(path)
    expected = rec.predict([path])[0]

    browser.get(server.url + "/")
    WebDriverWait(browser, WAIT).until(lambda d: "backend" in d.find_element(By.ID, "model").text)
    assert _wait_state(browser, "idle") == "idle"
    browser.find_element(By.ID, "file").send_keys(str(path))
    assert _wait_state(browser, "done", "error") == "done", browser.find_element(By.ID, "error").text
    assert browser.execute_script("return document.getElementById('text').textContent") == expected.text
    assert browser.find_element(By.ID, "confidence").text == f"confidence {100 * expected.confidence:.1f}%"
    assert "ms" in browser.find_element(By.ID, "timing").text
    # an <img> may still be loading when the text shows: wait for its full width (fails on timeout)
    WebDriverWait(browser, WAIT).until(
        lambda d: d.execute_script("return document.getElementById('preview').naturalWidth") == img.width)

    # the alignment figure, or a note that the server has none
    WebDriverWait(browser, WAIT).until(
        lambda d: d.execute_script("const e = document.getElementById('explain');"
                                   "return (!e.hidden && e.complete && e.naturalWidth > 0) || "
                                   "document.getElementById('explain-note').textContent.length > 0"))
    note = browser.find_element(By.ID, "explain-note").text
    try:
        import crnn.insight.visualize  # noqa: F401

        assert note == "" and browser.execute_script("return document.getElementById('explain').naturalWidth") > 100
    except ImportError:
        assert "not available" in note
    browser.save_screenshot(str(tmp_path / "page.png"))


def test_pasted_base64_and_errors_are_shown(served, browser, tmp_path):
    server, rec = served
    img = render_text("x7B")
    expected = rec.predict([img])[0].text
    browser.get(server.url + "/")
    box = browser.find_element(By.ID, "b64")
    browser.execute_script("arguments[0].value = arguments[1];", box,
                           "data:image/png;base64," + base64.b64encode(png(img)).decode())
    browser.find_element(By.ID, "send-b64").click()
    assert _wait_state(browser, "done", "error") == "done", browser.find_element(By.ID, "error").text
    assert browser.execute_script("return document.getElementById('text').textContent") == expected

    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is not an image")
    browser.find_element(By.ID, "file").send_keys(str(bad))
    assert _wait_state(browser, "error", "done") == "error"
    error = browser.find_element(By.ID, "error").text
    assert error.startswith("422") and "not an image" in error and "notes.png" in error


def test_page_loads_nothing_from_outside(served, browser):
    server, _ = served
    browser.get(server.url + "/")
    _wait_state(browser, "idle")
    # the page is idle before its /health request has answered; the model line is filled from that answer, so
    # once it shows, the request is in the resource list (without this wait the list was empty on a fast machine)
    WebDriverWait(browser, WAIT).until(lambda d: "backend" in d.find_element(By.ID, "model").text)
    urls = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert urls and all(u.startswith(server.url) for u in urls), urls
