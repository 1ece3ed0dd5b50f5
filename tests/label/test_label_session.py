"""``crnn label``: the store's files, the session's queue, a background fine-tune, ``--review``, and the page
driven in headless Chromium (Selenium + the system chromedriver; those tests skip without them).

The server listens on 127.0.0.1 only; the browser talks to nothing else.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import render_text
from crnn import Recognizer
from crnn.data.sources import open_source
from crnn.label.session import LabelRefused, LabelSession, SessionSettings, review_items
from crnn.label.store import LABEL_PATTERN, LabelStore

WAIT = 60

FAST = ["data.height=32", "model.rnn_hidden=64", "train.batch_size=16", "train.lr=3e-3", "train.seed=0"]

TEXTS = ["AB", "x7", "B-A", "7AxB", "-7", "BxA"]


@pytest.fixture(scope="module")
def model(toy_data, tmp_path_factory) -> Path:
    """A small model that reads the toy alphabet well (12 epochs, about 20 s on one thread)."""
    from crnn.config import Config, apply_overrides
    from crnn.training.loop import train

    result = train(apply_overrides(Config(), FAST + ["train.epochs=12"]), toy_data / "train",
                   tmp_path_factory.mktemp("label_model") / "run", val_path=toy_data / "test", progress=False,
                   log=lambda *a: None)
    return Path(result.best_path)


def crops(folder: Path, texts=TEXTS) -> dict[str, bytes]:
    """Unlabelled crops ``img_N.png`` (one in a subfolder); returns every file's bytes, to compare afterwards."""
    folder.mkdir(parents=True)
    for i, t in enumerate(texts):
        path = folder / ("sub" if i == len(texts) - 1 else "") / f"img_{i}.png"
        path.parent.mkdir(exist_ok=True)
        render_text(t).save(path)
    return snapshot(folder)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def visible_files(out: Path) -> set[str]:
    return {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and ".crnn-label" not in p.parts}


def test_session_orders_least_confident_first_and_flags_unknown_characters(model, tmp_path):
    crops(tmp_path / "in")
    rec = Recognizer.load(model)
    session = LabelSession(LabelStore(tmp_path / "in", tmp_path / "out"), rec)
    confidences = [session.readings[i].confidence for i in session.queue()]
    assert confidences == sorted(confidences)
    item = session.current()
    with pytest.raises(LabelRefused) as e:
        session.submit(item, "AZ")
    assert e.value.code == "unknown_chars" and "'Z'" in str(e.value) and not session.store.entries
    session.submit(item, "AZ", confirm=True)
    assert session.store.entries[item].label == "AZ"
    with pytest.raises(LabelRefused) as e:
        session.submit(session.current(), "")
    assert e.value.code == "bad_label"


def test_retrain_every_n_fine_tunes_and_refills(model, toy_data, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    truth = {}
    for line in (toy_data / "test" / "labels.tsv").read_text().splitlines()[:14]:
        name, label = line.split("\t")
        shutil.copy(toy_data / "test" / name, src / name)
        truth[name] = label
    settings = SessionSettings(retrain_every=10, retrain_budget_s=30, retrain_min=10,
                               retrain_set=["train.epochs=1", "train.batch_size=8"])
    session = LabelSession(LabelStore(src, tmp_path / "out"), Recognizer.load(model), settings)
    for _ in range(10):
        item = session.current()
        session.submit(item, truth[item])
    assert session.retrainer is not None, "the 10th label starts a fine-tune"
    session.retrainer.join(180)
    status = session.state()["retrain"]
    assert status["state"] == "done", status
    best = tmp_path / "out" / ".crnn-label" / "runs" / "001" / "best.pt"
    assert best.exists() and session.model_path == str(best)
    fresh = Recognizer.load(best)
    left = session.queue()
    assert len(left) == 4
    assert [session.readings[i].text for i in left] == [p.text for p in fresh.predict([src / i for i in left])]
    assert "runs" not in {p.name for p in (tmp_path / "out").iterdir()}  # never read as training data


def test_review_corrects_audit_suspects_in_place(model, toy_data, tmp_path):
    from crnn.insight.audit import audit

    src = tmp_path / "in"
    shutil.copytree(toy_data / "test", src)
    (src / "labels.tsv").unlink()
    truth = dict(line.split("\t") for line in (toy_data / "test" / "labels.tsv").read_text().splitlines())
    store = LabelStore(src, tmp_path / "out")
    wrong = {}
    for i, item in enumerate(store.items):
        label = truth[item]
        if i in (3, 11, 25):
            label = ("B" if label[0] != "B" else "A") + label[1:]
            wrong[item] = label
        store.label(item, label)
    rec = Recognizer.load(model)
    result = audit(rec, tmp_path / "out", LABEL_PATTERN)
    suspects = review_items(store, result.to_dict())
    assert set(wrong) <= {item for item, _ in suspects[:6]}, suspects

    session = LabelSession(store, rec, review=suspects)
    st = session.state()
    assert st["mode"] == "review" and st["total"] == len(suspects)
    first = session.current()
    assert st["current"]["given"] == store.entries[first].label
    old = store.output(first)
    session.submit(first, truth[first])
    new = store.output(first)
    assert store.entries[first].label == truth[first] and new.exists() and (new == old or not old.exists())
    labels = sorted(r.label for r in open_source(tmp_path / "out", LABEL_PATTERN).records)
    expected = sorted(e.label for e in store.entries.values())
    assert labels == expected and len(labels) == 40
    assert session.state()["labelled"] == 1 and session.current() != first
    session.undo()
    assert session.current() == first and store.entries[first].label == wrong.get(first, truth[first])


# the `browser` fixture (headless Chromium, skipped without it) is in conftest.py
class Page:
    """The labelling page: type, press keys, wait for the server's answer."""

    def __init__(self, driver):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        self.d, self.By, self.Keys = driver, By, Keys

    def body(self, key: str) -> str:
        return self.d.execute_script(f"return document.body.dataset.{key} || ''")

    def text(self, id_: str) -> str:
        return self.d.execute_script(f"return document.getElementById('{id_}').textContent")

    def value(self) -> str:
        return self.d.execute_script("return document.getElementById('label').value")

    def open(self, url: str) -> None:
        self.d.get(url)
        self.wait(lambda: self.body("state") in ("ready", "done"))

    def wait(self, cond) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self.d, WAIT).until(lambda d: cond())

    def press(self, *keys, typed: str | None = None) -> bool:
        """Send keys (after replacing the text with ``typed``); True if the server took it, False if refused."""
        version = self.body("version")
        box = self.d.find_element(self.By.ID, "label")
        if typed is not None:
            box.send_keys(self.Keys.CONTROL, "a")
            box.send_keys(self.Keys.DELETE)
            if typed:
                box.send_keys(typed)
        if not keys:
            return False
        box.send_keys(*keys)
        self.wait(lambda: self.body("state") in ("ready", "done")
                  and (self.body("version") != version or self.text("error") != ""))
        return self.body("version") != version


