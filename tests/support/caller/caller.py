#!/usr/bin/env python3
"""The end-to-end test caller: a participant built on the official LiveKit Python SDK that joins a
room, speaks WAV files as a microphone track following a JSON script, and writes what it sent and
what it heard on ONE timeline.

    caller.py --url ws://127.0.0.1:7880 --api-key devkey --api-secret secret --room r1 \\
        --identity caller-1 [--dispatch frontdesk] [--token-file jwt.txt] --script script.json \\
        --record out.wav --report out.json [--timeout 120] [--rate 48000] [--listen-any]

The agent: the first remote participant of kind AGENT that publishes audio (after it leaves, the
next one); with --listen-any, the first remote participant with audio, agent or not. The caller
publishes its microphone (mono at --rate; Opus with RED and DTX, the SDK's defaults, unless
--no-red, --no-dtx) and keeps it live with digital silence between utterances. With --dispatch it creates an explicit
dispatch of that agent name into the room right after joining.

Timeline: milliseconds since the caller joined (time.monotonic() when Room.connect returned).
The WAV is stereo s16 at --rate: channel 0 is what the caller put on the wire, channel 1 what it
heard from the agent, each sample at its position on that timeline, silence elsewhere. The report's
times are on the same clock.

Placement: frames are numbered by their sample count within a stream (one subscription, or the
caller's microphone) and stamped with the clock when the SDK handed them over (received) or
accepted them (sent). A stream is continuous except for real gaps, so a frame's position is its
sample offset plus the smallest hand-over delay of any later frame of the stream: a late burst
after an event-loop stall is put back where it belongs, a real gap (nothing sent or received)
shifts what follows. A sent frame goes on the wire --send-queue-ms after capture_frame accepts it
(the SDK's source queue), so that much is added to the sent side.

Script: a JSON list of steps, run in order (paths relative to the script file):
    {"say": "a.wav"}                                     speak a file (any rate/channels, PCM)
    {"pause_ms": 500}                                    wait (sending silence)
    {"wait_agent_joined": {"timeout_ms": 20000}}         until the agent's audio is subscribed
    {"wait_agent_speech": {"timeout_ms": 10000}}         until the agent's audio is active
    {"wait_agent_silence": {"quiet_ms": 800, "timeout_ms": 20000}}
                                                         until the agent was quiet that long
    {"barge_in": {"after_ms": 700, "say": "b.wav", "timeout_ms": 10000}}
                                                         wait for agent speech, speak that far in
    {"leave": true}                                      disconnect
    {"wait_disconnect": {"timeout_ms": 10000}}           until the agent leaves or we are dropped
    {"wait_disconnect": {"or_reconnecting": true}}       ... or the SDK starts reconnecting
A step that times out fails (step_timeout event, an error in the report) and ends the script
unless --keep-going.

Agent audio is "active" when a 20 ms window's RMS is above --threshold-dbfs (-45); speech
segments are active windows merged across gaps shorter than --hangover-ms (300).

Report (JSON): ok, exit_code, errors, room, identity, agent_identity, listened, participants
(identity -> kind), dispatch_id, joined_at_ms (0), joined_at_unix_ms, rate, steps (index, step, ok,
start_ms, end_ms, error), events (t_ms, kind, ...; kinds: joined, published, dispatch_created,
say_start, say_end, agent_joined, agent_left, agent_track_subscribed, agent_track_unsubscribed,
agent_speech_start, agent_speech_end, reconnecting, reconnected, disconnected, caller_left,
step_timeout, timeout, transcription_received (identity, track, segments: id, text, final),
data_received (identity, topic, payload as text)), turns (say_end_ms, first_agent_audio_ms, voice_to_voice_ms: the first agent
speech start after each say_end), agent_audio (heard_s, active_s, rms_dbfs of the active windows),
frames_received, frames_sent, disconnect_reason. say_*, agent_speech_* and turns are computed
from the WAV as written, so they agree with it exactly.

Exit codes: 0 every step passed; 1 a step failed or the call could not be set up; 2 --timeout
expired; 130 interrupted (SIGINT/SIGTERM). The report (and the WAV, when anything was recorded) is
written in every case. Logs go to stderr only.
"""

import argparse
import asyncio
import json
import logging
import math
import os
import signal
import sys
import threading
import time
import warnings
import wave

