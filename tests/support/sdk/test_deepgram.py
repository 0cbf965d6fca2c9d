"""The official deepgram-sdk (7.x) against the Deepgram emulator of `frontdesk emulators`.

The client is pointed at the emulator with nothing but its environment (base URLs) and a dummy
key, and driven through its public live API (`listen.v1.connect`, `send_media`, `send_finalize`,
`send_keep_alive`, `send_configure`, `send_close_stream`, `recv`, `start_listening`). Every raw
server message is also validated strictly against the SDK's own models, with no keys the models do
not define (the SDK itself parses leniently, so that is the real check). Each test uses its own
`tag`, so its transcripts start at the first line of the emulator's script: the bundled fixture
lines (tests/fixtures/speech/lines.txt), which the harness also passes as --deepgram-transcripts.
"""

import asyncio
import json
import pathlib
import threading
import time
import typing
import uuid
import wave

import pydantic
import pytest
import websockets
from conftest import force, injected
from deepgram import AsyncDeepgramClient, DeepgramClient
from deepgram.core.api_error import ApiError
from deepgram.core.events import EventType
from deepgram.environment import DeepgramClientEnvironment
from deepgram.listen.v1.types import (
    ListenV1Configure,
    ListenV1ConfigureFailure,
    ListenV1ConfigureSuccess,
    ListenV1Error,
    ListenV1Metadata,
    ListenV1Results,
    ListenV1SpeechStarted,
    ListenV1UtteranceEnd,
)

SPEECH = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "speech"
LINES = [l.strip() for l in (SPEECH / "lines.txt").read_text().splitlines() if l.strip()]
RATE = 16000
# Where the voice of line01.wav ends (20 ms energy chunks), in seconds.
LINE1_SPEECH = (0.02, 3.44)

MODELS = {
    "Results": ListenV1Results,
    "Metadata": ListenV1Metadata,
    "SpeechStarted": ListenV1SpeechStarted,
    "UtteranceEnd": ListenV1UtteranceEnd,
    "ConfigureSuccess": ListenV1ConfigureSuccess,
    "ConfigureFailure": ListenV1ConfigureFailure,
    "Error": ListenV1Error,
}
CONFIGURE_CODES = {
    "CONFIGURE_KEYTERMS_NOT_SUPPORTED",
    "CONFIGURE_KEYTERM_LIMIT_EXCEEDED",
    "CONFIGURE_ALREADY_PENDING",
    "CONFIGURE_INTERNAL_ERROR",
}


# ---- helpers -------------------------------------------------------------------------------------


def pcm(n):
    with wave.open(str(SPEECH / f"line{n:02d}.wav")) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2)
        return w.readframes(w.getnframes())


