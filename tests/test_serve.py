"""The JSON API of `s2s serve` on a real (tiny) pointer-generator: answers, bad input, limits,
batching, Host checking, examples, and the input form of non-AutoMaster models."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 's2s-summarizer[serve]'")
from fastapi.testclient import TestClient  # noqa: E402

from s2s import serve as serve_module  # noqa: E402
from s2s.cli import main  # noqa: E402
from s2s.config import PredictConfig, load_config  # noqa: E402
from s2s.errors import MissingExtraError  # noqa: E402
from s2s.predict import Summarizer, Summary  # noqa: E402
from s2s.readers import reader_options  # noqa: E402
from s2s.serve import create_app, dev_split_examples, load_examples  # noqa: E402
from s2s.serve_batching import Batcher  # noqa: E402
from s2s.serve_guards import LOOPBACK, allowed_host_names, host_name  # noqa: E402
from s2s.trainer import train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "data" / "automaster_sample_dev.csv"  # 30 rows
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
JSON = {"content-type": "application/json"}


def local(app, **options) -> TestClient:
    """A test client whose requests name a loopback host, as a browser's on this machine do."""
    return TestClient(app, base_url="http://localhost:8000", **options)


@pytest.fixture(scope="module")
def summarizer(pointer_generator: Path) -> Summarizer:
    return Summarizer.load(pointer_generator, "cpu")


@pytest.fixture(scope="module")
def client(summarizer: Summarizer):
    with local(create_app(summarizer, max_chars=500, examples=load_examples(DEV, summarizer, limit=3))) as client:
        yield client


@pytest.fixture(scope="module")
def attention_run(pointer_generator: Path, tmp_path_factory) -> Path:
    """The best checkpoint of the pointer-generator's config with a plain attention decoder, its
    dev set (20 rows) carved from train: training writes it beside the checkpoint."""
    out = tmp_path_factory.mktemp("attention") / "run"
    cfg = load_config(
        pointer_generator.parent / "config.yaml",
        ["model.decoder.type=attention", "data.dev=null", "data.dev_split=20", f"train.output_dir={out}"],
    )
    return train(cfg, show_progress=False).best_checkpoint


def as_text_model(summarizer: Summarizer) -> Summarizer:
    """``summarizer`` with a config saying it was trained on TSV, like a CSL model: it takes plain text."""
    data = dataclasses.replace(summarizer.cfg.data, format="tsv", train="train.tsv")
    summarizer.cfg = dataclasses.replace(summarizer.cfg, data=data)
    return summarizer


@pytest.fixture(scope="module")
def text_summarizer(pointer_generator: Path) -> Summarizer:
    return as_text_model(Summarizer.load(pointer_generator, "cpu"))


def test_health_describes_the_model(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["device"] == "cpu"
    assert health["model"]["decoder"] == "pointer_generator" and health["model"]["copies"] is True
    assert health["input"] == ["question", "dialogue"]  # an AutoMaster model
    assert health["vocab"] == {"source": 2004, "target": 1004}  # 2000 / 1000 words + 4 specials
    assert health["options"]["beam_size"] == 2
    assert health["limits"] == {
        "max_chars": 500,
        "max_body_bytes": 256 * 1024,
        "max_work": 500_000,
        "large_work": 50_000,
        "beam_size": 16,
        "max_length": 500,
    }


def test_a_transformer_model_is_served(tmp_path: Path) -> None:
    """/health and /summarize for another model family (the RNN family's parts are not assumed)."""
    import torch

    from s2s.config import Config, override
    from s2s.model import build_model
    from s2s.vocabulary import Vocabulary

    cfg = override(
        Config(),
        "model.type=transformer",
        "model.d_model=16",
        "model.heads=2",
        "model.ff_size=16",
        "model.encoder_layers=1",
        "model.decoder_layers=1",
        "model.copy=true",
        "predict.max_length=5",
    )
    vocab = Vocabulary(["刹车", "异响", "检查"])
    summarizer = Summarizer(build_model(cfg.model, vocab.tokens, vocab.tokens), cfg, vocab, vocab, torch.device("cpu"))
    with local(create_app(summarizer)) as client:
        health = client.get("/health").json()
        assert health["model"] == {"type": "transformer", "coverage": False, "copies": True}
        answer = client.post("/summarize", json={"question": "刹车异响", "dialogue": "技师说：检查"})
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["attention"]) == len(answer.json()["tokens"])


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


