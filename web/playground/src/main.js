// Frontdesk playground: one call to the agent over LiveKit, with levels, transcript and turn latency.
// window.playground mirrors the page state so tests (and curious developers) can read it.
import { DisconnectReason, Room, RoomEvent, Track } from 'livekit-client';

const TURN_TOPIC = 'frontdesk.turn';
// How long the page waits for the dispatched agent before saying what may be wrong.
const AGENT_HINT_MS = 20000;
const $ = (id) => document.getElementById(id);
const ui = {
  call: $('call'), hangup: $('hangup'), status: $('status'),
  mic: $('mic-level'), agent: $('agent-level'),
  transcript: $('transcript'), turns: document.querySelector('#turns tbody'),
};

const state = {
  state: 'idle', error: null, room: null, identity: null,
  agentPeak: 0, micPeak: 0, agentLevel: 0, micLevel: 0,
  transcripts: [], turns: [],
};
window.playground = state;

let room = null;
let audioCtx = null;
let meterTimer = null;
let agentHint = null;
// Set while the caller hangs up, so the disconnect that follows is not reported as a loss.
let hangingUp = false;
const meters = { mic: null, agent: null };
const audioEls = [];
// A failed call keeps its error on screen instead of the "ended" that follows the disconnect.
let failed = false;

function setStatus(next, message, isError = false) {
  state.state = next;
  state.error = isError ? message : null;
  ui.status.textContent = message || next;
  ui.status.classList.toggle('error', isError);
  const busy = next === 'connecting' || next === 'waiting for the agent' || next === 'in call';
  ui.call.disabled = busy;
  ui.hangup.disabled = !busy;
}

function fail(message) {
  failed = true;
  setStatus('error', message, true);
}