def _serve(session):
    from conftest import ServerThread
    from crnn.label.app import create_app

    return ServerThread(create_app(session))


def test_page_labels_resumes_undoes_and_flags(model, browser, tmp_path):
    originals = crops(tmp_path / "in")
    out = tmp_path / "out"
    rec = Recognizer.load(model)
    page = Page(browser)
    K = page.Keys
    given: dict[str, str] = {}  # item -> what was typed and accepted

    with _serve(LabelSession(LabelStore(tmp_path / "in", out), rec)) as server:
        page.open(server.url + "/")
        assert page.text("progress").startswith("0 of 6 labelled")
        item = page.body("item")
        assert page.value() == rec.predict([tmp_path / "in" / item])[0].text  # the model's reading, pre-filled
        # the item and its reading show before the image has finished loading: wait for it (fails on timeout)
        page.wait(lambda: browser.execute_script("return document.getElementById('image').naturalWidth") > 0)

        for label in ("AB", "AB", "x7-B"):  # three images, one label twice
            item = page.body("item")
            assert page.press(K.ENTER, typed=label)
            given[item] = label
        assert page.text("progress").startswith("3 of 6 labelled")
        assert "per minute" in page.text("rate") and "pre-filled reading right: " in page.text("right")

        browser.refresh()  # a reload shows the same session
        page.wait(lambda: page.body("state") == "ready")
        assert page.text("progress").startswith("3 of 6 labelled") and page.body("item") not in given

        last = list(given)[-1]
        assert page.press(K.CONTROL, "z")  # undo: x7-B comes back, as typed
        assert page.body("item") == last and page.value() == "x7-B"
        assert not (out / "x7-B.png").exists() and page.text("progress").startswith("2 of 6")
        assert page.press(K.ENTER)
        assert (out / "x7-B.png").exists()

        item = page.body("item")
        page.press(typed="")  # empty: flagged while typing, refused on Enter
        assert "empty label" in page.text("flag")
        assert not page.press(K.ENTER) and "empty label" in page.text("error")
        assert not page.press(K.ENTER, typed="AZ")  # 'Z' is not in the model's charset
        assert '"Z"' in page.text("flag") and "never seen" in page.text("flag")
        assert "Enter again" in page.text("error") and not (out / "AZ.png").exists()
        assert page.press(K.ENTER)  # a second Enter keeps it
        given[item] = "AZ"

        skipped = page.body("item")
        assert page.press(K.ESCAPE)
        assert page.body("item") != skipped and "1 skipped" in page.text("progress")

    # a restart on the same OUT resumes where it stopped
    with _serve(LabelSession(LabelStore(tmp_path / "in", out), rec)) as server:
        page.open(server.url + "/")
        assert page.text("progress").startswith("4 of 6 labelled") and "1 skipped" in page.text("progress")
        assert page.body("item") not in given and page.body("item") != skipped
        item = page.body("item")
        assert page.press(K.ENTER, typed="x7")
        given[item] = "x7"
        assert page.body("item") == skipped  # the skipped image comes last

    expected = {"AB.png", "AB_2.png", "x7-B.png", "AZ.png", "x7.png", "label-pattern.txt"}
    assert visible_files(out) == expected
    store = LabelStore(tmp_path / "in", out)
    assert {e.item: e.label for e in store.entries.values()} == given
    for e in store.entries.values():
        assert (out / e.file).read_bytes() == originals[e.item]
    assert sorted(r.label for r in open_source(out, LABEL_PATTERN).records) == sorted(given.values())
    assert snapshot(tmp_path / "in") == originals  # originals byte-identical, nothing added or renamed


