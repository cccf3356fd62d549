"""The page of `s2s serve` in a real headless Chromium, against a real uvicorn server on loopback:
type a dialogue, submit, see the summary and the heatmap; a text model gets one Source box. The
screenshot is kept in test-artifacts/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 's2s-summarizer[serve]'")
pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install 's2s-summarizer[serve]'")
webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed: pip install 's2s-summarizer[dev]'"
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from test_serve import TEXTS, as_text_model  # noqa: E402
from test_serve_load import serving  # noqa: E402

from s2s.predict import Summarizer  # noqa: E402
from s2s.serve import create_app, load_examples  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="no headless browser: apt-get install chromium chromium-driver"
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1400",
]


@pytest.fixture
def server_url(pointer_generator: Path):
    """A real uvicorn server on a free loopback port, in a thread; stopped afterwards."""
    summarizer = Summarizer.load(pointer_generator, "cpu")
    with serving(
        create_app(summarizer, examples=load_examples(ROOT / "data" / "automaster_sample_dev.csv", summarizer, limit=3))
    ) as url:
        yield url


@pytest.fixture
def browser(tmp_path: Path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_the_page_summarizes_and_shows_the_heatmaps(server_url: str, browser, pointer_generator: Path) -> None:
    wait = WebDriverWait(browser, 30)
    browser.get(server_url)
    wait.until(EC.text_to_be_present_in_element((By.ID, "model"), "pointer_generator decoder"))
    wait.until(EC.visibility_of_element_located((By.ID, "dialogue")))
    assert not browser.find_element(By.ID, "text").is_displayed()  # an AutoMaster model: question and dialogue
    wait.until(EC.text_to_be_present_in_element((By.ID, "example-count"), "(3 of 30)"))

    question, dialogue = "帕萨特烧机油怎么办", "技师说：你好，烧机油多久了？|车主说：半年了|技师说：检查气门油封"
    browser.find_element(By.ID, "question").send_keys(question)
    browser.find_element(By.ID, "dialogue").send_keys(dialogue)
    browser.find_element(By.ID, "submit").click()
    wait.until(EC.visibility_of_element_located((By.ID, "result")))

    words = browser.find_elements(By.CSS_SELECTOR, "#summary .tok")
    assert words and "".join(w.text for w in words).strip()
    rows = browser.find_elements(By.CSS_SELECTOR, "#heatmap tbody tr")
    columns = browser.find_elements(By.CSS_SELECTOR, "#heatmap thead th")
    assert len(rows) == len(words)
    source = Summarizer.load(pointer_generator, "cpu").tokenize({"Question": question, "Dialogue": dialogue})
    assert [c.text for c in columns[1:-1]] == source  # the source words, as the model reads them, label the columns
    assert columns[-1].text == "copy"  # the pointer-generator's 1 - p_gen column
    assert len(browser.find_elements(By.CSS_SELECTOR, "#heatmap tbody td")) == len(rows) * (len(columns) - 1)
    assert words[0].get_attribute("title").startswith("copied ")  # each word shaded by how much it was copied
    assert browser.find_element(By.ID, "copy-legend").is_displayed()
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "serve-page.png"))

    Select(browser.find_element(By.ID, "example")).select_by_index(1)  # the first dev example
    assert browser.find_element(By.ID, "dialogue").get_property("value").startswith("技师说：你这个车辆是带有空调的")
    browser.find_element(By.ID, "submit").click()
    wait.until(EC.visibility_of_element_located((By.ID, "reference")))

    browser.find_element(By.ID, "question").clear()
    browser.find_element(By.ID, "dialogue").send_keys(" ")  # blank is empty too
    browser.find_element(By.ID, "dialogue").clear()
    browser.find_element(By.ID, "submit").click()
    wait.until(
        EC.text_to_be_present_in_element(
            (By.ID, "status"), "Type the car owner's question or the dialogue first, or pick a dev example."
        )
    )
    assert "error" in browser.find_element(By.ID, "status").get_attribute("class")
    assert browser.switch_to.active_element.get_attribute("id") == "question"

    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors  # nor any failed request


def test_a_text_model_gets_one_source_box(pointer_generator: Path, browser, tmp_path: Path) -> None:
    summarizer = as_text_model(Summarizer.load(pointer_generator, "cpu"))
    tsv = tmp_path / "dev.tsv"
    tsv.write_text("".join(f"{text}\t摘要{i}\n" for i, text in enumerate(TEXTS)), encoding="utf-8")
    wait = WebDriverWait(browser, 30)
    with serving(create_app(summarizer, examples=load_examples(tsv, summarizer, limit=2))) as url:
        browser.get(url)
        wait.until(EC.visibility_of_element_located((By.ID, "text")))
        assert browser.find_element(By.CSS_SELECTOR, "label[for=text]").text == "Source"
        assert not browser.find_element(By.ID, "question").is_displayed()
        assert not browser.find_element(By.ID, "dialogue").is_displayed()
        wait.until(EC.text_to_be_present_in_element((By.ID, "example-count"), "(2 of 8)"))

        browser.find_element(By.ID, "submit").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "status"), "Paste a text to summarize first"))

        Select(browser.find_element(By.ID, "example")).select_by_index(2)  # the second example
        assert browser.find_element(By.ID, "text").get_property("value") == TEXTS[1]
        browser.find_element(By.ID, "submit").click()
        wait.until(EC.visibility_of_element_located((By.ID, "reference")))
        assert browser.find_element(By.ID, "reference").text == "Reference: 摘要1"
        assert browser.find_elements(By.CSS_SELECTOR, "#summary .tok")
        ARTIFACTS.mkdir(exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / "serve-page-text.png"))
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