function capitalized(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// A fresh room per call: the server dispatches the agent when the room is created.
function newRoomName() {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return `playground-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

async function fetchToken() {
  let res;
  try {
    res = await fetch('/playground/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ room: newRoomName() }),
    });
  } catch (err) {
    throw new Error(`Cannot reach the Frontdesk server: ${err.message}`);
  }
  let body = null;
  try {
    body = await res.json();
  } catch (_) {
    body = null;
  }
  if (!res.ok) {
    // The server's sentence says what is wrong (and when to retry); a bare status only if it has none.
    if (body && typeof body.error === 'string' && body.error) throw new Error(capitalized(body.error));
    const wait = res.headers.get('retry-after');
    throw new Error(`The token request failed (HTTP ${res.status})${wait ? `; try again in ${wait} s` : ''}`);
  }
  if (!body || typeof body.url !== 'string' || typeof body.token !== 'string') {
    throw new Error('The token endpoint returned an unexpected answer.');
  }
  return body;
}

// Peak of the current analyser window, 0..1.
function peakOf(analyser, buf) {
  analyser.getFloatTimeDomainData(buf);
  let peak = 0;
  for (let i = 0; i < buf.length; i++) peak = Math.max(peak, Math.abs(buf[i]));
  return Math.min(1, peak);
}

function attachMeter(side, mediaStreamTrack) {
  if (!audioCtx) return;
  // A republished track (after a reconnect) replaces the old one's meter.
  if (meters[side]) meters[side].source.disconnect();
  const source = audioCtx.createMediaStreamSource(new MediaStream([mediaStreamTrack]));
  const analyser = audioCtx.createAnalyser();
  analyser.fftSize = 1024;
  source.connect(analyser);
  meters[side] = { source, analyser, buf: new Float32Array(analyser.fftSize) };
}

// A timer rather than requestAnimationFrame: it keeps running in a hidden or headless tab.
function tickMeters() {
  for (const side of ['mic', 'agent']) {
    const m = meters[side];
    const level = m ? peakOf(m.analyser, m.buf) : 0;
    ui[side].value = level;
    state[`${side}Level`] = level;
    state[`${side}Peak`] = Math.max(state[`${side}Peak`], level);
  }
}

function upsertTranscript(segment, side) {
  let entry = state.transcripts.find((t) => t.id === segment.id);
  if (!entry) {
    entry = { id: segment.id, side, text: '', final: false };
    state.transcripts.push(entry);
    const li = document.createElement('li');
    li.dataset.id = segment.id;
    li.dataset.side = side;
    ui.transcript.appendChild(li);
  }
  entry.text = segment.text;
  entry.final = Boolean(segment.final);
  const li = ui.transcript.querySelector(`li[data-id="${CSS.escape(segment.id)}"]`);
  li.textContent = segment.text;
  li.dataset.final = String(entry.final);
}

function ms(value) {
  return typeof value === 'number' && Number.isFinite(value) ? String(Math.round(value)) : '–';
}

function addTurn(turn) {
  state.turns.push(turn);
  const tr = document.createElement('tr');
  const cells = [turn.turn, ms(turn.latency_ms), ms(turn.llm_ttft_ms), ms(turn.tts_ttfb_ms), turn.interrupted ? 'yes' : 'no'];
  for (const value of cells) {
    const td = document.createElement('td');
    td.textContent = String(value ?? '–');
    tr.appendChild(td);
  }
  ui.turns.appendChild(tr);
}

function onData(payload, _participant, _kind, topic) {
  if (topic !== TURN_TOPIC) return;
  try {
    const turn = JSON.parse(new TextDecoder().decode(payload));
    if (turn && typeof turn === 'object') addTurn(turn);
  } catch (err) {
    console.warn('ignoring a malformed turn packet', err);
  }
}

function onTrackSubscribed(track) {
  if (track.kind !== Track.Kind.Audio) return;
  // Chrome only feeds a remote WebRTC track into WebAudio while a media element plays it.
  const el = track.attach();
  el.dataset.agentAudio = 'true';
  document.body.appendChild(el);
  audioEls.push(el);
  attachMeter('agent', track.mediaStreamTrack);
  setStatus('in call', 'in call');
}

// Why the room closed, in words, for a disconnect the caller did not ask for.
function endedBecause(reason) {
  switch (reason) {
    case DisconnectReason.SERVER_SHUTDOWN:
      return 'ended: the LiveKit server shut down';
    case DisconnectReason.ROOM_DELETED:
    case DisconnectReason.ROOM_CLOSED:
      return 'ended: the room was closed';
    case DisconnectReason.PARTICIPANT_REMOVED:
      return 'ended: you were removed from the room';
    case DisconnectReason.DUPLICATE_IDENTITY:
      return 'ended: someone else joined with the same identity';
    default:
      return 'ended: the connection to the LiveKit server was lost';
  }
}

function bindRoom(r) {
  r.on(RoomEvent.TrackSubscribed, onTrackSubscribed)
    .on(RoomEvent.ParticipantConnected, () => {
      clearTimeout(agentHint);
      if (state.state === 'waiting for the agent') setStatus('waiting for the agent', 'the agent joined, waiting for its audio');
    })
    .on(RoomEvent.ParticipantDisconnected, () => {
      // The room holds the caller and the agent: the agent leaving ends the call.
      if (r.remoteParticipants.size === 0 && state.state === 'in call') {
        hangup('ended: the agent hung up').catch(() => {});
      }
    })
    .on(RoomEvent.TranscriptionReceived, (segments, participant) => {
      const side = participant && participant === r.localParticipant ? 'caller' : 'agent';
      for (const s of segments) upsertTranscript(s, side);
    })
    .on(RoomEvent.DataReceived, onData)
    .on(RoomEvent.Disconnected, (reason) => {
      cleanup();
      if (failed || hangingUp) return;
      setStatus('ended', reason === DisconnectReason.CLIENT_INITIATED ? 'ended' : endedBecause(reason));
    });
}

function cleanup() {
  clearTimeout(agentHint);
  clearInterval(meterTimer);
  meterTimer = null;
  for (const m of Object.values(meters)) m && m.source.disconnect();
  meters.mic = null;
  meters.agent = null;
  while (audioEls.length) audioEls.pop().remove();
  ui.mic.value = 0;
  ui.agent.value = 0;
  room = null;
}

async function call() {
  failed = false;
  hangingUp = false;
  state.agentPeak = 0;
  state.micPeak = 0;
  state.transcripts = [];
  state.turns = [];
  ui.transcript.replaceChildren();
  ui.turns.replaceChildren();
  setStatus('connecting', 'connecting');
  // Created inside the click so the browser lets it play.
  audioCtx = audioCtx || new AudioContext();
  await audioCtx.resume().catch(() => {});

  let grant;
  try {
    grant = await fetchToken();
  } catch (err) {
    fail(err.message);
    return;
  }
  state.room = grant.room;
  state.identity = grant.identity;

  room = new Room({ adaptiveStream: false, dynacast: false });
  bindRoom(room);
  try {
    await room.connect(grant.url, grant.token, { maxRetries: 1 });
  } catch (err) {
    fail(`Cannot reach the LiveKit server at ${grant.url}: ${err.message}`);
    const r = room;
    cleanup();
    await r.disconnect().catch(() => {});
    return;
  }
  meterTimer = setInterval(tickMeters, 50);
  if (state.state === 'connecting') {
    setStatus('waiting for the agent', 'waiting for the agent');
    agentHint = setTimeout(() => {
      if (state.state !== 'waiting for the agent' || room.remoteParticipants.size > 0) return;
      setStatus('waiting for the agent', `waiting for the agent: none has joined after ${AGENT_HINT_MS / 1000} s. Is the worker registered with this LiveKit server?`);
    }, AGENT_HINT_MS);
  }
  try {
    const pub = await room.localParticipant.setMicrophoneEnabled(true);
    if (pub && pub.track) attachMeter('mic', pub.track.mediaStreamTrack);
  } catch (err) {
    fail(`Cannot use the microphone: ${err.message}`);
    await hangup();
  }
}

async function hangup(message = 'ended') {
  const r = room;
  if (!r) return;
  hangingUp = true;
  await r.disconnect();
  cleanup();
  if (!failed) setStatus('ended', message);
}

ui.call.addEventListener('click', () => {
  call().catch((err) => fail(`Unexpected error: ${err.message}`));
});
ui.hangup.addEventListener('click', () => {
  hangup().catch((err) => fail(`Hang-up failed: ${err.message}`));
});
setStatus('idle', 'idle');