import numpy as np
from livekit import api, rtc

log = logging.getLogger("caller")

FRAME_MS = 10
WINDOW_MS = 20
EXIT_OK, EXIT_FAILED, EXIT_TIMEOUT, EXIT_INTERRUPTED = 0, 1, 2, 130
STEP_KINDS = (
    "say",
    "wait_agent_joined",
    "pause_ms",
    "wait_agent_speech",
    "wait_agent_silence",
    "barge_in",
    "leave",
    "wait_disconnect",
)


class ScriptError(Exception):
    """The script or one of its WAV files is unusable."""


class StepFailed(Exception):
    """A step did not complete (it timed out, or the call could not do it)."""


# ---------------------------------------------------------------- audio helpers


def load_wav(path, rate):
    """A WAV file (PCM 8/16/24/32-bit, any channels and rate) as mono int16 at `rate`."""
    try:
        with wave.open(path, "rb") as w:
            channels, width, src_rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (OSError, EOFError, wave.Error) as e:
        raise ScriptError(f"{path}: {e}") from e
    if width == 1:
        x = (np.frombuffer(raw, np.uint8).astype(np.float64) - 128.0) * 256.0
    elif width == 2:
        x = np.frombuffer(raw, "<i2").astype(np.float64)
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = np.where(v >= 1 << 23, v - (1 << 24), v).astype(np.float64) / 256.0
    elif width == 4:
        x = np.frombuffer(raw, "<i4").astype(np.float64) / 65536.0
    else:
        raise ScriptError(f"{path}: unsupported sample width {width}")
    x = x[: len(x) - len(x) % channels].reshape(-1, channels).mean(axis=1)
    if src_rate != rate and len(x) > 0:
        n_out = int(round(len(x) * rate / src_rate))
        x = np.interp(np.arange(n_out) * (src_rate / rate), np.arange(len(x)), x)
    if len(x) == 0:
        raise ScriptError(f"{path}: no samples")
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def rms_dbfs(samples):
    """RMS level of int16 samples in dBFS (None for digital silence or no samples)."""
    if len(samples) == 0:
        return None
    rms = math.sqrt(float(np.mean(samples.astype(np.float64) ** 2)))
    return round(20 * math.log10(rms / 32768.0), 2) if rms > 0 else None


def window_energy(x, rate):
    """Mean square per non-overlapping 20 ms window (the last partial window dropped)."""
    win = rate * WINDOW_MS // 1000
    n = len(x) // win
    return (x[: n * win].astype(np.float64) ** 2).reshape(n, win).mean(axis=1)


def speech_segments(x, rate, threshold_dbfs, hangover_ms):
    """[(start_s, end_s)] where 20 ms windows are active, merged across gaps < hangover."""
    energy = window_energy(x, rate)
    limit = (32768.0 * 10 ** (threshold_dbfs / 20)) ** 2
    segments = []
    win_s = WINDOW_MS / 1000
    for i in np.flatnonzero(energy > limit):
        start, end = i * win_s, (i + 1) * win_s
        if segments and start - segments[-1][1] < hangover_ms / 1000:
            segments[-1][1] = end
        else:
            segments.append([start, end])
    return [(s, e) for s, e in segments]


class Stream:
    """The frames of one continuous stream, stamped with the clock at hand-over (see module doc)."""

    def __init__(self, name, lag_s=0.0):
        self.name = name
        self.lag_s = lag_s
        self.times = []  # seconds on the timeline at hand-over
        self.offsets = []  # sample offset of each frame in the stream
        self.frames = []  # int16 samples, or None for digital silence
        self.total = 0

    def add(self, t, n, samples):
        self.times.append(t)
        self.offsets.append(self.total)
        self.frames.append(samples)
        self.total += n
        return len(self.times) - 1

    def starts(self, rate):
        """Each frame's start on the timeline, in seconds."""
        if not self.times:
            return np.zeros(0)
        pos = np.asarray(self.offsets, dtype=np.float64) / rate
        delay = np.asarray(self.times) - pos
        later_min = np.minimum.accumulate(delay[::-1])[::-1]
        return np.maximum(pos + later_min + self.lag_s, 0.0)


