"""The official `openai` SDK against the OpenAI emulator (`frontdesk emulators`).

Every raw server message is validated strictly against the SDK's own models (the SDK itself
parses leniently), with no fields the models do not define; tools, tool_choice and
parallel_tool_calls must be honoured; every fault kind must surface as the SDK's typed
exception and follow its retry rules. Run by tests/sdk_conformance.rs.

The SDK reaches the emulator with `openai.OpenAI(base_url=f"{FRONTDESK_OPENAI_URL}/v1",
api_key="sk-dummy")` (any key: `frontdesk emulators` checks none).
"""

import asyncio
import json
import time

import openai
import pydantic
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from conftest import force, injected

MODEL = "gpt-4o-mini"
# Asks for two lookups at once: the receptionist calls list_doctors and find_patient together.
LOOKUP = "I need a cardiology appointment. My name is Emma Nguyen, born November fifteenth, nineteen sixty six."
HELLO = [{"role": "user", "content": "Hello there"}]


def fn(name, required=()):
    props = {"name": {"type": "string"}, "date_of_birth": {"type": "string"}, "specialty": {"type": "string"}}
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": f"the hospital's {name}",
            "parameters": {"type": "object", "properties": props, "required": list(required)},
        },
    }


TOOLS = [fn("list_doctors"), fn("find_patient", ["name", "date_of_birth"]), fn("book_appointment", ["name"])]


def client(url, **kw):
    kw.setdefault("max_retries", 0)
    kw.setdefault("timeout", 10.0)
    return openai.OpenAI(base_url=f"{url}/v1", api_key="sk-dummy", **kw)


def no_extras(value, path):
    """No field anywhere that the SDK's model does not define (its models allow extras)."""
    if isinstance(value, pydantic.BaseModel):
        extra = value.model_extra or {}
        assert not extra, f"{path}: fields the SDK does not define: {sorted(extra)}"
        for name in type(value).model_fields:
            no_extras(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            no_extras(v, f"{path}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            no_extras(v, f"{path}.{k}")


def strict(model, raw):
    obj = model.model_validate(raw, strict=True)
    no_extras(obj, model.__name__)
    return obj


def completion(url, **kw):
    """A non-streaming completion: its raw body validated, then the SDK's parse of it."""
    raw = client(url).chat.completions.with_raw_response.create(model=MODEL, **kw)
    assert raw.headers["content-type"].startswith("application/json")
    strict(ChatCompletion, json.loads(raw.text))
    return raw.parse()


def raw_stream(url, **kw):
    """Every `data:` payload of a streamed completion, each chunk validated; `[DONE]` last."""
    datas = []
    with client(url).chat.completions.with_streaming_response.create(model=MODEL, stream=True, **kw) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        for line in resp.iter_lines():
            if line.startswith("data: "):
                datas.append(line[len("data: "):])
            else:
                assert line == "", f"unexpected SSE line {line!r}"
    assert datas[-1] == "[DONE]", datas[-3:]
    chunks = [json.loads(d) for d in datas[:-1]]
    for c in chunks:
        strict(ChatCompletionChunk, c)
    return chunks


def calls(msg):
    return [c.function.name for c in msg.tool_calls or []]


def test_plain_completion_accepts_every_sdk_parameter(openai_url):
    c = completion(
        openai_url,
        messages=[
            {"role": "developer", "content": [{"type": "text", "text": "You are a receptionist."}]},
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "there"}]},
        ],
        max_completion_tokens=200,
        temperature=0.3,
        top_p=1.0,
        seed=7,
        user="caller-1",
        metadata={"call": "1"},
        store=False,
        response_format={"type": "text"},
        n=1,
        stop=["\n\n"],
        extra_body={"some_future_parameter": {"x": 1}},
    )
    choice = c.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant" and "book" in choice.message.content
    assert choice.message.tool_calls is None
    assert c.usage.prompt_tokens > 0 and c.usage.completion_tokens > 0
    assert c.usage.total_tokens == c.usage.prompt_tokens + c.usage.completion_tokens
    assert c.model == MODEL


def test_max_completion_tokens_cuts_with_length(openai_url):
    c = completion(openai_url, messages=HELLO, max_completion_tokens=3)
    assert c.choices[0].finish_reason == "length"
    assert len(c.choices[0].message.content.split()) == 3