def test_a_long_source_is_truncated_as_in_prediction(client: TestClient, summarizer: Summarizer) -> None:
    text = "，".join(TEXTS * 3)  # 149 tokens: over data.max_source_len=120
    result = client.post("/summarize", json={"text": text, "search": "greedy"}).json()
    assert len(result["source_tokens"]) == 120 and result["summary"] == summarizer.summarize([text], search="greedy")[0]


def test_examples_come_from_the_file_given_with_the_total(client: TestClient) -> None:
    answer = client.get("/examples").json()
    examples = answer["examples"]
    assert [e["id"] for e in examples] == ["Q325", "Q326", "Q328"] and answer["total"] == 30  # 3 of 30
    assert examples[0]["question"].startswith("请问下大神") and examples[0]["dialogue"].startswith("技师说：")
    assert examples[0]["reference"]


def test_the_page_and_its_scripts_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and 'id="dialogue"' in page.text and "/static/app.js" in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").status_code == 200


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
        ({"content": b'{"text": "\\ud800x"}', "headers": JSON}, 400, "bad text in 'text': a lone surrogate"),
        ({"content": b'{"question": "x", "dialogue": "\\udfff"}', "headers": JSON}, 400, "bad text in 'dialogue'"),
        ({"content": b'{"text": "x", "search": "\\ud83d"}', "headers": JSON}, 400, "lone surrogate"),
        ({"content": b'{"text": "x", "alpha": ["\\ud83d"]}', "headers": JSON}, 400, "lone surrogate"),
        ({"content": b'{"text": "\xff\xfe"}', "headers": JSON}, 400, "malformed JSON: not UTF-8"),
        ({"content": b'{"text": "x", "alpha": NaN}', "headers": JSON}, 400, "NaN is not a JSON number"),
        ({"content": b"[" * 100_000 + b"]" * 100_000, "headers": JSON}, 400, "nested too deeply"),
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
        (
            {"json": {"text": "x", "search": "bam"}},
            422,
            "unknown searcher 'bam' (choices: beam, greedy, sample, select)",
        ),
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


def test_bodies_over_the_limit_are_refused(summarizer: Summarizer) -> None:
    """By their Content-Length, or by the bytes read (test_serve_load: before the rest is read)."""
    chunks = (b" " * 1024 for _ in range(10))  # no Content-Length
    with local(create_app(summarizer, max_body_bytes=4096)) as client:
        declared = client.post("/summarize", content=b" " * 5000, headers=JSON)
        assert declared.status_code == 413, declared.text
        assert declared.json()["error"] == "request body too large: at most 4,096 bytes on this server, got 5,000"
        streamed = client.post("/summarize", content=chunks, headers=JSON)
        assert streamed.status_code == 413
        assert streamed.json()["error"] == "request body too large: at most 4,096 bytes on this server"
        padded = b'{"text": "' + "刹车异响".encode() + b'"}' + b" " * 4000  # under the limit: answered
        assert client.post("/summarize", content=padded, headers=JSON).status_code == 200


def test_work_is_bounded_with_a_message_saying_what_to_lower(summarizer: Summarizer) -> None:
    with local(create_app(summarizer, max_work=10_000)) as client:
        tokens = len(summarizer.tokenize(DIALOGUE))
        big = client.post("/summarize", json={"text": DIALOGUE, "search": "beam", "beam_size": 16, "max_length": 100})
        assert big.status_code == 413, big.text
        assert big.json()["error"] == (
            f"too much work for one request: {tokens} source tokens x beam 16 x 100 output tokens = "
            f"{tokens * 1600:,}, at most 10,000 on this server; lower beam_size or max_length, or send a shorter text"
        )
        ratio = client.post(
            "/summarize",
            json={
                "text": DIALOGUE,
                "search": "beam",
                "beam_size": 16,
                "max_length": 100,
                "max_length_ratio": 0.1,
                "min_length": 0,
            },
        )
        assert ratio.status_code == 200, ratio.text  # the output limit is 10% of the source: little work
        greedy = client.post("/summarize", json={"text": DIALOGUE, "search": "greedy", "max_length": 100})
        assert greedy.status_code == 200, greedy.text