def test_page_writes_labels_tsv_exactly_as_typed(model, browser, tmp_path):
    originals = crops(tmp_path / "in", TEXTS[:3])
    out = tmp_path / "out"
    page = Page(browser)
    typed = {}
    with _serve(LabelSession(LabelStore(tmp_path / "in", out, "tsv"), Recognizer.load(model))) as server:
        page.open(server.url + "/")
        for label in ("B-A", "x/7", "7 x"):  # a slash and a space: fine in labels.tsv (Enter twice: unseen)
            item = page.body("item")
            if not page.press(page.Keys.ENTER, typed=label):
                assert "never seen" in page.text("flag") and page.press(page.Keys.ENTER)
            typed[item] = label
        page.wait(lambda: page.body("state") == "done")
        assert page.text("progress").startswith("3 of 3 labelled")
    lines = (out / "labels.tsv").read_text(encoding="utf-8").splitlines()
    assert sorted(lines) == sorted(f"images/{item}\t{label}" for item, label in typed.items())
    src = open_source(out)
    assert {Path(r.path).relative_to(out / "images").as_posix(): r.label for r in src.records} == typed
    for item in typed:
        assert (out / "images" / item).read_bytes() == originals[item]
    assert snapshot(tmp_path / "in") == originals


def test_page_refuses_other_hosts_and_form_posts(model, tmp_path):
    httpx = pytest.importorskip("httpx")
    crops(tmp_path / "in", TEXTS[:2])
    session = LabelSession(LabelStore(tmp_path / "in", tmp_path / "out"), Recognizer.load(model))
    with _serve(session) as server:
        assert httpx.get(server.url + "/api/state").json()["total"] == 2
        assert httpx.get(server.url + "/api/state", headers={"Host": "evil.example"}).status_code == 400
        r = httpx.post(server.url + "/api/label", content=b"id=0&label=AB",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 415 and not session.store.entries
        r = httpx.post(server.url + "/api/label", json={"id": 99, "label": "AB"})
        assert r.status_code == 422 and r.json()["code"] == "bad_id"
        r = httpx.post(server.url + "/api/retrain", json={})
        assert r.status_code == 200 and r.json()["message"] == "label at least 10 images first (0 so far)"
        assert session.retrainer is None
        image = httpx.get(server.url + "/api/image/0")
        assert image.content == (tmp_path / "in" / session.store.items[0]).read_bytes()
        assert image.headers["content-type"] == "image/png"


def test_cli_review_opens_the_audited_session(model, toy_data, tmp_path, capsys):
    from crnn.cli import build_parser, main
    from crnn.label.cli import build_session

    src = tmp_path / "in"
    shutil.copytree(toy_data / "test", src)
    (src / "labels.tsv").unlink()
    truth = dict(line.split("\t") for line in (toy_data / "test" / "labels.tsv").read_text().splitlines())
    store = LabelStore(src, tmp_path / "out")
    for i, item in enumerate(store.items):
        store.label(item, truth[item] if i != 7 else "x" + truth[item][1:] if truth[item][0] != "x" else "A")
    bad = store.items[7]
    assert main(["audit", str(model), str(tmp_path / "out"), "--label-pattern", LABEL_PATTERN, "--json"]) == 0
    (tmp_path / "audit.json").write_text(capsys.readouterr().out, encoding="utf-8")
    args = build_parser().parse_args(["label", "--review", str(tmp_path / "audit.json"), "--model", str(model)])
    session = build_session(args)
    assert session.store.out == tmp_path / "out" and session.state()["mode"] == "review"
    assert bad in session.review[:3]

    assert main(["audit", str(model), str(toy_data / "test"), "--json"]) == 0
    (tmp_path / "other.json").write_text(capsys.readouterr().out, encoding="utf-8")
    assert main(["label", "--review", str(tmp_path / "other.json"), "--model", str(model)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "not a crnn label output folder" in err and "\n" not in err
    assert main(["label", "--model", str(model)]) == 2
    assert "give the folder of images to label" in capsys.readouterr().err