def render(streams, rate):
    """Mix streams into one int16 channel on the timeline."""
    placed = []
    end = 0
    for s in streams:
        for start, frame in zip(s.starts(rate), s.frames):
            if frame is None:
                continue
            i = int(round(start * rate))
            placed.append((i, frame))
            end = max(end, i + len(frame))
    out = np.zeros(end, dtype=np.int32)
    for i, frame in placed:
        out[i : i + len(frame)] += frame
    return np.clip(out, -32768, 32767).astype(np.int16)


# ---------------------------------------------------------------- the caller


class Utterance:
    def __init__(self, file, samples, barge_in=False):
        self.file = file
        self.samples = samples
        self.barge_in = barge_in
        self.first_frame = None  # index in the sent stream
        self.last_frame = None
        self.last_len = 0
        self.done = asyncio.get_running_loop().create_future()


class Caller:
    def __init__(self, args, steps):
        self.args = args
        self.steps = steps  # [(kind, value, original)] with WAVs loaded
        self.rate = args.rate
        self.frame_len = self.rate * FRAME_MS // 1000
        self.t0 = None
        self.room = rtc.Room()
        self.source = None
        self.sent = Stream("mic", lag_s=args.send_queue_ms / 1000)
        self.utterances = []
        self.queue = []  # utterances waiting for the sender
        self.sender_task = None
        self.readers = {}  # track sid -> (task, AudioStream), subscribed now
        self.ended_readers = []  # the same, unsubscribed since
        self.heard = []  # Streams of the listened participant(s)
        self.events = []
        self.errors = []
        self.step_results = []
        self.listened = None  # identity whose audio is recorded
        self.listened_ever = []
        self.agents_present = set()
        self.agent_ever_joined = False
        self.room_disconnected = False
        self.reconnecting_seen = False
        self.disconnect_reason = None
        self.left = False
        self.participants = {}
        self.dispatch_id = None
        self.frames_received = 0
        # live level of the listened audio, on the hand-over clock
        self.prev_energy = 0.0
        self.last_active = None
        self.burst_start = None
        self.limit = (32768.0 * 10 ** (args.threshold_dbfs / 20)) ** 2
        self.hangover_s = args.hangover_ms / 1000

    # -- clock and events

    def now(self):
        return time.monotonic() - self.t0 if self.t0 is not None else 0.0

    def event(self, kind, **fields):
        e = {"t_ms": round(self.now() * 1000, 1), "kind": kind, **fields}
        self.events.append(e)
        log.info("event %s", json.dumps(e))

    def candidate(self, participant):
        agent = participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
        return self.args.listen_any or agent

    # -- room callbacks

    def on_participant_connected(self, p):
        kind = rtc.ParticipantKind.Name(p.kind)
        self.participants[p.identity] = kind
        if self.candidate(p):
            self.agents_present.add(p.identity)
            self.agent_ever_joined = True
            self.event("agent_joined", identity=p.identity, participant_kind=kind)

    def on_participant_disconnected(self, p):
        if p.identity in self.agents_present:
            self.agents_present.discard(p.identity)
            self.event("agent_left", identity=p.identity, reason=self.reason_name(p))
        if p.identity == self.listened:
            self.listened = None
            self.pick_listened(exclude=p.identity)

    @staticmethod
    def reason_name(p):
        reason = getattr(p, "disconnect_reason", None)
        try:
            return rtc.DisconnectReason.Name(reason) if reason is not None else None
        except ValueError:
            return str(reason)

    def on_track_subscribed(self, track, publication, participant):
        if track.kind != rtc.TrackKind.KIND_AUDIO or not self.candidate(participant):
            return
        if self.listened is None:
            self.listened = participant.identity
            if participant.identity not in self.listened_ever:
                self.listened_ever.append(participant.identity)
        if participant.identity != self.listened or publication.sid in self.readers:
            return
        self.event("agent_track_subscribed", identity=participant.identity, track=publication.sid)
        stream = Stream(f"{participant.identity}/{publication.sid}")
        self.heard.append(stream)
        audio = rtc.AudioStream.from_track(track=track, sample_rate=self.rate, num_channels=1)
        task = asyncio.create_task(self.read(audio, stream))
        self.readers[publication.sid] = (task, audio)

    def on_track_unsubscribed(self, track, publication, participant):
        reader = self.readers.pop(publication.sid, None)
        if reader is not None:
            self.event(
                "agent_track_unsubscribed", identity=participant.identity, track=publication.sid
            )
            self.ended_readers.append(reader)

    def pick_listened(self, exclude):
        """After the listened participant left: the next candidate with a subscribed audio track."""
        for p in self.room.remote_participants.values():
            if p.identity == exclude or not self.candidate(p):
                continue
            for pub in p.track_publications.values():
                audio = pub.kind == rtc.TrackKind.KIND_AUDIO
                if pub.track is not None and audio and pub.subscribed:
                    self.on_track_subscribed(pub.track, pub, p)
                    if self.listened is not None:
                        return

    def on_transcription(self, segments, participant, publication):
        self.event(
            "transcription_received",
            identity=participant.identity if participant is not None else None,
            track=publication.sid if publication is not None else None,
            segments=[{"id": s.id, "text": s.text, "final": s.final} for s in segments],
        )

    def on_data(self, packet):
        self.event(
            "data_received",
            identity=packet.participant.identity if packet.participant is not None else None,
            topic=packet.topic,
            payload=packet.data.decode("utf-8", errors="replace"),
        )

    def on_reconnecting(self):
        self.reconnecting_seen = True
        self.event("reconnecting")

    def on_disconnected(self, reason):
        self.room_disconnected = True
        try:
            name = rtc.DisconnectReason.Name(reason)
        except ValueError:
            name = str(reason)
        if self.disconnect_reason is None:
            self.disconnect_reason = name
        self.event("disconnected", reason=name)

    async def read(self, audio, stream):
        try:
            async for ev in audio:
                frame = ev.frame
                t = self.now()
                x = np.frombuffer(frame.data, dtype=np.int16).copy()
                stream.add(t, len(x), x)
                self.frames_received += 1
                energy = float(np.mean(x.astype(np.float64) ** 2)) if len(x) else 0.0
                if (energy + self.prev_energy) / 2 > self.limit:
                    if not self.speaking(t):
                        self.burst_start = t
                    self.last_active = t
                self.prev_energy = energy
            log.info("audio stream %s ended", stream.name)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the stream dies with the room; that is not the test's failure
            log.warning("audio stream %s ended: %s", stream.name, e)

    def speaking(self, t):
        return self.last_active is not None and t - self.last_active <= self.hangover_s

    # -- sending

    async def send(self):
        silence = np.zeros(self.frame_len, dtype=np.int16)
        current, pos = None, 0
        try:
            while True:
                if current is None and self.queue:
                    current, pos = self.queue.pop(0), 0
                if current is not None:
                    chunk = current.samples[pos : pos + self.frame_len]
                    n = len(chunk)
                    if n < self.frame_len:
                        pad = np.zeros(self.frame_len - n, dtype=np.int16)
                        chunk = np.concatenate([chunk, pad])
                    pos += n
                else:
                    chunk, n = silence, 0
                frame = rtc.AudioFrame(chunk.tobytes(), self.rate, 1, self.frame_len)
                await self.source.capture_frame(frame)
                index = self.sent.add(self.now(), self.frame_len, chunk if n else None)
                if current is not None:
                    if current.first_frame is None:
                        current.first_frame = index
                    if pos >= len(current.samples):
                        current.last_frame, current.last_len = index, n
                        current.done.set_result(None)
                        current = None
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.error("sending stopped: %s", e)
            for u in ([current] if current else []) + self.queue:
                if not u.done.done():
                    u.done.set_exception(StepFailed(f"sending stopped: {e}"))
            self.queue.clear()

    async def say(self, file, samples, barge_in=False):
        if self.left or self.room_disconnected:
            raise StepFailed("cannot speak: disconnected")
        if self.sender_task is None or self.sender_task.done():
            raise StepFailed("cannot speak: the microphone track is gone")
        u = Utterance(file, samples, barge_in)
        self.utterances.append(u)
        self.queue.append(u)
        await u.done

    # -- script steps

    async def wait_until(self, cond, timeout_ms, what):
        deadline = time.monotonic() + timeout_ms / 1000
        while not cond():
            if time.monotonic() >= deadline:
                self.event("step_timeout", step=what, timeout_ms=timeout_ms)
                raise StepFailed(f"{what}: timed out after {timeout_ms} ms")
            await asyncio.sleep(0.005)

    async def wait_speech(self, timeout_ms, what):
        await self.wait_until(lambda: self.speaking(self.now()), timeout_ms, what)
        return self.burst_start

    async def run_step(self, kind, value):
        if kind == "say":
            await self.say(value["file"], value["samples"])
        elif kind == "pause_ms":
            await asyncio.sleep(value / 1000)
        elif kind == "wait_agent_joined":
            await self.wait_until(lambda: bool(self.readers), value.get("timeout_ms", 20000), kind)
        elif kind == "wait_agent_speech":
            await self.wait_speech(value.get("timeout_ms", 10000), kind)
        elif kind == "wait_agent_silence":
            quiet_s = value.get("quiet_ms", 500) / 1000
            await self.wait_until(
                lambda: self.now() - (self.last_active or 0.0) >= quiet_s,
                value.get("timeout_ms", 30000),
                kind,
            )
        elif kind == "barge_in":
            start = await self.wait_speech(value.get("timeout_ms", 10000), kind)
            # Start capturing early by the source queue so the speech is on the wire after_ms in.
            at = start + (value.get("after_ms", 0) - self.args.send_queue_ms) / 1000
            if at > self.now():
                await asyncio.sleep(at - self.now())
            await self.say(value["file"], value["samples"], barge_in=True)
        elif kind == "leave":
            await self.leave()
        elif kind == "wait_disconnect":
            await self.wait_until(
                lambda: self.room_disconnected
                or self.left
                or (value.get("or_reconnecting", False) and self.reconnecting_seen)
                or (self.agent_ever_joined and not self.agents_present),
                value.get("timeout_ms", 10000),
                kind,
            )

    async def drain(self):
        """Lets the audio still in the source's queue go out before hanging up."""
        if self.sender_task is not None and not self.sender_task.done():
            await asyncio.sleep(self.args.send_queue_ms / 1000 + 0.03)
            self.sender_task.cancel()

    async def leave(self):
        if self.left:
            return
        self.left = True
        await self.drain()
        self.event("caller_left")
        try:
            await asyncio.wait_for(self.room.disconnect(), 5)
        except Exception as e:
            log.warning("disconnect: %s", e)

    async def connect(self):
        a = self.args
        token = (
            api.AccessToken(a.api_key, a.api_secret)
            .with_identity(a.identity)
            .with_name(a.identity)
            .with_grants(api.VideoGrants(room_join=True, room=a.room))
            .to_jwt()
        )
        if a.token_file:
            with open(a.token_file) as f:
                token = f.read().strip()
        self.room.on("participant_connected", self.on_participant_connected)
        self.room.on("participant_disconnected", self.on_participant_disconnected)
        self.room.on("track_subscribed", self.on_track_subscribed)
        self.room.on("track_unsubscribed", self.on_track_unsubscribed)
        self.room.on("disconnected", self.on_disconnected)
        self.room.on("reconnecting", self.on_reconnecting)
        self.room.on("reconnected", lambda: self.event("reconnected"))
        self.room.on("transcription_received", self.on_transcription)
        self.room.on("data_received", self.on_data)
        log.info("connecting to %s room %s as %s", a.url, a.room, a.identity)
        await self.room.connect(a.url, token, rtc.RoomOptions(auto_subscribe=True))
        self.t0 = time.monotonic()
        self.joined_unix_ms = round(time.time() * 1000)
        self.event("joined", identity=a.identity)
        for p in self.room.remote_participants.values():
            self.on_participant_connected(p)
        if a.dispatch:
            http = a.url.replace("ws://", "http://", 1).replace("wss://", "https://", 1)
            async with api.LiveKitAPI(http, a.api_key, a.api_secret) as lk:
                d = await lk.agent_dispatch.create_dispatch(
                    api.CreateAgentDispatchRequest(
                        agent_name=a.dispatch, room=a.room, metadata=a.dispatch_metadata
                    )
                )
            self.dispatch_id = d.id
            self.event("dispatch_created", agent_name=a.dispatch, dispatch_id=d.id)
        self.source = rtc.AudioSource(self.rate, 1, queue_size_ms=a.send_queue_ms)
        track = rtc.LocalAudioTrack.create_audio_track("microphone", self.source)
        options = rtc.TrackPublishOptions()
        options.source = rtc.TrackSource.SOURCE_MICROPHONE
        if a.no_red:
            options.red = False
        if a.no_dtx:
            options.dtx = False
        await self.room.local_participant.publish_track(track, options)
        self.event("published")
        self.sender_task = asyncio.create_task(self.send())

    async def run_script(self):
        """Connect, then run the steps; records each step's result."""
        try:
            await self.connect()
        except Exception as e:
            raise StepFailed(f"connect: {type(e).__name__}: {e}") from e
        for index, (kind, value, original) in enumerate(self.steps):
            result = {"index": index, "step": original, "start_ms": round(self.now() * 1000, 1)}
            self.step_results.append(result)
            log.info("step %d: %s", index, json.dumps(original))
            try:
                await self.run_step(kind, value)
                result["ok"] = True
            except StepFailed as e:
                result["ok"] = False
                result["error"] = str(e)
                self.errors.append(f"step {index} ({kind}): {e}")
                if not self.args.keep_going:
                    break
            finally:
                result["end_ms"] = round(self.now() * 1000, 1)

    async def shutdown(self):
        if not self.left and not self.room_disconnected:
            await self.drain()
        if self.sender_task is not None:
            self.sender_task.cancel()
        if not self.left and self.t0 is not None:
            try:
                await asyncio.wait_for(self.room.disconnect(), 5)
            except Exception as e:
                log.warning("disconnect: %s", e)
        readers = list(self.readers.values()) + self.ended_readers
        for task, audio in readers:
            if not task.done():
                task.cancel()
                try:
                    await asyncio.wait_for(audio.aclose(), 2)
                except Exception:
                    pass
        tasks = [t for t, _ in readers] + [self.sender_task]
        await asyncio.gather(*[t for t in tasks if t is not None], return_exceptions=True)

    # -- outputs

    def outputs(self, exit_code):
        """Writes the WAV and returns the report."""
        rate = self.rate
        sent = render([self.sent], rate)
        heard = render(self.heard, rate)
        n = max(len(sent), len(heard), int(self.now() * rate))
        stereo = np.zeros((n, 2), dtype=np.int16)
        stereo[: len(sent), 0] = sent
        stereo[: len(heard), 1] = heard
        with wave.open(self.args.record, "wb") as w:
            w.setnchannels(2)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(stereo.tobytes())

        events = list(self.events)
        starts = self.sent.starts(rate)
        says = []
        for u in self.utterances:
            if u.first_frame is None:
                continue
            start = starts[u.first_frame]
            extra = {"file": u.file, "barge_in": True} if u.barge_in else {"file": u.file}
            events.append({"t_ms": round(start * 1000, 1), "kind": "say_start", **extra})
            if u.last_frame is not None:
                end = starts[u.last_frame] + u.last_len / rate
                events.append({"t_ms": round(end * 1000, 1), "kind": "say_end", **extra})
                says.append(end * 1000)
        a = self.args
        speech = speech_segments(stereo[:, 1], rate, a.threshold_dbfs, a.hangover_ms)
        for s, e in speech:
            span = stereo[int(s * rate) : int(e * rate), 1]
            events.append({"t_ms": round(s * 1000, 1), "kind": "agent_speech_start"})
            events.append(
                {"t_ms": round(e * 1000, 1), "kind": "agent_speech_end", "rms_dbfs": rms_dbfs(span)}
            )
        events.sort(key=lambda e: e["t_ms"])

        turns = []
        for say_end in says:
            first = next((s * 1000 for s, _ in speech if s * 1000 >= say_end), None)
            turns.append(
                {
                    "say_end_ms": round(say_end, 1),
                    "first_agent_audio_ms": round(first, 1) if first is not None else None,
                    "voice_to_voice_ms": round(first - say_end, 1) if first is not None else None,
                }
            )

        energy = window_energy(stereo[:, 1], rate)
        active = energy > self.limit
        active_rms = math.sqrt(float(energy[active].mean())) if active.any() else 0.0
        heard_samples = sum(s.total for s in self.heard)
        return {
            "ok": exit_code == EXIT_OK,
            "exit_code": exit_code,
            "errors": self.errors,
            "room": self.args.room,
            "identity": self.args.identity,
            "agent_identity": self.listened_ever[0] if self.listened_ever else None,
            "listened": self.listened_ever,
            "participants": self.participants,
            "dispatch_id": self.dispatch_id,
            "joined_at_ms": 0,
            "joined_at_unix_ms": getattr(self, "joined_unix_ms", None),
            "rate": rate,
            "send_queue_ms": self.args.send_queue_ms,
            "threshold_dbfs": self.args.threshold_dbfs,
            "record": os.path.abspath(self.args.record),
            "steps": self.step_results,
            "events": events,
            "turns": turns,
            "agent_audio": {
                "heard_s": round(heard_samples / rate, 3),
                "active_s": round(int(active.sum()) * WINDOW_MS / 1000, 3),
                "rms_dbfs": (
                    round(20 * math.log10(active_rms / 32768), 2) if active_rms > 0 else None
                ),
            },
            "frames_received": self.frames_received,
            "frames_sent": len(self.sent.times),
            "disconnect_reason": self.disconnect_reason,
        }


