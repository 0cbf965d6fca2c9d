"""The official `cartesia` SDK (4.x) against the Cartesia TTS websocket emulator.

Run by tests/sdk_conformance.rs with FRONTDESK_CARTESIA_URL (ws://127.0.0.1:PORT). The SDK is
pointed at the emulator with `Cartesia(api_key=..., websocket_base_url=URL)` and speaks as it does
to api.cartesia.ai (header `cartesia-version: 2026-08-14`, `Authorization: Bearer`). Every raw
server message is validated strictly against the SDK's own models (which parse leniently and
allow extra keys), keys the models do not define included.
"""

import array
import asyncio
import base64
import json
import typing

import pytest
import websockets.exceptions
from cartesia import AsyncCartesia, Cartesia
from cartesia.types import websocket_response as wr
from pydantic import BaseModel

from conftest import force, injected

VOICE = "794f9389-aac1-45b6-b726-9d9369183238"
S16_24K = {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 24000}
MODELS = {
    "chunk": wr.Chunk,
    "flush_done": wr.FlushDone,
    "done": wr.Done,
    "timestamps": wr.Timestamps,
    "phoneme_timestamps": wr.PhonemeTimestamps,
    "error": wr.Error,
}
BYTES_PER_SAMPLE = {"pcm_s16le": 2, "pcm_f32le": 4, "pcm_mulaw": 1, "pcm_alaw": 1}

# The SDK's own use of websockets' sync client (4.2.0 + websockets 15+), not ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:connect\\(\\) must be used as a context manager:DeprecationWarning"
)


# --- strict validation of what the server sent -------------------------------------------------


