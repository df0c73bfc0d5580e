// feed.js: follows the change feed (GET /v1/feed as Server-Sent Events) for
// the whole UI. EventSource cannot send an Authorization header, so the
// stream is read with fetch and parsed here. One stream serves every screen:
// screens subscribe to its events while they are shown.

import { authHeaders, Problem } from './api.js';

const maxRecent = 200; // events kept for the live feed screen
const maxPending = 1 << 20; // bytes of an unfinished SSE message kept

const listeners = new Set();
const stateListeners = new Set();
let controller = null;
let cursor = ''; // the id of the last SSE message: where a reconnect resumes
let state = { status: 'off' };

/** recent holds the last events seen, newest last. */
export const recent = [];

/** onEvent calls fn with every event from now on; it returns the unsubscribe function. */
export function onEvent(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** onState calls fn with the stream's state ({status: 'connecting'|'live'|'retrying'|'refused'|'off', problem?}) now and on every change. */
export function onState(fn) {
  stateListeners.add(fn);
  fn(state);
  return () => stateListeners.delete(fn);
}

function setState(s) {
  state = s;
  for (const fn of stateListeners) fn(s);
}

/** start opens the stream from the head of the log (after=now); stop closes it. */
export function start() {
  stop();
  cursor = '';
  const c = new AbortController();
  controller = c;
  run(c.signal);
}

export function stop() {
  if (controller) controller.abort();
  controller = null;
  recent.length = 0;
  setState({ status: 'off' });
}

async function run(signal) {
  let backoff = 1000;
  while (!signal.aborted) {
    setState({ status: cursor ? 'retrying' : 'connecting' });
    try {
      const headers = authHeaders({ Accept: 'text/event-stream' });
      let url = '/v1/feed?after=now';
      if (cursor) {
        headers['Last-Event-ID'] = cursor;
        url = '/v1/feed';
      }
      const res = await fetch(url, { headers, signal, cache: 'no-store' });
      if (!res.ok) {
        let p;
        try {
          p = await res.json();
        } catch {
          p = { title: res.statusText, detail: '', status: res.status };
        }
        const problem = new Problem({ status: res.status, ...p });
        if (res.status === 401 || res.status === 403) {
          // Retrying cannot help: the key is unknown or may not read the feed.
          setState({ status: 'refused', problem });
          return;
        }
        throw problem;
      }
      setState({ status: 'live' });
      backoff = 1000;
      await read(res.body, signal);
    } catch (e) {
      if (signal.aborted) return;
      setState({ status: 'retrying', problem: e instanceof Problem ? e : undefined });
    }
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(backoff * 2, 15000);
  }
}

// read parses the SSE stream: "field: value" lines, a blank line ends a
// message, lines starting with ":" are keep-alive comments.
async function read(body, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let data = [];
  let id = null;
  signal.addEventListener('abort', () => reader.cancel().catch(() => {}), { once: true });
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    if (buf.length > maxPending) throw new Error('feed message too large');
    let nl;
    while ((nl = buf.search(/\r\n|\n|\r/)) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + (buf[nl] === '\r' && buf[nl + 1] === '\n' ? 2 : 1));
      if (line === '') {
        if (id !== null) cursor = id;
        if (data.length) dispatch(data.join('\n'));
        data = [];
        id = null;
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let v = colon < 0 ? '' : line.slice(colon + 1);
      if (v.startsWith(' ')) v = v.slice(1);
      if (field === 'data') data.push(v);
      else if (field === 'id') id = v;
    }
  }
}

function dispatch(text) {
  let ev;
  try {
    ev = JSON.parse(text);
  } catch {
    return;
  }
  recent.push(ev);
  if (recent.length > maxRecent) recent.splice(0, recent.length - maxRecent);
  for (const fn of listeners) {
    try {
      fn(ev);
    } catch (e) {
      console.error(e);
    }
  }
}