# ---------------------------------------------------------------- CLI


def parse_script(path, rate):
    """[(kind, value, original)]; say files loaded and resampled up front."""
    try:
        with open(path) as f:
            raw = json.load(f)
    except (OSError, ValueError) as e:
        raise ScriptError(f"{path}: {e}") from e
    if not isinstance(raw, list):
        raise ScriptError(f"{path}: the script must be a JSON list of steps")
    base = os.path.dirname(os.path.abspath(path))

    def audio(file):
        if not isinstance(file, str):
            raise ScriptError(f"say: expected a path, got {file!r}")
        full = file if os.path.isabs(file) else os.path.join(base, file)
        return {"file": file, "samples": load_wav(full, rate)}

    steps = []
    for i, step in enumerate(raw):
        if not isinstance(step, dict) or len(step) != 1 or next(iter(step)) not in STEP_KINDS:
            raise ScriptError(f"step {i}: expected one of {', '.join(STEP_KINDS)}, got {step!r}")
        kind, value = next(iter(step.items()))
        if kind == "say":
            value = audio(value)
        elif kind == "pause_ms":
            if not isinstance(value, (int, float)) or value < 0:
                raise ScriptError(f"step {i}: pause_ms must be a non-negative number")
        elif kind == "leave":
            pass
        else:
            if not isinstance(value, dict):
                raise ScriptError(f"step {i}: {kind} takes an object")
            allowed = {
                "wait_agent_joined": {"timeout_ms"},
                "wait_agent_speech": {"timeout_ms"},
                "wait_agent_silence": {"quiet_ms", "timeout_ms"},
                "barge_in": {"after_ms", "say", "timeout_ms"},
                "wait_disconnect": {"timeout_ms", "or_reconnecting"},
            }[kind]
            unknown = set(value) - allowed
            if unknown:
                raise ScriptError(f"step {i}: {kind}: unknown keys {sorted(unknown)}")
            if kind == "barge_in":
                if "say" not in value:
                    raise ScriptError(f"step {i}: barge_in needs say")
                value = {**value, **audio(value["say"])}
        steps.append((kind, value, step))
    return steps


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="ws://host:port of the LiveKit server")
    p.add_argument("--api-key", required=True)
    p.add_argument("--api-secret", required=True)
    p.add_argument("--room", required=True)
    p.add_argument("--identity", default="caller-1")
    p.add_argument("--dispatch", metavar="AGENT_NAME", help="create an explicit agent dispatch")
    p.add_argument(
        "--token-file",
        help="join with the JWT in this file (e.g. from POST /playground/token) instead of one "
        "signed here; --identity must match it",
    )
    p.add_argument("--dispatch-metadata", default="", help="the dispatch's metadata")
    p.add_argument("--script", required=True, help="JSON list of steps")
    p.add_argument("--record", required=True, help="stereo WAV: 0 = sent, 1 = heard")
    p.add_argument("--report", required=True, help="JSON report")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds for the whole call")
    p.add_argument("--rate", type=int, default=48000, help="sample rate of the track and the WAV")
    p.add_argument(
        "--listen-any",
        action="store_true",
        help="record the first remote participant with audio, not only agents",
    )
    p.add_argument("--threshold-dbfs", type=float, default=-45.0, help="agent audio activity level")
    p.add_argument("--hangover-ms", type=float, default=300.0, help="gap that ends agent speech")
    p.add_argument(
        "--send-queue-ms",
        type=int,
        default=100,
        help="the SDK audio source's queue (multiple of 10): absorbs event-loop stalls",
    )
    p.add_argument(
        "--no-red", action="store_true", help="publish plain Opus, not RED (the SDK's default)"
    )
    p.add_argument("--no-dtx", action="store_true", help="no Opus DTX: packets through silence too")
    p.add_argument("--keep-going", action="store_true", help="run the next step after a failure")
    args = p.parse_args(argv)
    if args.rate % 100 != 0:
        p.error("--rate must be a multiple of 100 (10 ms frames)")
    if args.send_queue_ms <= 0 or args.send_queue_ms % 10 != 0:
        p.error("--send-queue-ms must be a positive multiple of 10")
    return args