def test_stop_sequence_ends_the_text(openai_url):
    c = completion(openai_url, messages=HELLO, stop=" or")
    assert c.choices[0].finish_reason == "stop" and c.choices[0].message.content == "I can book, move"


def test_stream_with_usage_has_null_usage_until_the_last_chunk(openai_url):
    chunks = raw_stream(openai_url, messages=HELLO, stream_options={"include_usage": True})
    *body, last = chunks
    assert body and all("usage" in c and c["usage"] is None for c in body), [c.get("usage", "absent") for c in body]
    assert last["choices"] == [] and last["usage"]["total_tokens"] > 0
    assert body[0]["choices"][0]["delta"]["role"] == "assistant"
    assert body[-1]["choices"][0]["finish_reason"] == "stop"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in body)
    assert text == "I can book, move or cancel appointments. What would you like to do?"


def test_stream_without_usage_has_no_usage_chunk(openai_url):
    chunks = raw_stream(openai_url, messages=HELLO)
    assert all("usage" not in c and len(c["choices"]) == 1 for c in chunks)


def test_sdk_stream_assembles_text(openai_url):
    stream = client(openai_url).chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    text = "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)
    assert text.startswith("I can book")


def test_no_tools_means_a_text_answer(openai_url):
    c = completion(openai_url, messages=[{"role": "user", "content": LOOKUP}])
    assert c.choices[0].message.tool_calls is None and c.choices[0].finish_reason == "stop"
    assert c.choices[0].message.content


def test_tool_choice_none_answers_in_text(openai_url):
    c = completion(openai_url, messages=[{"role": "user", "content": LOOKUP}], tools=TOOLS, tool_choice="none")
    assert c.choices[0].message.tool_calls is None and c.choices[0].message.content


def test_tool_choice_auto_calls_declared_tools_in_parallel(openai_url):
    c = completion(openai_url, messages=[{"role": "user", "content": LOOKUP}], tools=TOOLS, tool_choice="auto")
    msg = c.choices[0].message
    assert calls(msg) == ["list_doctors", "find_patient"] and c.choices[0].finish_reason == "tool_calls"
    assert json.loads(msg.tool_calls[1].function.arguments) == {"name": "Emma Nguyen", "date_of_birth": "1966-11-15"}
    assert len({t.id for t in msg.tool_calls}) == 2


def test_only_declared_tools_are_called(openai_url):
    c = completion(openai_url, messages=[{"role": "user", "content": LOOKUP}], tools=[fn("find_patient")])
    assert calls(c.choices[0].message) == ["find_patient"]


def test_parallel_tool_calls_false_gives_one_call(openai_url):
    c = completion(
        openai_url, messages=[{"role": "user", "content": LOOKUP}], tools=TOOLS, parallel_tool_calls=False
    )
    assert calls(c.choices[0].message) == ["list_doctors"]


def test_tool_choice_required_always_calls(openai_url):
    c = completion(openai_url, messages=HELLO, tools=TOOLS, tool_choice="required")
    msg = c.choices[0].message
    assert len(msg.tool_calls) >= 1 and msg.content is None
    assert calls(msg)[0] in {t["function"]["name"] for t in TOOLS}
    assert c.choices[0].finish_reason == "tool_calls"


def test_named_tool_choice_calls_that_function(openai_url):
    named = {"type": "function", "function": {"name": "book_appointment"}}
    c = completion(openai_url, messages=[{"role": "user", "content": LOOKUP}], tools=TOOLS, tool_choice=named)
    msg = c.choices[0].message
    assert calls(msg) == ["book_appointment"]
    assert json.loads(msg.tool_calls[0].function.arguments) == {"name": ""}, "required fields present"