def test_large_requests_do_not_hold_up_small_ones(summarizer: Summarizer, monkeypatch) -> None:
    started, release = threading.Event(), threading.Event()
    decode = summarizer.decode

    def slow_when_large(sources, options, *args):
        if options.beam_size == 8:
            started.set()
            assert release.wait(20)
        return decode(sources, options, *args)

    monkeypatch.setattr(summarizer, "decode", slow_when_large)
    large = {"text": DIALOGUE, "search": "beam", "beam_size": 8, "max_length": 20}  # ~20 tokens x 8 x 20 > 1000
    with local(create_app(summarizer, large_work=1000, max_wait_ms=0)) as client, ThreadPoolExecutor(4) as pool:
        pending = pool.submit(client.post, "/summarize", json=large)
        assert started.wait(20)
        small = [pool.submit(client.post, "/summarize", json={"text": text, "search": "greedy"}) for text in TEXTS[:3]]
        try:
            assert [s.result(timeout=20).status_code for s in small] == [200] * 3  # while the large one runs
        finally:
            release.set()
        assert pending.result(timeout=20).status_code == 200
        assert client.get("/health").json()["served"]["requests"] == 4


def test_a_model_call_does_at_most_max_work_and_the_first_comes_first() -> None:
    calls = []

    class Recorder:  # a stand-in for the summarizer
        def decode(self, sources, options, return_attention):
            calls.append([source[0] for source in sources])
            return [Summary(source[0], [], source, 0.0) for source in sources]

    async def send(works: list[int]) -> list[tuple[Summary, int]]:
        batcher = Batcher(Recorder(), max_batch=4, max_wait_ms=20, max_work=10)
        worker = asyncio.create_task(batcher.run())
        try:
            return await asyncio.gather(
                *(batcher.submit([f"r{i}"], PredictConfig(), work) for i, work in enumerate(works))
            )
        finally:
            worker.cancel()
            batcher.close()

    answers = asyncio.run(send([4, 4, 4, 20, 1, 1]))
    assert calls == [["r0", "r1"], ["r2"], ["r3"], ["r4", "r5"]]  # r3 alone is over max_work: it goes alone
    assert [(summary.text, size) for summary, size in answers] == [
        ("r0", 2),
        ("r1", 2),
        ("r2", 1),
        ("r3", 1),
        ("r4", 2),
        ("r5", 2),
    ]


def test_concurrent_requests_share_model_calls(summarizer: Summarizer) -> None:
    app = create_app(summarizer, max_batch=len(TEXTS), max_wait_ms=5000)  # full batches go at once
    with local(app) as client:
        with ThreadPoolExecutor(len(TEXTS)) as pool:
            bodies = [{"text": text, "search": "greedy"} for text in TEXTS]
            results = list(pool.map(lambda body: client.post("/summarize", json=body).json(), bodies))
        served = client.get("/health").json()["served"]
    assert served == {"requests": len(TEXTS), "model_calls": 1}
    assert all(r["batch_size"] == len(TEXTS) for r in results)
    alone = summarizer.summarize(TEXTS, search="greedy")  # batching changes nothing
    assert [r["summary"] for r in results] == alone
    assert all(len(row) == len(r["source_tokens"]) for r in results for row in r["attention"])


def test_requests_with_different_options_get_separate_calls(summarizer: Summarizer) -> None:
    app = create_app(summarizer, max_batch=4, max_wait_ms=5000)
    bodies = [{"text": text, "search": search} for text in TEXTS[:2] for search in ("greedy", "beam")]
    with local(app) as client:
        with ThreadPoolExecutor(len(bodies)) as pool:
            results = list(pool.map(lambda body: client.post("/summarize", json=body).json(), bodies))
        served = client.get("/health").json()["served"]
    assert served == {"requests": 4, "model_calls": 2}
    assert all(r["batch_size"] == 2 for r in results)


def test_model_work_does_not_block_the_server(summarizer: Summarizer, monkeypatch) -> None:
    started, release = threading.Event(), threading.Event()
    decode = summarizer.decode

    def slow_decode(*args, **kwargs):
        started.set()
        assert release.wait(10)
        return decode(*args, **kwargs)

    monkeypatch.setattr(summarizer, "decode", slow_decode)
    with local(create_app(summarizer, max_wait_ms=0)) as client, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(client.post, "/summarize", json={"text": "刹车异响"})
        assert started.wait(10)
        assert client.get("/health").status_code == 200  # answered while the model is busy
        assert client.post("/summarize", json={"text": ""}).status_code == 422
        release.set()
        assert pending.result(timeout=10).status_code == 200