def write_json(path, report):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


async def amain(args, steps, written):
    caller = Caller(args, steps)
    loop = asyncio.get_running_loop()
    script = asyncio.create_task(caller.run_script())
    interrupted = []

    def interrupt(name):
        log.warning("%s: stopping", name)
        interrupted.append(name)
        script.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt, sig.name)

    exit_code = EXIT_OK
    done, _ = await asyncio.wait({script}, timeout=args.timeout)
    if not done:
        script.cancel()
        running = caller.step_results[-1] if caller.step_results else None
        where = f"step {running['index']} {json.dumps(running['step'])}" if running else "connect"
        caller.errors.append(f"timeout: --timeout {args.timeout:g} s expired during {where}")
        caller.event("timeout", during=where)
        exit_code = EXIT_TIMEOUT
    await asyncio.gather(script, return_exceptions=True)
    if interrupted:
        caller.errors.append(f"interrupted by {interrupted[0]}")
        exit_code = EXIT_INTERRUPTED
    elif script.done() and not script.cancelled() and script.exception() is not None:
        e = script.exception()
        caller.errors.append(str(e) if isinstance(e, StepFailed) else f"{type(e).__name__}: {e}")
    if exit_code == EXIT_OK and caller.errors:
        exit_code = EXIT_FAILED
    await caller.shutdown()
    report = caller.outputs(exit_code)
    with written:
        write_json(args.report, report)
        written.done = True
    log.info("report %s: ok=%s errors=%s", args.report, report["ok"], report["errors"])
    return exit_code