def test_streamed_tool_calls_assemble(openai_url):
    chunks = raw_stream(openai_url, messages=[{"role": "user", "content": LOOKUP}], tools=TOOLS)
    acc = {}
    for c in chunks:
        for tc in c["choices"][0]["delta"].get("tool_calls") or []:
            slot = acc.setdefault(tc["index"], {"name": "", "args": ""})
            slot["name"] += tc.get("function", {}).get("name") or ""
            slot["args"] += tc.get("function", {}).get("arguments") or ""
    assert [acc[i]["name"] for i in sorted(acc)] == ["list_doctors", "find_patient"]
    assert json.loads(acc[1]["args"])["name"] == "Emma Nguyen"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_tool_round_trip_ends_in_text(openai_url):
    messages = [{"role": "system", "content": "You are a receptionist."}, {"role": "user", "content": LOOKUP}]
    first = completion(openai_url, messages=messages, tools=TOOLS)
    msg = first.choices[0].message
    assert calls(msg) == ["list_doctors", "find_patient"]
    # The SDK's own message object goes back as is (content null, tool_calls), as users do.
    messages.append(msg)
    results = {
        "list_doctors": {"result": [{"id": 1, "name": "Dr. Amelia Hart", "specialty": "Cardiology"}]},
        "find_patient": {"result": [{"id": 3, "name": "Emma Nguyen", "date_of_birth": "1966-11-15"}]},
    }
    for tc in msg.tool_calls:
        messages.append({"role": "tool", "tool_call_id": tc.id, "content": json.dumps(results[tc.function.name])})
    final = completion(openai_url, messages=messages, tools=TOOLS)
    assert final.choices[0].message.tool_calls is None and final.choices[0].finish_reason == "stop"
    assert "Which day" in final.choices[0].message.content