def test_a_failing_model_call_is_a_500_without_details_and_the_server_goes_on(
    summarizer: Summarizer, monkeypatch, caplog
) -> None:
    decode = summarizer.decode
    calls = iter([RuntimeError("out of memory at /secret/path"), None])

    def fail_once(*args, **kwargs):
        error = next(calls)
        if error:
            raise error
        return decode(*args, **kwargs)

    monkeypatch.setattr(summarizer, "decode", fail_once)
    with local(create_app(summarizer)) as client, caplog.at_level(logging.ERROR, logger="s2s.serve"):
        response = client.post("/summarize", json={"text": "刹车异响"})
        assert response.status_code == 500
        assert response.json() == {"error": "internal error (the server's log has the details)"}
        assert client.post("/summarize", json={"text": "刹车异响"}).status_code == 200
    [record] = [r for r in caplog.records if r.name == "s2s.serve"]
    assert "POST /summarize" in record.getMessage() and "out of memory at /secret/path" in caplog.text  # traceback


@pytest.mark.parametrize(
    "host, status",
    [
        ("localhost:8000", 200),
        ("127.0.0.1", 200),
        ("127.0.0.1:1234", 200),
        ("[::1]:8000", 200),
        ("LocalHost.", 200),
        ("evil.example", 400),
        ("evil.example:8000", 400),
        ("localhost.evil.example", 400),
        ("127.0.0.1.nip.io:8000", 400),
        ("", 400),
    ],
)
def test_only_requests_naming_this_server_are_answered(client: TestClient, host: str, status: int) -> None:
    response = client.get("/health", headers={"host": host})
    assert response.status_code == status, response.text
    if status == 400:
        assert "is not a name this server answers to (start it with --allow-host NAME" in response.json()["error"]
        assert client.post("/summarize", json={"text": "刹车异响"}, headers={"host": host}).status_code == 400


def test_allowed_hosts_are_the_bound_names_and_those_added(summarizer: Summarizer) -> None:
    assert allowed_host_names("127.0.0.1") == list(LOOPBACK) == allowed_host_names("::1")
    assert allowed_host_names("0.0.0.0") == list(LOOPBACK)  # every interface: loopback names, and those added
    assert allowed_host_names("192.168.1.5", ["demo.lan"]) == ["192.168.1.5", "demo.lan"]
    assert host_name("[::1]:8000") == "::1" and host_name("Demo.LAN.:80") == "demo.lan"
    with local(create_app(summarizer, allowed_hosts=["demo.lan"])) as client:
        assert client.get("/health", headers={"host": "demo.lan:8000"}).status_code == 200
        assert client.get("/health", headers={"host": "localhost:8000"}).status_code == 400
    with local(create_app(summarizer, allowed_hosts=["*"])) as client:
        assert client.get("/health", headers={"host": "anything.example"}).status_code == 200


def test_api_docs_only_when_asked_for(client: TestClient, summarizer: Summarizer) -> None:
    assert [client.get(path).status_code for path in ("/docs", "/redoc", "/openapi.json")] == [404] * 3
    with local(create_app(summarizer, api_docs=True)) as docs:
        assert [docs.get(path).status_code for path in ("/docs", "/redoc", "/openapi.json")] == [200] * 3


def test_beam_gives_no_p_gen_for_a_model_that_does_not_copy(attention_run: Path) -> None:
    summarizer = Summarizer.load(attention_run, "cpu")
    with local(create_app(summarizer)) as client:
        for search in ("greedy", "beam"):
            body = {"question": QUESTION, "dialogue": DIALOGUE, "search": search}
            result = client.post("/summarize", json=body).json()
            assert result["attention"] and result["p_gen"] is None, search
    [summary] = summarizer.summaries([DIALOGUE], summarizer.options(search="beam"), return_attention=True)
    assert summary.attention is not None and summary.p_gen is None


def test_a_text_model_takes_text(text_summarizer: Summarizer, tmp_path: Path) -> None:
    tsv = tmp_path / "dev.tsv"
    tsv.write_text("".join(f"{text}\t摘要{i}\n" for i, text in enumerate(TEXTS)), encoding="utf-8")
    examples = load_examples(tsv, text_summarizer, limit=2)
    with local(create_app(text_summarizer, examples=examples)) as client:
        assert client.get("/health").json()["input"] == ["text"]
        assert client.get("/examples").json() == {
            "examples": [
                {"id": "1", "text": TEXTS[0], "reference": "摘要0"},
                {"id": "2", "text": TEXTS[1], "reference": "摘要1"},
            ],
            "total": len(TEXTS),
        }
        assert client.post("/summarize", json={"text": TEXTS[0]}).status_code == 200
        wrong = client.post("/summarize", json={"question": QUESTION, "dialogue": DIALOGUE})
        assert wrong.status_code == 422 and wrong.json()["error"].startswith(
            "unknown field 'dialogue', 'question' (expected text, and search options"
        )
        empty = client.post("/summarize", json={"text": " "}).json()
        assert empty == {"error": 'empty text: send {"text": ...} with some words'}