def _model_in(annotation):
    """The pydantic model inside an annotation such as Optional[WordTimestamps], if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def assert_no_extra_keys(model, raw, path="$"):
    fields = {(f.alias or name): f for name, f in model.model_fields.items()}
    extra = set(raw) - set(fields)
    assert not extra, f"{path}: keys {sorted(extra)} are not in {model.__name__}: {raw}"
    for key, value in raw.items():
        sub = _model_in(fields[key].annotation)
        if sub is not None and isinstance(value, dict):
            assert_no_extra_keys(sub, value, f"{path}.{key}")


def validate(raw):
    """Parse one raw server message strictly against the SDK model its `type` names."""
    msg = json.loads(raw)
    model = MODELS.get(msg.get("type"))
    assert model is not None, f"message type unknown to the SDK: {msg}"
    model.model_validate(msg, strict=True)
    assert_no_extra_keys(model, msg)
    return msg


def spy(conn):
    """Record and strictly validate every raw message the SDK parses on this connection."""
    seen = []
    parse = conn.parse_event

    def checked(raw):
        seen.append(validate(raw))
        return parse(raw)

    conn.parse_event = checked
    return seen


# --- helpers ------------------------------------------------------------------------------------


def client(url):
    return Cartesia(api_key="dummy-key", websocket_base_url=url)


def async_client(url):
    return AsyncCartesia(api_key="dummy-key", websocket_base_url=url)


def events(ctx):
    return list(ctx.receive())


def audio(evs):
    return b"".join(base64.b64decode(e.data) for e in evs if e.type == "chunk")


def word_stamps(evs):
    words, start, end = [], [], []
    for e in evs:
        if e.type == "timestamps" and e.word_timestamps is not None:
            words += e.word_timestamps.words
            start += e.word_timestamps.start
            end += e.word_timestamps.end
    return words, start, end


def mulaw_decode(u):
    u = ~u & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return 0x84 - t if u & 0x80 else t - 0x84


def alaw_decode(a):
    a ^= 0x55
    seg = (a & 0x70) >> 4
    t = ((a & 0x0F) << 4) + (8 if seg == 0 else 0x108)
    if seg > 1:
        t <<= seg - 1
    return t if a & 0x80 else -t


def decode(data, encoding):
    """Samples as floats in [-1, 1] (s16 scale for the byte encodings)."""
    if encoding == "pcm_s16le":
        return [s / 32768 for s in array.array("h", data)]
    if encoding == "pcm_f32le":
        return list(array.array("f", data))
    table = mulaw_decode if encoding == "pcm_mulaw" else alaw_decode
    return [table(b) / 32768 for b in data]


# --- contexts -----------------------------------------------------------------------------------


def test_continuations_make_one_stream_of_audio_and_timestamps(cartesia_url):
    texts = ["Hello there, ", "how can I help ", "you today?"]
    with client(cartesia_url).tts.websocket_connect() as conn:
        seen = spy(conn)
        ctx = conn.context(model_id="sonic-3", voice={"id": VOICE}, output_format=S16_24K,
                           add_timestamps=True)
        for t in texts:
            ctx.push(t)
        ctx.no_more_inputs()
        evs = events(ctx)
    assert evs[-1].type == "done" and seen[-1]["type"] == "done"
    assert {e.context_id for e in evs} == {ctx._context_id}
    samples = len(audio(evs)) // 2
    words, start, end = word_stamps(evs)
    assert words == "".join(texts).split()
    assert start == sorted(start) and all(s < e for s, e in zip(start, end))
    # The last word ends with the audio: the timestamps describe what was sent.
    assert abs(end[-1] - samples / 24000) < 0.01, (end[-1], samples)
    assert all(c["status_code"] == 206 for c in seen if c["type"] == "chunk")


@pytest.mark.parametrize("voice", [VOICE, {"id": VOICE}, {"mode": "id", "id": VOICE}])
def test_every_voice_shape_is_accepted(cartesia_url, voice):
    with client(cartesia_url).tts.websocket_connect() as conn:
        spy(conn)
        ctx = conn.context(model_id="sonic-3", voice=voice, output_format=S16_24K)
        ctx.push("Good morning.")
        ctx.no_more_inputs()
        evs = events(ctx)
    assert [e.type for e in evs][-1] == "done", evs[-1]
    assert audio(evs)


def test_context_without_defaults_ends_with_the_sdks_stock_voice(cartesia_url):
    # The context has no voice or format of its own: pushes name them, and no_more_inputs() sends
    # the SDK's stock voice id, sonic-latest and f32 at 44.1 kHz. The end must still be accepted.
    with client(cartesia_url).tts.websocket_connect() as conn:
        seen = spy(conn)
        ctx = conn.context()
        ctx.push("Just a moment.", voice=VOICE, model_id="sonic-3", output_format=S16_24K)
        ctx.no_more_inputs()
        evs = events(ctx)
    assert evs[-1].type == "done", seen[-1]
    assert len(audio(evs)) > 0


async def _speak(conn, text, **kw):
    ctx = conn.context(model_id="sonic-3", voice=VOICE, output_format=S16_24K, **kw)
    await ctx.push(text)
    await ctx.no_more_inputs()
    return ctx._context_id, [e async for e in ctx.receive()]


def test_two_contexts_share_a_socket_async(cartesia_url):
    async def run():
        async with async_client(cartesia_url).tts.websocket_connect() as conn:
            seen = spy(conn)
            a, b = await asyncio.gather(
                _speak(conn, "A short one."),
                _speak(conn, "A noticeably longer reply for the other context."),
            )
            return seen, a, b

    seen, (ida, evs_a), (idb, evs_b) = asyncio.run(run())
    for cid, evs in [(ida, evs_a), (idb, evs_b)]:
        assert {e.context_id for e in evs} == {cid}
        assert evs[-1].type == "done"
    assert len(audio(evs_b)) > 3 * len(audio(evs_a))
    assert {m["context_id"] for m in seen} == {ida, idb}


def test_cancel_stops_only_that_context(cartesia_url):
    async def run():
        async with async_client(cartesia_url).tts.websocket_connect() as conn:
            seen = spy(conn)
            gone = conn.context(model_id="sonic-3", voice=VOICE, output_format=S16_24K)
            await gone.push("This reply is long enough to still be streaming when it is cancelled.")
            await gone.no_more_inputs()
            first = await gone.receive().__anext__()
            await gone.cancel()
            kept = await _speak(conn, "The next reply is spoken in full.")
            await asyncio.sleep(0.3)
            return seen, gone._context_id, first, kept

    seen, gone, first, (kept, evs) = asyncio.run(run())
    assert first.type == "chunk"
    assert evs[-1].type == "done"
    late = [m for m in seen if m["context_id"] == gone and m["type"] != "chunk"]
    assert late == [], late  # no done (nor anything but audio already in flight)
    assert sum(1 for m in seen if m["context_id"] == gone) < 6


def test_flush_marks_later_chunks_and_is_confirmed(cartesia_url):
    with client(cartesia_url).tts.websocket_connect() as conn:
        seen = spy(conn)
        ctx = conn.context(model_id="sonic-3", voice=VOICE, output_format=S16_24K,
                           add_timestamps=True)
        ctx.push("Hello, ")
        ctx.push("", flush=True)
        ctx.push("world.")
        ctx.no_more_inputs()
        evs = events(ctx)
    kinds = [e.type for e in evs]
    at = kinds.index("flush_done")
    assert evs[at].flush_id == 1 and evs[at].flush_done is True
    assert all(e.flush_id is None for e in evs[:at] if e.type == "chunk")
    after = [e for e in evs[at + 1:] if e.type in ("chunk", "timestamps")]
    assert after and all(e.flush_id == 1 for e in after)
    assert word_stamps(evs)[0] == ["Hello,", "world."]
    assert kinds[-1] == "done" and seen[-1]["type"] == "done"


def test_word_and_phoneme_timestamps(cartesia_url):
    text = "Your appointment is at nine."
    with client(cartesia_url).tts.websocket_connect() as conn:
        seen = spy(conn)
        ctx = conn.context(model_id="sonic-3", voice=VOICE, output_format=S16_24K,
                           add_timestamps=True, add_phoneme_timestamps=True)
        ctx.push(text)
        ctx.no_more_inputs()
        evs = events(ctx)
    words, start, end = word_stamps(evs)
    assert words == text.split()
    ph = [e.phoneme_timestamps for e in evs if e.type == "phoneme_timestamps"]
    phonemes = [p for x in ph for p in x.phonemes]
    assert len(phonemes) == sum(sum(c.isalnum() for c in w) for w in words)
    ph_end = [t for x in ph for t in x.end]
    assert ph_end == sorted(ph_end) and abs(ph_end[-1] - end[-1]) < 1e-9
    # A word is announced only after the audio holding it was sent.
    sent = 0
    for m in seen:
        if m["type"] == "chunk":
            sent += len(base64.b64decode(m["data"])) // 2
        elif m["type"] == "timestamps":
            assert max(m["word_timestamps"]["end"]) <= sent / 24000 + 1e-9


# --- output formats -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoding,rate",
    [("pcm_f32le", 44100), ("pcm_s16le", 16000), ("pcm_s16le", 48000), ("pcm_f32le", 22050),
     ("pcm_mulaw", 8000), ("pcm_alaw", 8000), ("pcm_mulaw", 24000)],
)
def test_output_formats(cartesia_url, encoding, rate):
    fmt = {"container": "raw", "encoding": encoding, "sample_rate": rate}
    # f32 at 44.1 kHz is the SDK's default: sent when the context names no format.
    default = encoding == "pcm_f32le" and rate == 44100
    with client(cartesia_url).tts.websocket_connect() as conn:
        spy(conn)
        ctx = conn.context(model_id="sonic-3", voice=VOICE, add_timestamps=True,
                           **({} if default else {"output_format": fmt}))
        ctx.push("We open at nine.")
        ctx.no_more_inputs()
        evs = events(ctx)
    assert evs[-1].type == "done", evs[-1]
    data = audio(evs)
    width = BYTES_PER_SAMPLE[encoding]
    assert len(data) % width == 0
    samples = decode(data, encoding)
    end = word_stamps(evs)[2][-1]
    assert abs(len(samples) / rate - end) < 2 / rate + 1e-6, (len(samples), end)
    assert all(-1.0 <= s <= 1.0 for s in samples)
    peak = max(abs(s) for s in samples)
    assert 0.05 < peak < 0.5, peak  # a voice-like level, decoded with the right law


@pytest.mark.parametrize(
    "fmt,words",
    [({"container": "raw", "encoding": "pcm_s16le", "sample_rate": 11025}, "sample_rate"),
     ({"container": "raw", "encoding": "pcm_s24le", "sample_rate": 8000}, "encoding"),
     ({"container": "mp3", "encoding": "pcm_s16le", "sample_rate": 8000}, "container")],
)
def test_invalid_format_is_an_error_event(cartesia_url, fmt, words):
    with client(cartesia_url).tts.websocket_connect() as conn:
        spy(conn)
        ctx = conn.context(model_id="sonic-3", voice=VOICE, output_format=fmt)
        ctx.push("Hi.")
        evs = events(ctx)
    err = evs[-1]
    assert err.type == "error" and err.status_code == 400 and err.context_id == ctx._context_id
    assert words in err.message and err.error_code and err.title and err.request_id


@pytest.mark.parametrize(
    "kw,words",
    [({"model_id": "no-such-model"}, "no-such-model"),
     ({"voice": {"id": ""}}, "voice"),
     ({"voice": {"mode": "embedding", "embedding": [0.1]}}, "voice")],
)
def test_invalid_model_or_voice_is_an_error_event(cartesia_url, kw, words):
    with client(cartesia_url).tts.websocket_connect() as conn:
        spy(conn)
        ctx = conn.context(output_format=S16_24K)
        ctx.send(transcript="Hi.", voice=kw.get("voice", VOICE),
                 model_id=kw.get("model_id", "sonic-3"), continue_=False)
        evs = events(ctx)
    assert evs[-1].type == "error" and evs[-1].status_code == 400
    assert words in evs[-1].message and words in evs[-1].error


def test_errors_surface_through_the_v2_compatible_api(cartesia_url):
    ws = client(cartesia_url).tts.websocket()
    ws.connect()
    spy(ws._connection)
    try:
        out = ws.send(model_id="sonic-3", transcript="Fine.", voice={"id": VOICE},
                      output_format=S16_24K, stream=False, add_timestamps=True)
        assert out.audio and out.word_timestamps["words"] == ["Fine."]
        with pytest.raises(RuntimeError, match="no-such-model"):
            ws.send(model_id="no-such-model", transcript="Hi.", voice={"id": VOICE},
                    output_format=S16_24K, stream=False)
    finally:
        ws.close()


def test_version_query_wins_over_the_sdk_header(cartesia_url):
    # The API takes ?cartesia_version over the header; an old version gets the old error shape.
    with client(cartesia_url).tts.websocket_connect(
        extra_query={"cartesia_version": "2025-04-16"}
    ) as conn:
        ctx = conn.context(model_id="no-such-model", voice=VOICE, output_format=S16_24K)
        ctx.push("Hi.")
        raw = json.loads(conn.recv_bytes(timeout=5))
    assert raw["type"] == "error" and "no-such-model" in raw["error"] and "title" not in raw


# --- faults -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,status", [("rate_limited", 429), ("server_error", 500)])
def test_refused_handshake_is_invalid_status(cartesia_url, kind, status):
    before = injected(cartesia_url).get(kind, 0)
    force(cartesia_url, kind)
    with pytest.raises(websockets.exceptions.InvalidStatus) as e:
        client(cartesia_url).tts.websocket_connect().enter()
    resp = e.value.response
    assert resp.status_code == status
    body = json.loads(resp.body)
    assert set(body) == {"error_code", "title", "message", "request_id"}, body
    assert injected(cartesia_url)[kind] == before + 1


@pytest.mark.parametrize("kind", ["drop_socket", "wrong_close_code"])
def test_socket_faults_close_the_connection(cartesia_url, kind):
    force(cartesia_url, kind)
    with client(cartesia_url).tts.websocket_connect() as conn:
        seen = spy(conn)
        ctx = conn.context(model_id="sonic-3", voice=VOICE, output_format=S16_24K)
        ctx.push("Long enough that the socket closes in the middle of this reply.")
        ctx.no_more_inputs()
        with pytest.raises(websockets.exceptions.ConnectionClosedError) as e:
            events(ctx)
    assert len(seen) == 3  # the fault strikes after --fault-after (3) messages
    if kind == "wrong_close_code":
        assert e.value.rcvd is not None and e.value.rcvd.code == 1011
    else:
        assert e.value.rcvd is None  # no close frame at all


def test_malformed_frame_breaks_the_sdks_parser(cartesia_url):
    force(cartesia_url, "malformed_json", scope="stream")
    with client(cartesia_url).tts.websocket_connect() as conn:
        ctx = conn.context(model_id="sonic-3", voice=VOICE, output_format=S16_24K)
        ctx.push("A garbage frame arrives somewhere in this reply.")
        ctx.no_more_inputs()
        with pytest.raises(json.JSONDecodeError):
            events(ctx)


def test_stream_faults_fail_only_their_context(cartesia_url):
    with client(cartesia_url).tts.websocket_connect() as conn:
        spy(conn)
        before = injected(cartesia_url)
        for kind, status in [("error_event", 500), ("rate_limited", 429), ("server_error", 500)]:
            force(cartesia_url, kind, scope="stream")
            bad = conn.context(model_id="sonic-3", voice=VOICE, output_format=S16_24K)
            # One message: an input after a refused context's error would open a new context.
            bad.send(transcript="This context fails part way through its reply.", voice=VOICE,
                     continue_=False)
            evs = events(bad)
            assert evs[-1].type == "error" and evs[-1].status_code == status, (kind, evs[-1])
            assert evs[-1].context_id == bad._context_id and evs[-1].request_id
            chunks = sum(1 for e in evs if e.type == "chunk")
            assert chunks == (3 if kind == "error_event" else 0), (kind, chunks)
            good = conn.context(model_id="sonic-3", voice=VOICE, output_format=S16_24K)
            good.push("The next reply is fine.")
            good.no_more_inputs()
            assert events(good)[-1].type == "done", kind
            assert injected(cartesia_url)[kind] == before.get(kind, 0) + 1


def test_stalled_context_times_out(cartesia_url):
    force(cartesia_url, "stall", scope="stream")
    with client(cartesia_url).tts.websocket_connect() as conn:
        ctx = conn.context(model_id="sonic-3", voice=VOICE, output_format=S16_24K, timeout=0.8)
        ctx.push("Nobody will hear this.")
        ctx.no_more_inputs()
        with pytest.raises(TimeoutError):
            events(ctx)


def test_connection_error_event_strikes_its_first_context(cartesia_url):
    force(cartesia_url, "error_event")
    with client(cartesia_url).tts.websocket_connect() as conn:
        spy(conn)
        ctx = conn.context(model_id="sonic-3", voice=VOICE, output_format=S16_24K)
        ctx.push("Failed part way.")
        ctx.no_more_inputs()
        assert events(ctx)[-1].type == "error"
        again = conn.context(model_id="sonic-3", voice=VOICE, output_format=S16_24K)
        again.push("Then fine.")
        again.no_more_inputs()
        assert events(again)[-1].type == "done"