class Written:
    """Guards the report file between the main thread and the watchdog."""

    def __init__(self):
        self.lock = threading.Lock()
        self.done = False

    def __enter__(self):
        self.lock.acquire()

    def __exit__(self, *exc):
        self.lock.release()


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format=f"%(asctime)s caller[{args.identity}] %(levelname)s %(message)s",
    )
    logging.getLogger("livekit").setLevel(logging.WARNING)
    # devkey/secret is a short HMAC key, on purpose: the dev server's keys.
    warnings.filterwarnings("ignore", message=".*HMAC key.*")

    written = Written()

    def fail_report(code, error):
        with written:
            if not written.done:
                write_json(args.report, {"ok": False, "exit_code": code, "errors": [error]})
                written.done = True

    try:
        steps = parse_script(args.script, args.rate)
    except ScriptError as e:
        log.error("script: %s", e)
        fail_report(EXIT_FAILED, f"script: {e}")
        return EXIT_FAILED

    # Last resort if shutting down hangs: a report saying so, and out.
    def watchdog():
        log.error("still running %g s past --timeout; exiting", 30.0)
        fail_report(EXIT_TIMEOUT, f"timeout: the caller hung past --timeout {args.timeout:g} s")
        os._exit(EXIT_TIMEOUT)

    timer = threading.Timer(args.timeout + 30.0, watchdog)
    timer.daemon = True
    timer.start()
    try:
        return asyncio.run(amain(args, steps, written))
    except Exception as e:
        log.exception("caller crashed")
        fail_report(EXIT_FAILED, f"caller crashed: {type(e).__name__}: {e}")
        return EXIT_FAILED
    finally:
        timer.cancel()


def exit_now(code):
    """Leaves without interpreter finalization.

    By now the report is on disk and the room left. At finalization the SDK's atexit hook disposes
    livekit-ffi while its runtime threads may still call back into Python, and the native runtime
    sometimes aborts there ("panic in a function that cannot unwind"): a finished, passing call
    then looks like a crashed caller. A crash before the report is written still shows.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
