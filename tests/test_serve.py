"""The JSON API of `s2s serve` on a real (tiny) pointer-generator: answers, bad input, batching."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 's2s[serve]'")
from fastapi.testclient import TestClient  # noqa: E402

from s2s.cli import main  # noqa: E402
from s2s.errors import MissingExtraError  # noqa: E402
from s2s.predict import Summarizer  # noqa: E402
from s2s.serve import create_app, load_examples  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "帕萨特烧机油怎么办"
DIALOGUE = "技师说：你好，烧机油多久了？|车主说：半年了，[图片]|技师说：建议检查气门油封和活塞环"
TEXTS = [
    "刹车异响",
    "发动机抖动怎么办",
    "空调不制冷，加了氟还是不行",
    "车主说：变速箱顿挫|技师说：换油",
    "轮胎鼓包还能开吗",
    "方向盘跑偏",
    "机油灯亮了",
    "技师说：你好|车主说：电瓶没电了打不着火",
]


@pytest.fixture(scope="module")
def summarizer(pointer_generator: Path) -> Summarizer:
    return Summarizer.load(pointer_generator, "cpu")


@pytest.fixture(scope="module")
def client(summarizer: Summarizer):
    examples = load_examples(ROOT / "data" / "automaster_sample_dev.csv", summarizer, limit=3)
    with TestClient(create_app(summarizer, max_chars=500, examples=examples)) as client:
        yield client


def test_health_describes_the_model(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["device"] == "cpu"
    assert health["model"]["decoder"] == "pointer_generator" and health["model"]["copies"] is True
    assert health["vocab"] == {"source": 2004, "target": 1004}  # 2000 / 1000 words + 4 specials
    assert health["options"]["beam_size"] == 2 and health["limits"]["max_chars"] == 500


def test_summarize_question_and_dialogue(client: TestClient, summarizer: Summarizer) -> None:
    response = client.post("/summarize", json={"question": QUESTION, "dialogue": DIALOGUE})
    assert response.status_code == 200, response.text
    result = response.json()
    row = {"Question": QUESTION, "Dialogue": DIALOGUE}
    assert result["source_tokens"] == summarizer.tokenize(row)  # composed and cleaned as in training
    assert "[图片]" not in "".join(result["source_tokens"])
    assert result["summary"] == summarizer.summarize([row])[0]
    tokens, attention, p_gen = result["tokens"], result["attention"], result["p_gen"]
    assert tokens and len(attention) == len(tokens) == len(p_gen)
    assert all(len(row) == len(result["source_tokens"]) for row in attention)
    assert all(abs(sum(row) - 1) < 1e-2 for row in attention)
    assert all(0 <= p <= 1 for p in p_gen)
    assert result["batch_size"] == 1 and result["seconds"] > 0


def test_text_and_search_options(client: TestClient) -> None:
    response = client.post("/summarize", json={"text": DIALOGUE, "search": "greedy", "max_length": 3, "min_length": 0})
    assert response.status_code == 200, response.text
    assert 1 <= len(response.json()["tokens"]) <= 3


def test_examples_come_from_the_dev_file(client: TestClient) -> None:
    examples = client.get("/examples").json()
    assert [e["id"] for e in examples] == ["Q325", "Q326", "Q328"]
    assert examples[0]["question"].startswith("请问下大神") and examples[0]["dialogue"].startswith("技师说：")
    assert examples[0]["reference"]


def test_the_page_and_its_scripts_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and 'id="dialogue"' in page.text and "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").status_code == 200


JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    "request_args, status, message",
    [
        ({"content": b'{"text": "x",', "headers": JSON}, 400, "malformed JSON"),
        ({"content": b"", "headers": JSON}, 400, "no request body"),
        (
            {"content": b'{"text": "x"}', "headers": {"content-type": "text/plain"}},
            415,
            "Content-Type: application/json",
        ),
        ({"json": ["x"]}, 422, "expected a JSON object, got list"),
        ({"json": {}}, 422, "empty text"),
        ({"json": {"text": "  \n"}}, 422, "empty text"),
        ({"json": {"question": "", "dialogue": ""}}, 422, "empty text"),
        ({"json": {"text": "长" * 501}}, 413, "text too long: 501 characters, at most 500"),
        ({"json": {"question": "长" * 300, "dialogue": "长" * 201}}, 413, "text too long"),
        ({"json": {"text": 5}}, 422, "text: expected a string, got int"),
        ({"json": {"text": "x", "question": "y"}}, 422, "not both"),
        ({"json": {"text": "x", "beam": 3}}, 422, "unknown field 'beam'"),
        ({"json": {"text": "x", "batch_size": 3}}, 422, "unknown field 'batch_size'"),
        ({"json": {"text": "x", "search": "bam"}}, 422, "unknown searcher 'bam' (choices: beam, greedy)"),
        ({"json": {"text": "x", "beam_size": "4"}}, 422, "beam_size: expected an integer, got '4'"),
        ({"json": {"text": "x", "alpha": [1]}}, 422, "alpha: expected a number"),
        ({"json": {"text": "x", "beam_size": 0}}, 422, "beam_size: must be at least 1"),
        ({"json": {"text": "x", "min_length": -1}}, 422, "min_length: must not be negative"),
        ({"json": {"text": "x", "beam_size": 1000}}, 422, "beam_size: at most 16"),
    ],
)
def test_bad_input_is_a_4xx_with_a_message_and_the_server_goes_on(
    client: TestClient, request_args: dict, status: int, message: str
) -> None:
    response = client.post("/summarize", **request_args)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert "\n" not in response.json()["error"]
    assert client.post("/summarize", json={"text": "刹车异响"}).status_code == 200


def test_concurrent_requests_share_model_calls(summarizer: Summarizer) -> None:
    app = create_app(summarizer, max_batch=len(TEXTS), max_wait_ms=5000)  # full batches go at once
    with TestClient(app) as client:
        with ThreadPoolExecutor(len(TEXTS)) as pool:
            results = list(
                pool.map(lambda text: client.post("/summarize", json={"text": text, "search": "greedy"}).json(), TEXTS)
            )
        served = client.get("/health").json()["served"]
    assert served == {"requests": len(TEXTS), "model_calls": 1}
    assert all(r["batch_size"] == len(TEXTS) for r in results)
    alone = summarizer.summarize(TEXTS, search="greedy")  # batching changes nothing
    assert [r["summary"] for r in results] == alone
    assert all(len(row) == len(r["source_tokens"]) for r in results for row in r["attention"])


def test_requests_with_different_options_get_separate_calls(summarizer: Summarizer) -> None:
    app = create_app(summarizer, max_batch=4, max_wait_ms=5000)
    bodies = [{"text": text, "search": search} for text in TEXTS[:2] for search in ("greedy", "beam")]
    with TestClient(app) as client:
        with ThreadPoolExecutor(len(bodies)) as pool:
            results = list(pool.map(lambda body: client.post("/summarize", json=body).json(), bodies))
        served = client.get("/health").json()["served"]
    assert served == {"requests": 4, "model_calls": 2}
    assert all(r["batch_size"] == 2 for r in results)


def test_model_work_does_not_block_the_server(summarizer: Summarizer, monkeypatch) -> None:
    started, release = threading.Event(), threading.Event()
    summaries = summarizer.summaries

    def slow_summaries(*args, **kwargs):
        started.set()
        assert release.wait(10)
        return summaries(*args, **kwargs)

    monkeypatch.setattr(summarizer, "summaries", slow_summaries)
    with TestClient(create_app(summarizer, max_wait_ms=0)) as client, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(client.post, "/summarize", json={"text": "刹车异响"})
        assert started.wait(10)
        assert client.get("/health").status_code == 200  # answered while the model is busy
        assert client.post("/summarize", json={"text": ""}).status_code == 422
        release.set()
        assert pending.result(timeout=10).status_code == 200


def test_a_failing_model_call_is_a_500_with_a_message_and_the_server_goes_on(
    summarizer: Summarizer, monkeypatch
) -> None:
    summaries = summarizer.summaries
    calls = iter([RuntimeError("out of memory"), None])

    def fail_once(*args, **kwargs):
        error = next(calls)
        if error:
            raise error
        return summaries(*args, **kwargs)

    monkeypatch.setattr(summarizer, "summaries", fail_once)
    with TestClient(create_app(summarizer), raise_server_exceptions=False) as client:
        response = client.post("/summarize", json={"text": "刹车异响"})
        assert response.status_code == 500
        assert response.json() == {"error": "internal error: RuntimeError: out of memory"}
        assert client.post("/summarize", json={"text": "刹车异响"}).status_code == 200


def test_a_missing_extra_is_one_clear_line(
    pointer_generator: Path, summarizer: Summarizer, monkeypatch, capsys
) -> None:
    monkeypatch.setitem(__import__("sys").modules, "fastapi", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r"pip install 's2s\[serve\]'"):
        create_app(summarizer)
    assert main(["serve", "--checkpoint", str(pointer_generator)]) == 2
    assert capsys.readouterr().err.strip() == "error: s2s serve needs fastapi: pip install 's2s[serve]'"