def silence(ms, channels=1):
    return b"\0\0" * channels * (RATE * ms // 1000)


def environment(url):
    http = url.replace("ws://", "http://", 1)
    return DeepgramClientEnvironment(base=http, production=url, agent=url, agent_rest=http)


def client(url):
    return DeepgramClient(api_key="dummy-key", environment=environment(url))


def tag():
    return "sdk-" + uuid.uuid4().hex[:12]


def _model_of(annotation):
    """The pydantic model inside an annotation (Optional[...], List[...]), if any."""
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        model = _model_of(arg)
        if model is not None:
            return model
    return None


def no_unknown_keys(model, raw, path):
    fields = model.model_fields
    known = {f.alias or name for name, f in fields.items()}
    extra = set(raw) - known
    assert not extra, f"{path}: keys the SDK's {model.__name__} does not define: {sorted(extra)}"
    for name, field in fields.items():
        value = raw.get(field.alias or name)
        sub = _model_of(field.annotation)
        if sub is None or value is None:
            continue
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            no_unknown_keys(sub, item, f"{path}.{name}[{i}]")


def validate(text):
    """Strictly validate one raw server message against the SDK's model for its type."""
    raw = json.loads(text)
    model = MODELS.get(raw.get("type"))
    assert model is not None, f"a message type the SDK does not know: {raw}"
    model.model_validate(raw, strict=True)
    no_unknown_keys(model, raw, raw["type"])
    if raw["type"] == "ConfigureFailure":
        assert raw["code"] in CONFIGURE_CODES, raw
    if raw["type"] == "Results":
        for word in raw["channel"]["alternatives"][0]["words"]:
            assert raw["start"] - 1e-6 <= word["start"] < word["end"], raw
            assert word["end"] <= raw["start"] + raw["duration"] + 1e-6, raw
    return model


class Tap:
    """Wraps the SDK socket's websocket: records each raw text message, and gives `recv` a
    timeout so a missing message fails the test instead of hanging it."""

    def __init__(self, ws, timeout=5.0):
        self.ws, self.timeout, self.raw = ws, timeout, []

    def recv(self, timeout=None):
        message = self.ws.recv(timeout=timeout or self.timeout)
        if isinstance(message, str):
            self.raw.append(message)
        return message

    def __iter__(self):
        for message in self.ws:
            if isinstance(message, str):
                self.raw.append(message)
            yield message

    def __getattr__(self, name):
        return getattr(self.ws, name)


def tap(socket, timeout=5.0):
    socket._websocket = Tap(socket._websocket, timeout)
    return socket._websocket


def send(socket, audio, piece=3200):
    for i in range(0, len(audio), piece):
        socket.send_media(audio[i : i + piece])


def drain(socket, wire):
    """`recv` through the SDK until the server closes; each message checked against its raw form.
    Returns the SDK's parsed messages and the close code."""
    parsed = []
    try:
        while True:
            message = socket.recv()
            model = validate(wire.raw[-1])
            assert isinstance(message, model), (type(message), wire.raw[-1])
            parsed.append(message)
    except websockets.exceptions.ConnectionClosed as closed:
        return parsed, closed.rcvd.code if closed.rcvd else None


def finals(messages):
    return [m for m in messages if isinstance(m, ListenV1Results) and m.is_final]


def said(results):
    return " ".join(r.channel.alternatives[0].transcript for r in results if r.channel.alternatives[0].transcript)


# ---- streaming -----------------------------------------------------------------------------------


def test_fixture_stream_gives_interims_finals_and_events(deepgram_url):
    with client(deepgram_url).listen.v1.connect(
        model="nova-3",
        encoding="linear16",
        sample_rate=RATE,
        channels=1,
        interim_results=True,
        vad_events=True,
        utterance_end_ms=1000,
        endpointing=300,
        smart_format=True,
        tag=tag(),
    ) as socket:
        wire = tap(socket)
        send(socket, pcm(1) + silence(1200))
        socket.send_close_stream()
        messages, code = drain(socket, wire)
    assert code == 1000
    assert isinstance(messages[0], ListenV1SpeechStarted)
    assert messages[0].timestamp == pytest.approx(LINE1_SPEECH[0], abs=0.03)
    interims = [m for m in messages if isinstance(m, ListenV1Results) and not m.is_final]
    assert len(interims) >= 5
    spoken = [said([m]) for m in interims if said([m])]
    assert spoken and all(LINES[0].startswith(t) for t in spoken), spoken
    final = finals(messages)[0]
    assert final.speech_final and not final.from_finalize
    assert said([final]) == LINES[0]
    assert final.start + final.duration == pytest.approx(LINE1_SPEECH[1] + 0.3, abs=0.03)
    words = final.channel.alternatives[0].words
    assert words[0].start == pytest.approx(LINE1_SPEECH[0], abs=0.03)
    assert words[-1].end == pytest.approx(LINE1_SPEECH[1], abs=0.03)
    assert [w.punctuated_word for w in words] == LINES[0].split()
    ends = [m for m in messages if isinstance(m, ListenV1UtteranceEnd)]
    assert len(ends) == 1 and ends[0].last_word_end == pytest.approx(LINE1_SPEECH[1], abs=0.03)
    assert isinstance(messages[-1], ListenV1Metadata)
    assert messages[-1].duration == pytest.approx(len(pcm(1)) / 2 / RATE + 1.2, abs=0.03)


def test_defaults_send_finals_only_and_plain_text(deepgram_url):
    with client(deepgram_url).listen.v1.connect(
        model="nova-3", encoding="linear16", sample_rate=RATE, endpointing=300, tag=tag()
    ) as socket:
        wire = tap(socket)
        send(socket, pcm(1) + silence(1200) + pcm(2) + silence(600))
        socket.send_close_stream()
        messages, _ = drain(socket, wire)
    kinds = {type(m) for m in messages}
    assert kinds == {ListenV1Results, ListenV1Metadata}, kinds
    assert all(m.is_final for m in messages if isinstance(m, ListenV1Results))
    plain = [l.lower().replace(",", "").replace(".", "") for l in LINES[:2]]
    assert [said([f]) for f in finals(messages) if said([f])] == plain
    assert all(w.punctuated_word is None for f in finals(messages) for w in f.channel.alternatives[0].words)


@pytest.mark.parametrize("endpointing", [100, 700])
def test_endpointing_sets_when_speech_final_arrives(deepgram_url, endpointing):
    with client(deepgram_url).listen.v1.connect(
        model="nova-3", encoding="linear16", sample_rate=RATE, endpointing=endpointing, tag=tag()
    ) as socket:
        wire = tap(socket)
        send(socket, pcm(1) + silence(1500))
        socket.send_close_stream()
        messages, _ = drain(socket, wire)
    endpoints = [f for f in finals(messages) if f.speech_final]
    assert said(finals(messages)) == LINES[0].lower().replace(",", "").replace(".", "")
    last = endpoints[-1]
    assert last.start + last.duration == pytest.approx(LINE1_SPEECH[1] + endpointing / 1000, abs=0.03)
    # The clip pauses 160 ms after "Hello,": 100 ms endpointing splits the line there, 700 does not.
    assert (len(endpoints) > 1) == (endpointing == 100)


def test_endpointing_false_sends_no_speech_final(deepgram_url):
    with client(deepgram_url).listen.v1.connect(
        model="nova-3", encoding="linear16", sample_rate=RATE, endpointing=False, punctuate=True, tag=tag()
    ) as socket:
        wire = tap(socket)
        send(socket, pcm(1) + silence(1500))
        socket.send_close_stream()
        messages, _ = drain(socket, wire)
    assert not any(f.speech_final for f in finals(messages))
    assert said(finals(messages)) == LINES[0]


def test_finalize_keepalive_and_close_stream(deepgram_url):
    with client(deepgram_url).listen.v1.connect(
        model="nova-3", encoding="linear16", sample_rate=RATE, endpointing=False, punctuate=True, tag=tag()
    ) as socket:
        wire = tap(socket)
        audio = pcm(1)
        send(socket, audio[: len(audio) // 2])
        socket.send_keep_alive()
        send(socket, audio[len(audio) // 2 :])
        socket.send_finalize()
        first = socket.recv()
        validate(wire.raw[-1])
        assert isinstance(first, ListenV1Results) and first.is_final and first.from_finalize
        assert not first.speech_final
        assert said([first]) == LINES[0]
        send(socket, pcm(2))
        socket.send_close_stream()
        messages, code = drain(socket, wire)
    assert code == 1000
    assert said(finals(messages)) == LINES[1]
    assert not any(f.from_finalize for f in finals(messages))
    assert isinstance(messages[-1], ListenV1Metadata) and messages[-1].channels == 1


def test_configure_success_failure_and_schema_error(deepgram_url):
    with client(deepgram_url).listen.v1.connect(
        model="nova-3", encoding="linear16", sample_rate=RATE, endpointing=False, tag=tag()
    ) as socket:
        wire = tap(socket)
        socket.send_configure(ListenV1Configure(keyterms=["cardiology", "Noah Fischer"]))
        ok = socket.recv()
        validate(wire.raw[-1])
        assert isinstance(ok, ListenV1ConfigureSuccess) and ok.keyterms == ["cardiology", "Noah Fischer"]
        socket.send_configure(ListenV1Configure(features={"punctuate": True}))
        ok = socket.recv()
        validate(wire.raw[-1])
        assert isinstance(ok, ListenV1ConfigureSuccess) and "keyterms" not in json.loads(wire.raw[-1])
        socket.send_configure(ListenV1Configure(keyterms=["word " * 300, "word " * 300]))
        over = socket.recv()
        validate(wire.raw[-1])
        assert isinstance(over, ListenV1ConfigureFailure) and over.code == "CONFIGURE_KEYTERM_LIMIT_EXCEEDED"
        socket._send({"type": "Reconfigure"})
        error = socket.recv()
        validate(wire.raw[-1])
        assert isinstance(error, ListenV1Error) and error.variant == "SchemaError"
        send(socket, pcm(1))
        socket.send_finalize()
        assert said([socket.recv()]) == LINES[0], "punctuate switched on by Configure"
        socket.send_close_stream()
        drain(socket, wire)
    with client(deepgram_url).listen.v1.connect(
        model="nova-2", encoding="linear16", sample_rate=RATE, tag=tag()
    ) as socket:
        wire = tap(socket)
        socket.send_configure(ListenV1Configure(keyterms=["cardiology"]))
        failed = socket.recv()
        validate(wire.raw[-1])
        assert isinstance(failed, ListenV1ConfigureFailure)
        assert failed.code == "CONFIGURE_KEYTERMS_NOT_SUPPORTED" and failed.request_id


def test_multichannel_results_carry_their_channel(deepgram_url):
    left = pcm(1) + silence(400)
    stereo = b"".join(left[i : i + 2] + b"\0\0" for i in range(0, len(left), 2))
    with client(deepgram_url).listen.v1.connect(
        model="nova-3", encoding="linear16", sample_rate=RATE, channels=2, multichannel=True, endpointing=300, tag=tag()
    ) as socket:
        wire = tap(socket)
        send(socket, stereo, piece=6400)
        socket.send_close_stream()
        messages, _ = drain(socket, wire)
    by_channel = {}
    for f in finals(messages):
        by_channel.setdefault(tuple(f.channel_index), []).append(f)
    assert said(by_channel[(0, 2)]) == LINES[0].lower().replace(",", "").replace(".", "")
    assert said(by_channel.get((1, 2), [])) == ""
    assert messages[-1].channels == 2


def test_telephone_mulaw_at_8khz(deepgram_url):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop  # stdlib up to 3.12: G.711 without another dependency

        narrow, _ = audioop.ratecv(pcm(1), 2, 1, RATE, 8000, None)
        mulaw = audioop.lin2ulaw(narrow, 2) + b"\xff" * 8000
    with client(deepgram_url).listen.v1.connect(
        model="nova-3", encoding="mulaw", sample_rate=8000, endpointing=300, punctuate=True, tag=tag()
    ) as socket:
        wire = tap(socket)
        send(socket, mulaw, piece=1600)
        socket.send_close_stream()
        messages, _ = drain(socket, wire)
    final = finals(messages)[0]
    assert final.speech_final and said([final]) == LINES[0]
    assert final.start + final.duration == pytest.approx(LINE1_SPEECH[1] + 0.3, abs=0.05)


async def _async_stream(url, line):
    client = AsyncDeepgramClient(api_key="dummy-key", environment=environment(url))
    async with client.listen.v1.connect(
        model="nova-3", encoding="linear16", sample_rate=RATE, punctuate=True, tag=tag()
    ) as socket:
        got, closed = [], asyncio.Event()
        socket.on(EventType.MESSAGE, got.append)
        socket.on(EventType.CLOSE, lambda _: closed.set())
        listener = asyncio.create_task(socket.start_listening())
        audio = pcm(line)
        for i in range(0, len(audio), 3200):
            await socket.send_media(audio[i : i + 3200])
        await socket.send_finalize()
        await socket.send_close_stream()
        await asyncio.wait_for(closed.wait(), 5)
        await listener
    return got


def test_async_client_streams_too(deepgram_url):
    got = asyncio.run(_async_stream(deepgram_url, 3))
    assert said(finals(got)) == LINES[0], "its own tag starts at the first line"
    assert any(f.from_finalize for f in finals(got))
    assert isinstance(got[-1], ListenV1Metadata)


# ---- errors --------------------------------------------------------------------------------------


def refused(url, **query):
    """A refused handshake as the SDK surfaces it: its status and Deepgram's JSON error body.

    deepgram-sdk 7.17 maps only websockets' legacy InvalidStatusCode to its ApiError; with the
    websockets 14+ it requires, the sync client raises websockets' InvalidStatus, which carries
    the response (so the body can be checked too)."""
    with pytest.raises((ApiError, websockets.exceptions.InvalidStatus)) as err:
        with client(url).listen.v1.connect(model="nova-3", **query):
            pass
    if isinstance(err.value, ApiError):
        return err.value.status_code, None  # the SDK's ApiError does not keep the body
    response = err.value.response
    assert response.headers.get("dg-request-id"), response.headers
    return response.status_code, json.loads(response.body)


@pytest.mark.parametrize(
    "query",
    [
        {"encoding": "wav", "sample_rate": RATE},
        {"encoding": "linear16"},
        {"encoding": "linear16", "sample_rate": "16k"},
        {"encoding": "linear16", "sample_rate": RATE, "channels": 0},
        {"encoding": "linear16", "sample_rate": RATE, "endpointing": "soon"},
    ],
)
def test_bad_encoding_or_sample_rate_is_the_sdks_api_error(deepgram_url, query):
    status, body = refused(deepgram_url, **query)
    assert status == 400
    assert body is None or (set(body) == {"err_code", "err_msg", "request_id"} and body["err_msg"]), body


@pytest.mark.parametrize("kind,statuses", [("rate_limited", {429}), ("server_error", {500, 503})])
def test_handshake_faults_are_api_errors(deepgram_url, kind, statuses):
    before = injected(deepgram_url).get(kind, 0)
    force(deepgram_url, kind)
    status, body = refused(deepgram_url, encoding="linear16", sample_rate=RATE)
    assert status in statuses
    assert body is None or body["err_code"], body
    assert injected(deepgram_url)[kind] == before + 1


def _listen_with_fault(url, kind, seconds=3.0):
    """A stream with `kind` forced, through the SDK's event API: what its listener saw within
    `seconds` (before the test's own close), and whether it is still listening."""
    force(url, kind)
    events = {"message": [], "error": [], "close": 0}
    with client(url).listen.v1.connect(
        model="nova-3", encoding="linear16", sample_rate=RATE, interim_results=True, endpointing=300, tag=tag()
    ) as socket:
        wire = tap(socket)
        socket.on(EventType.MESSAGE, events["message"].append)
        socket.on(EventType.ERROR, events["error"].append)
        socket.on(EventType.CLOSE, lambda _: events.__setitem__("close", events["close"] + 1))
        listener = threading.Thread(target=socket.start_listening, daemon=True)
        listener.start()
        try:
            send(socket, pcm(1) + silence(500))
        except websockets.exceptions.ConnectionClosed:
            pass  # the fault may end the stream before all the audio is out
        listener.join(seconds)
        seen = {k: list(v) if isinstance(v, list) else v for k, v in events.items()}
        alive = listener.is_alive()
    for raw in wire.raw:
        try:
            validate(raw)
        except ValueError:  # JSONDecodeError and pydantic's ValidationError
            if kind != "malformed_json":
                raise
    return seen, alive


@pytest.mark.parametrize("kind,code", [("wrong_close_code", 1011), ("drop_socket", None)])
def test_broken_streams_surface_as_the_sdks_error_event(deepgram_url, kind, code):
    events, alive = _listen_with_fault(deepgram_url, kind)
    assert not alive and events["close"] == 1
    assert len(events["error"]) == 1
    error = events["error"][0]
    assert isinstance(error, websockets.exceptions.ConnectionClosedError), error
    assert (error.rcvd.code if error.rcvd else None) == code
    if code:
        assert error.rcvd.reason == "NET-0000"
    assert len(events["message"]) == 3, "the fault strikes after three messages"
    assert injected(deepgram_url)[kind] >= 1


def test_error_event_is_the_sdks_error_model(deepgram_url):
    events, _ = _listen_with_fault(deepgram_url, "error_event", seconds=1.5)
    errors = [m for m in events["message"] if isinstance(m, ListenV1Error)]
    assert len(errors) == 1 and errors[0].description
    assert said(finals(events["message"])) == LINES[0].lower().replace(",", "").replace(".", "")


def test_malformed_json_ends_the_sdks_listener_with_an_error(deepgram_url):
    events, alive = _listen_with_fault(deepgram_url, "malformed_json")
    assert not alive
    assert len(events["error"]) == 1 and isinstance(events["error"][0], json.JSONDecodeError)


def test_stalled_server_goes_quiet(deepgram_url):
    events, alive = _listen_with_fault(deepgram_url, "stall", seconds=1.5)
    assert alive, "a stalled server keeps the socket open"
    assert len(events["message"]) == 3 and not events["error"]


# ---- idle ----------------------------------------------------------------------------------------


def test_idle_stream_is_closed_unless_kept_alive(deepgram_url):
    """Deepgram closes a stream that gets neither audio nor KeepAlive for 10 s (1011 NET-0001)."""
    outcome = {}

    def kept_alive():
        with client(deepgram_url).listen.v1.connect(
            model="nova-3", encoding="linear16", sample_rate=RATE, tag=tag()
        ) as socket:
            wire = tap(socket, timeout=15)
            for _ in range(6):
                socket.send_keep_alive()
                time.sleep(2)
            socket.send_close_stream()
            outcome["kept"] = drain(socket, wire)

    helper = threading.Thread(target=kept_alive)
    helper.start()
    started = time.monotonic()
    with client(deepgram_url).listen.v1.connect(
        model="nova-3", encoding="linear16", sample_rate=RATE, tag=tag()
    ) as socket:
        tap(socket, timeout=15)
        with pytest.raises(websockets.exceptions.ConnectionClosedError) as closed:
            socket.recv()
    assert 9.5 < time.monotonic() - started < 12
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1011, "NET-0001")
    helper.join(20)
    messages, code = outcome["kept"]
    assert code == 1000 and isinstance(messages[-1], ListenV1Metadata)