@pytest.mark.parametrize(
    "kw, param",
    [
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
        ({"messages": HELLO, "temperature": 3}, "temperature"),
        ({"messages": HELLO, "tool_choice": "auto"}, "tool_choice"),
        ({"messages": [{"role": "tool", "content": "{}"}], "tools": TOOLS}, "messages[0].tool_call_id"),
        ({"messages": HELLO, "tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
    ],
)
def test_invalid_requests_get_the_apis_400(openai_url, kw, param):
    with pytest.raises(openai.BadRequestError) as e:
        client(openai_url, max_retries=2).chat.completions.create(model=MODEL, **kw)
    assert error_body(e.value)["type"] == "invalid_request_error" and e.value.param == param


def error_body(exc):
    """The API's error shape, exactly: {"error": {message, type, param, code}}."""
    body = exc.response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert exc.response.headers.get("x-request-id")
    return body["error"]


def count(url, kind):
    return injected(url).get(kind, 0)


def test_rate_limit_429_then_retry_after(openai_url):
    before = count(openai_url, "rate_limited")
    force(openai_url, "rate_limited")
    with pytest.raises(openai.RateLimitError) as e:
        client(openai_url).chat.completions.create(model=MODEL, messages=HELLO)
    headers = e.value.response.headers
    assert error_body(e.value)["code"] == "rate_limit_exceeded"
    assert float(headers["retry-after-ms"]) > 0 and int(headers["retry-after"]) >= 1
    assert e.value.code == "rate_limit_exceeded"
    force(openai_url, "rate_limited")
    started = time.monotonic()
    c = completion_with(client(openai_url, max_retries=1), messages=HELLO)
    assert time.monotonic() - started >= float(headers["retry-after-ms"]) / 1000
    assert c.choices[0].message.content
    assert count(openai_url, "rate_limited") == before + 2


def completion_with(c, **kw):
    return c.chat.completions.create(model=MODEL, **kw)


@pytest.mark.parametrize("stream", [False, True])
def test_server_error_is_5xx_and_retried(openai_url, stream):
    before = count(openai_url, "server_error")
    force(openai_url, "server_error")
    with pytest.raises(openai.InternalServerError) as e:
        completion_with(client(openai_url), messages=HELLO, stream=stream)
    assert e.value.status_code >= 500 and error_body(e.value)["type"] == "server_error"
    force(openai_url, "server_error")
    out = completion_with(client(openai_url, max_retries=1), messages=HELLO, stream=stream)
    if stream:
        assert "".join(ch.choices[0].delta.content or "" for ch in out)
    else:
        assert out.choices[0].message.content
    assert count(openai_url, "server_error") == before + 2


def test_dropped_socket_plain_is_a_connection_error_and_retried(openai_url):
    before = count(openai_url, "drop_socket")
    force(openai_url, "drop_socket")
    with pytest.raises(openai.APIConnectionError) as e:
        completion_with(client(openai_url), messages=HELLO)
    assert not isinstance(e.value, openai.APITimeoutError)
    force(openai_url, "drop_socket")
    assert completion_with(client(openai_url, max_retries=1), messages=HELLO).choices[0].message.content
    assert count(openai_url, "drop_socket") == before + 2


def test_dropped_socket_mid_stream(openai_url):
    before = count(openai_url, "drop_socket")
    force(openai_url, "drop_socket")
    got = []
    with pytest.raises(openai.APIConnectionError):
        for ch in completion_with(client(openai_url, max_retries=2), messages=HELLO, stream=True):
            got.append(ch)
    assert got, "chunks came before the drop"
    assert count(openai_url, "drop_socket") == before + 1


@pytest.mark.parametrize("stream", [False, True])
def test_stall_times_out(openai_url, stream):
    before = count(openai_url, "stall")
    force(openai_url, "stall")
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        out = completion_with(client(openai_url, timeout=1.0), messages=HELLO, stream=stream)
        for _ in out:
            pass
    assert 0.9 <= time.monotonic() - started < 5
    assert count(openai_url, "stall") == before + 1


def test_a_stalled_plain_request_is_retried_after_its_timeout(openai_url):
    before = count(openai_url, "stall")
    force(openai_url, "stall")
    started = time.monotonic()
    c = completion_with(client(openai_url, timeout=1.0, max_retries=1), messages=HELLO)
    assert c.choices[0].message.content and time.monotonic() - started >= 1.0
    assert count(openai_url, "stall") == before + 1


def test_a_websocket_only_fault_is_ignored_and_not_counted(openai_url):
    before = injected(openai_url)
    force(openai_url, "wrong_close_code")
    assert completion_with(client(openai_url), messages=HELLO).choices[0].message.content
    assert injected(openai_url) == before


def test_malformed_json_plain(openai_url):
    before = count(openai_url, "malformed_json")
    force(openai_url, "malformed_json")
    with pytest.raises((json.JSONDecodeError, openai.APIResponseValidationError)):
        completion_with(client(openai_url, max_retries=2), messages=HELLO)
    assert count(openai_url, "malformed_json") == before + 1


def test_malformed_json_in_stream(openai_url):
    before = count(openai_url, "malformed_json")
    force(openai_url, "malformed_json")
    with pytest.raises(json.JSONDecodeError):
        for _ in completion_with(client(openai_url), messages=HELLO, stream=True):
            pass
    assert count(openai_url, "malformed_json") == before + 1


def test_error_event_in_stream_is_an_api_error(openai_url):
    before = count(openai_url, "error_event")
    force(openai_url, "error_event")
    got = []
    with pytest.raises(openai.APIError) as e:
        for ch in completion_with(client(openai_url, max_retries=2), messages=HELLO, stream=True):
            got.append(ch)
    assert not isinstance(e.value, (openai.APIStatusError, openai.APIConnectionError))
    assert got and e.value.body["type"] == "server_error" and e.value.message
    assert count(openai_url, "error_event") == before + 1


def test_error_event_plain_is_a_500(openai_url):
    before = count(openai_url, "error_event")
    force(openai_url, "error_event")
    with pytest.raises(openai.InternalServerError) as e:
        completion_with(client(openai_url), messages=HELLO)
    assert e.value.status_code == 500 and error_body(e.value)["type"] == "server_error"
    assert count(openai_url, "error_event") == before + 1


def test_async_client_streams_and_retries(openai_url):
    async def run():
        c = openai.AsyncOpenAI(base_url=f"{openai_url}/v1", api_key="sk-dummy", max_retries=1, timeout=10.0)
        force(openai_url, "rate_limited")
        stream = await c.chat.completions.create(
            model=MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
        chunks = [ch async for ch in stream]
        await c.close()
        return chunks

    before = count(openai_url, "rate_limited")
    chunks = asyncio.run(run())
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices).startswith("I can book")
    assert all(ch.usage is None for ch in chunks[:-1]) and chunks[-1].usage.total_tokens > 0
    assert count(openai_url, "rate_limited") == before + 1