def serve_app(monkeypatch, *args, **kwargs):
    """The app ``serve`` would run (uvicorn not started)."""
    apps = []
    monkeypatch.setattr("uvicorn.run", lambda app, **options: apps.append(app))
    serve_module.serve(*args, **kwargs)
    return apps[0]


def test_served_examples_come_from_the_run_not_from_paths_in_the_checkpoint(
    pointer_generator: Path, attention_run: Path, monkeypatch, caplog
) -> None:
    assert Summarizer.load(pointer_generator, "cpu").cfg.data.dev == str(DEV)  # a readable CSV the checkpoint names
    with caplog.at_level(logging.INFO, logger="s2s.serve"):
        app = serve_app(monkeypatch, pointer_generator, device="cpu")
    with local(app) as client:
        assert client.get("/examples").json() == {"examples": [], "total": 0}  # not shown
    assert f"no examples to offer: --examples FILE names rows to try (the model's dev file was {DEV})" in caplog.text
    with local(serve_app(monkeypatch, pointer_generator, device="cpu", examples=DEV)) as client:
        assert client.get("/examples").json()["total"] == 30  # the operator's file
    assert (attention_run.parent / "dev_split.csv").is_file()
    with local(serve_app(monkeypatch, attention_run, device="cpu")) as client:
        answer = client.get("/examples").json()
    assert answer["total"] == 20 and len(answer["examples"]) == 12  # the run's carved dev rows, 12 of 20
    assert all(e["question"] and e["dialogue"] and e["reference"] for e in answer["examples"])


def test_a_run_dev_split_in_tsv_is_source_then_target(text_summarizer: Summarizer, tmp_path: Path, monkeypatch) -> None:
    data = reader_options("tsv", train="train.tsv", source_column=1, target_column=2)  # the training file's
    monkeypatch.setattr(text_summarizer, "cfg", dataclasses.replace(text_summarizer.cfg, data=data))
    (tmp_path / "dev_split.tsv").write_text("源文本一\t标题一\n源文本二\t标题二\n", encoding="utf-8")
    examples = dev_split_examples(tmp_path / "best.pt", text_summarizer)
    assert (
        examples.rows
        == [
            {"id": "1", "text": "源文本一", "reference": "标题一"},
            {"id": "2", "text": "源文本二", "reference": "标题二"},
        ]
        and examples.total == 2
    )
    assert dev_split_examples(tmp_path / "elsewhere" / "best.pt", text_summarizer) is None


@pytest.mark.parametrize("port", ["99999", "-1", "0", "http", "8e3"])
def test_a_bad_port_is_one_line_and_exit_2(pointer_generator: Path, port: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--checkpoint", str(pointer_generator), "--port", port])
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == f"s2s serve: error: argument --port: {port!r} is not a port number: give one from 1 to 65535"


def test_the_command_line_passes_host_names_and_docs_on(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(serve_module, "serve", lambda *args, **kwargs: calls.append((args, kwargs)))
    assert (
        main(
            [
                "serve",
                "--checkpoint",
                "x.pt",
                "--port",
                "8080",
                "--allow-host",
                "a.lan",
                "--allow-host",
                "b.lan",
                "--api-docs",
            ]
        )
        == 0
    )
    assert main(["serve", "--checkpoint", "x.pt"]) == 0
    assert calls == [
        (
            ("x.pt",),
            {
                "host": "127.0.0.1",
                "port": 8080,
                "device": "auto",
                "examples": None,
                "allow_hosts": ["a.lan", "b.lan"],
                "api_docs": True,
                "quantize": None,
            },
        ),
        (
            ("x.pt",),
            {
                "host": "127.0.0.1",
                "port": 8000,
                "device": "auto",
                "examples": None,
                "allow_hosts": (),
                "api_docs": False,
                "quantize": None,
            },
        ),
    ]


def test_a_missing_extra_is_one_clear_line(
    pointer_generator: Path, summarizer: Summarizer, monkeypatch, capsys
) -> None:
    monkeypatch.setitem(__import__("sys").modules, "fastapi", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r"pip install 's2s-summarizer\[serve\]'"):
        create_app(summarizer)
    assert main(["serve", "--checkpoint", str(pointer_generator)]) == 2
    assert capsys.readouterr().err.strip() == "error: s2s serve needs fastapi: pip install 's2s-summarizer[serve]'"
