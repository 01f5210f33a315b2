// Unit tests of the SDK's logic with node's built-in runner (no dependencies):
// a fake window (fetch, localStorage, events) stands in for the browser. The
// real-browser behaviour is tested in tests/e2e/test_browser_sdk.py.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { create, VERSION } from "../../layers/core/insights/sdk/insights.mjs";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
// Wait for a condition (a loaded machine makes fixed sleeps flaky).
async function until(check, timeout = 5000) {
  const deadline = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out waiting for " + check);
    await sleep(5);
  }
}

// A clock the test moves by hand: Date.now and timers of the fake window.
function fakeClock(start = Date.UTC(2026, 10, 28, 12)) {
  let time = start;
  let ids = 0;
  const timers = new Map();
  const clock = {
    Date: { now: () => time },
    setTimeout: (fn, ms) => {
      timers.set(++ids, { at: time + Math.max(0, Number(ms) || 0), fn });
      return ids;
    },
    clearTimeout: (id) => timers.delete(id),
    now: () => time,
    // Moves time on by ms, running each timer when it falls due and letting the
    // fake fetches (promises) settle after each.
    async advance(ms) {
      const end = time + ms;
      for (;;) {
        await settle();
        const due = [...timers].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        time = due[1].at;
        due[1].fn();
      }
      time = end;
      await settle();
    },
  };
  return clock;
}
const settle = () => new Promise((resolve) => setImmediate(resolve)).then(() => new Promise((r) => setImmediate(r)));

// Tracking answers carry the account's session timeout (minutes; null: none).
function fakeWindow({ statuses = [], cookie = "", clock = null, timeout = 30, stored = new Map() } = {}) {
  const listeners = {};
  const docListeners = {};
  const win = {
    requests: [],
    beacons: [],
    cookie,
    console: { log() {}, warn() {}, error() {} },
    crypto: globalThis.crypto,
    navigator: { onLine: true },
    document: {
      cookie,
      visibilityState: "visible",
      addEventListener: (name, fn) => (docListeners[name] = docListeners[name] || []).push(fn),
    },
    localStorage: {
      getItem: (k) => (stored.has(k) ? stored.get(k) : null),
      setItem: (k, v) => stored.set(k, String(v)),
      removeItem: (k) => stored.delete(k),
      get length() { return stored.size; },
      key: (i) => [...stored.keys()][i] ?? null,
    },
    stored,
    addEventListener: (name, fn) => (listeners[name] = listeners[name] || []).push(fn),
    fire: (name, event = {}) => (listeners[name] || []).forEach((fn) => fn(event)),
    // The page goes to the background (or comes back), as a browser says so.
    setVisibility: (state) => {
      win.document.visibilityState = state;
      (docListeners.visibilitychange || []).forEach((fn) => fn());
    },
    // Pending retries must not keep the test process alive.
    setTimeout: clock ? clock.setTimeout : (fn, ms) => setTimeout(fn, ms).unref(),
    clearTimeout: clock ? clock.clearTimeout : (id) => clearTimeout(id),
    ...(clock ? { Date: clock.Date } : {}),
    fetch: async (url, init) => {
      win.requests.push({ url, keepalive: init.keepalive, body: init.body && JSON.parse(init.body) });
      const status = statuses.length ? statuses.shift() : 200;
      if (status === 0) throw new TypeError("Failed to fetch");
      const events = init.body ? JSON.parse(init.body).events : [];
      const headers = new Map(timeout === null ? [] : [["x-insights-session-timeout", String(timeout)]]);
      return {
        status,
        ok: status < 300,
        headers: { get: (name) => headers.get(name.toLowerCase()) ?? null },
        json: async () => ({ accepted: events.length, late: 0, rejected: [] }),
      };
    },
  };
  return win;
}

// What the SDK keeps of the user's last event (insights.js: remember()): a
// checksum of the uuid (FNV-1a), never the uuid.
const QUEUE = "insights:wk_test"; // SDKs 1.0-1.1: one queue for every tab
// Each page's own stored queue (insights.js: store()): {at, open, events}.
function records(win) {
  return [...win.stored.keys()].filter((k) => k.startsWith(QUEUE + "#")).map((k) => JSON.parse(win.stored.get(k)));
}
function storedTypes(win) {
  const found = records(win);
  assert.equal(found.length, 1, "one page, one stored queue");
  return found[0].events.map((e) => e.type);
}
const nothingStored = (win) => records(win).length === 0 && !win.stored.has(QUEUE);
const SESSION = "insights:wk_test:session";
function checksum(text) {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619) >>> 0;
  return h.toString(36);
}
// A browser that saw the user's last event at `at` and knows the timeout.
function returning(win, uuid, at, timeout = 30) {
  win.stored.set(SESSION, JSON.stringify({ at, of: checksum(uuid), timeout }));
}
const HOUR = 3_600_000;

const base = { key: "wk_test", endpoint: "https://t.example/", autocapture: false, flushInterval: 20, retryBase: 20 };

test("exports a version", () => assert.match(VERSION, /^\d+\.\d+\.\d+$/));

test("needs a key", () => assert.throws(() => create({}, fakeWindow()), /write key/));

test("nothing is sent before an id is known, then everything with it", async () => {
  const win = fakeWindow();
  const sdk = create(base, win);
  sdk.track("opened");
  await sleep(60);
  assert.equal(win.requests.length, 0);
  sdk.identify("u-1", { role: "admin" });
  await sdk.flush();
  const events = win.requests.flatMap((r) => r.body.events);
  assert.deepEqual(events.map((e) => [e.type, e.uuid, e.interactive]), [
    ["opened", "u-1", true],
    ["identify", "u-1", false],
  ]);
  assert.deepEqual(events[1].user_properties, { role: "admin" });
  assert.ok(win.requests[0].body.sent_at.endsWith("Z"));
  assert.equal(win.requests[0].url, "https://t.example/v1/events?key=wk_test");
});

test("identify traits are user properties, track properties describe the event", async () => {
  const win = fakeWindow();
  const sdk = create(base, win);
  sdk.identify("u-1", { role: "admin", status: "VIP" });
  sdk.track("exported report", { format: "pdf" });
  sdk.track("opened");
  await sdk.flush();
  const [identify, exported, opened] = win.requests.flatMap((r) => r.body.events);
  assert.deepEqual(identify.user_properties, { role: "admin", status: "VIP" });
  assert.equal(identify.properties, undefined);
  assert.deepEqual(exported.properties, { format: "pdf" });
  assert.equal(exported.user_properties, undefined);
  assert.equal("properties" in opened || "user_properties" in opened, false);
});

test("flushes at flushAt events without waiting for the timer", async () => {
  const win = fakeWindow();
  returning(win, "u", Date.now() - HOUR);
  const sdk = create({ ...base, flushAt: 3, flushInterval: 60000 }, win);
  sdk.identify("u");
  sdk.track("a");
  sdk.track("b");
  assert.equal(win.requests.length, 0);
  sdk.track("c");
  await until(() => win.requests.length === 1);
  assert.equal(win.requests[0].body.events.length, 3);
});

test("retries network errors and 5xx with backoff, never a 4xx", async () => {
  const win = fakeWindow({ statuses: [0, 503, 200] });
  const sdk = create(base, win);
  sdk.identify("u").track("a");
  await until(() => sdk.pending().queued === 0);
  assert.equal(win.requests.length, 3);

  const refused = fakeWindow({ statuses: [400] });
  const other = create(base, refused);
  other.identify("u").track("a");
  await until(() => other.pending().queued === 0);
  await sleep(100); // a retry would come within this (retryBase 20 ms)
  assert.equal(refused.requests.length, 1);
  assert.equal(other.pending().queued, 0); // dropped, not retried
});

test("undelivered events persist in localStorage, bounded, and come back", async () => {
  const win = fakeWindow({ statuses: Array(50).fill(0) });
  const sdk = create({ ...base, maxStored: 5, retryBase: 10000 }, win);
  sdk.identify("u");
  for (let i = 0; i < 8; i++) sdk.track("e" + i);
  assert.deepEqual(storedTypes(win), ["e3", "e4", "e5", "e6", "e7"]);
  const [saved] = records(win);
  assert.equal(saved.open, true); // the page is still there: its queue is its own
  const next = fakeWindow();
  next.stored.set(QUEUE, JSON.stringify(saved.events)); // as SDK 1.1.0 stored them
  create(base, next);
  await until(() => next.requests.length > 0);
  assert.deepEqual(next.requests[0].body.events.map((e) => e.type), ["e3", "e4", "e5", "e6", "e7"]);
});

test("identify traits stored by an SDK before 1.1.0 go out as user properties", async () => {
  const win = fakeWindow();
  const old = [
    { type: "identify", timestamp: Date.now() - 1000, interactive: false, uuid: "u", properties: { role: "admin" } },
    { type: "exported report", timestamp: Date.now() - 500, interactive: true, uuid: "u", properties: { format: "pdf" } },
  ];
  win.stored.set("insights:wk_test", JSON.stringify(old));
  await create(base, win).flush();
  const [identify, exported] = win.requests[0].body.events;
  assert.deepEqual(identify.user_properties, { role: "admin" });
  assert.equal(identify.properties, undefined);
  assert.deepEqual(exported.properties, { format: "pdf" });
});

test("uuid from a variable path, a cookie or a function", async () => {
  const byPath = fakeWindow();
  byPath.app = { user: { id: 42 } };
  const a = create({ ...base, uuidVariable: "app.user.id" }, byPath);
  a.track("x");
  await a.flush();
  assert.equal(byPath.requests[0].body.events[0].uuid, "42");

  const byCookie = fakeWindow({ cookie: "other=1; uid=c%2D7" });
  const b = create({ ...base, uuidCookie: "uid" }, byCookie);
  b.track("x");
  await b.flush();
  assert.equal(byCookie.requests[0].body.events[0].uuid, "c-7");

  const byFunction = fakeWindow();
  const c = create({ ...base, uuidFunction: () => "f-1", userHash: () => "ab".repeat(32) }, byFunction);
  c.track("x");
  await c.flush();
  const event = byFunction.requests[0].body.events[0];
  assert.equal(event.uuid, "f-1");
  assert.equal(event.user_hash, "ab".repeat(32));
});

test("hashUuid sends the SHA-256 of the id, never the id", async () => {
  const win = fakeWindow();
  const sdk = create({ ...base, hashUuid: true }, win);
  sdk.identify("raw-id").track("x");
  await until(() => sdk.pending().held === 0);
  await sdk.flush();
  const sent = JSON.stringify(win.requests);
  assert.ok(!sent.includes("raw-id"));
  assert.equal(win.requests[0].body.events[0].uuid, createHash("sha256").update("raw-id").digest("hex"));
});

test("segments() needs a verified user and asks the segments endpoint", async () => {
  const win = fakeWindow();
  win.fetch = async (url) => ({ ok: true, status: 200, json: async () => ({ segments: ["seg_1"], url }) });
  const sdk = create(base, win);
  await assert.rejects(sdk.segments(), /no user identified/);
  sdk.identify("u");
  await assert.rejects(sdk.segments(), /verified user/);
  sdk.identify("u", null, { userHash: "cd".repeat(32) });
  assert.deepEqual(await sdk.segments(), ["seg_1"]);
});

test("pagehide hands the queue to sendBeacon", () => {
  const win = fakeWindow();
  const beacons = [];
  win.navigator.sendBeacon = (url, blob) => beacons.push(url) > 0;
  const sdk = create({ ...base, flushInterval: 60000 }, win);
  sdk.identify("u").track("a").track("b");
  win.fire("pagehide");
  assert.deepEqual(beacons, ["https://t.example/v1/events?key=wk_test"]);
  assert.equal(sdk.pending().queued, 0);
});

// ------------------------------------------------------------ flush policy
// Defaults: 20 events, or 4 minutes after the first; never past 4/5 of the
// session timeout after the user's previous event, at once after a gap near
// it; at once when the page is hidden (docs/sdk.md).
const policy = { key: "wk_test", endpoint: "https://t.example", autocapture: false, retryBase: 1000 };
const MIN = 60_000;
const sent = (win) => win.requests.map((r) => r.body.events.map((e) => e.type));
// How long each event of request n waited in the browser (sent_at - timestamp).
const waited = (win, n) => win.requests[n].body.events.map((e) => Date.parse(win.requests[n].body.sent_at) - e.timestamp);

test("a new browser's first event goes at once, and the answer tells the timeout", async () => {
  const clock = fakeClock();
  const win = fakeWindow({ clock, timeout: 30 });
  const sdk = create(policy, win);
  sdk.identify("u").track("a");
  await clock.advance(0);
  assert.deepEqual(sent(win), [["a"]]);
  assert.deepEqual(JSON.parse(win.stored.get(SESSION)), { at: clock.now(), of: checksum("u"), timeout: 30 });
  assert.ok(!win.stored.get(SESSION).includes('"u"')); // the uuid itself is not kept
  sdk.track("b"); // the timeout is known now: b waits
  await clock.advance(4 * MIN - 1);
  assert.equal(win.requests.length, 1);
  await clock.advance(1);
  assert.deepEqual(sent(win), [["a"], ["b"]]);
});

test("a request 4 minutes after the first queued event, carrying every event since", async () => {
  const clock = fakeClock();
  const win = fakeWindow({ clock });
  returning(win, "u", clock.now() - 2 * HOUR); // a session long closed: a new one starts
  const sdk = create(policy, win);
  sdk.identify("u").track("a");
  await clock.advance(1 * MIN);
  sdk.track("b");
  await clock.advance(3 * MIN - 1);
  assert.equal(win.requests.length, 0);
  await clock.advance(1);
  assert.deepEqual(sent(win), [["a", "b"]]);
  // The next request waits 4 minutes from the next first event, not from the last request.
  await clock.advance(5 * MIN);
  sdk.track("c");
  await clock.advance(4 * MIN - 1);
  assert.equal(win.requests.length, 1);
  await clock.advance(1);
  assert.deepEqual(sent(win), [["a", "b"], ["c"]]);
  assert.equal(sdk.pending().queued, 0);
});

test("no event waits past 4/5 of the timeout after the one before it; one near the timeout goes at once", async () => {
  // A 10-minute account: an event may wait until 8 minutes after the user's
  // previous one; after a gap of 8 to 12 minutes it goes at once; past 12 the
  // server starts a new session whatever it waits.
  const clock = fakeClock();
  const win = fakeWindow({ clock, timeout: 10 });
  returning(win, "u", clock.now() - HOUR, 10);
  const sdk = create(policy, win);
  sdk.identify("u").track("a"); // t = 0: a new session, the usual 4 minutes
  await clock.advance(4 * MIN);
  assert.deepEqual(sent(win), [["a"]]);
  await clock.advance(3 * MIN);
  sdk.track("b"); // t = 7: 7 minutes after a, so it leaves by t = 8
  await clock.advance(1 * MIN - 1);
  assert.equal(win.requests.length, 1);
  await clock.advance(1);
  assert.deepEqual(sent(win)[1], ["b"]);
  assert.deepEqual(waited(win, 1), [1 * MIN]);
  await clock.advance(8 * MIN);
  sdk.track("c"); // t = 16: 9 minutes after b, within 6/5 of the timeout: at once
  await clock.advance(0);
  assert.deepEqual(sent(win)[2], ["c"]);
  assert.deepEqual(waited(win, 2), [0]);
  await clock.advance(13 * MIN);
  sdk.track("d"); // t = 29: 13 minutes after c, a new session: the usual wait
  await clock.advance(4 * MIN - 1);
  assert.equal(win.requests.length, 3);
  await clock.advance(1);
  assert.deepEqual(sent(win)[3], ["d"]);
});

test("the tabs of a browser share the user's last event", async () => {
  const clock = fakeClock();
  const stored = new Map();
  const first = fakeWindow({ clock, stored });
  returning(first, "u", clock.now() - 2 * HOUR);
  create(policy, first).identify("u").track("a");
  await clock.advance(27 * MIN);
  assert.deepEqual(sent(first), [["a"]]);
  const second = fakeWindow({ clock, stored }); // another tab, 27 minutes after a
  create(policy, second).identify("u").track("b");
  await clock.advance(0);
  assert.deepEqual(sent(second), [["b"]]); // near the 30-minute timeout: at once
});

test("another user's last event says nothing about this one's", async () => {
  const clock = fakeClock();
  const win = fakeWindow({ clock });
  returning(win, "someone else", clock.now() - 1 * MIN);
  create(policy, win).identify("u").track("a");
  await clock.advance(0);
  assert.deepEqual(sent(win), [["a"]]);
  assert.equal(JSON.parse(win.stored.get(SESSION)).of, checksum("u"));
});

test("with no timeout in the answers, events wait as for the shortest one (1 minute)", async () => {
  const clock = fakeClock();
  const win = fakeWindow({ clock, timeout: null });
  const sdk = create(policy, win);
  sdk.identify("u").track("a");
  await clock.advance(0);
  assert.deepEqual(sent(win), [["a"]]);
  sdk.track("b");
  await clock.advance(48_000 - 1); // 4/5 of a minute
  assert.equal(win.requests.length, 1);
  await clock.advance(1);
  assert.deepEqual(sent(win)[1], ["b"]);
});

test("20 queued events go at once, in one request", async () => {
  const clock = fakeClock();
  const win = fakeWindow({ clock });
  returning(win, "u", clock.now() - 2 * HOUR);
  const sdk = create(policy, win);
  sdk.identify("u");
  for (let i = 0; i < 19; i++) sdk.track("e" + i);
  await clock.advance(0);
  assert.equal(win.requests.length, 0);
  sdk.track("e19");
  await clock.advance(0);
  assert.equal(win.requests.length, 1);
  assert.equal(win.requests[0].body.events.length, 20);
  assert.equal(sdk.pending().queued, 0);
});

test("hidden sends everything at once with keepalive; back to visible waits again", async () => {
  const clock = fakeClock();
  const win = fakeWindow({ clock });
  const sdk = create({ ...policy, autocapture: true }, win);
  sdk.identify("u").track("a");
  win.setVisibility("hidden");
  await clock.advance(0);
  assert.deepEqual(sent(win), [["page_view", "a", "page_hidden"]]);
  assert.equal(win.requests[0].keepalive, true);
  assert.ok(nothingStored(win)); // answered: nothing left to store
  win.setVisibility("visible");
  await clock.advance(4 * MIN - 1);
  assert.equal(win.requests.length, 1);
  await clock.advance(1);
  assert.deepEqual(sent(win)[1], ["page_visible"]);
});

test("an event captured while the page is hidden goes at once", async () => {
  const clock = fakeClock();
  const win = fakeWindow({ clock });
  returning(win, "u", clock.now() - 2 * HOUR);
  const sdk = create({ ...policy, autocapture: true }, win);
  sdk.identify("u");
  win.setVisibility("hidden");
  await clock.advance(0);
  assert.deepEqual(sent(win), [["page_view", "page_hidden"]]);
  sdk.track("pushed"); // e.g. from a websocket: a hidden page may be frozen any moment
  await clock.advance(0);
  assert.deepEqual(sent(win)[1], ["pushed"]);
});

test("hidden while backing off keeps the backoff; the events stay stored", async () => {
  const clock = fakeClock();
  const win = fakeWindow({ clock, statuses: [503, 200] });
  returning(win, "u", clock.now() - 2 * HOUR);
  const sdk = create({ ...policy, autocapture: true, retryBase: 10_000 }, win);
  sdk.identify("u").track("a");
  await clock.advance(4 * MIN);
  assert.equal(win.requests.length, 1); // failed: retry in about 10 s
  win.setVisibility("hidden");
  await clock.advance(0);
  assert.equal(win.requests.length, 1);
  assert.deepEqual(storedTypes(win), ["page_view", "a", "page_hidden"]);
  await clock.advance(13_000);
  assert.deepEqual(sent(win)[1], ["page_view", "a", "page_hidden"]);
  assert.ok(nothingStored(win));
});

test("a failed request is retried on the backoff, not 4 minutes later", async () => {
  const clock = fakeClock();
  const win = fakeWindow({ clock, statuses: [0, 503, 200] });
  returning(win, "u", clock.now() - 2 * HOUR);
  const sdk = create(policy, win);
  sdk.identify("u").track("a");
  await clock.advance(4 * MIN);
  assert.equal(win.requests.length, 1);
  await clock.advance(1_250); // first retry: 1 s ±25 %
  assert.equal(win.requests.length, 2);
  await clock.advance(2_500); // second: 2 s ±25 %
  assert.equal(win.requests.length, 3);
  assert.equal(sdk.pending().queued, 0);
  assert.deepEqual(sent(win), [["a"], ["a"], ["a"]]); // the same events each time
  assert.deepEqual(new Set(win.requests.map((r) => r.body.events[0].timestamp)).size, 1);
});

test("heartbeats ride along; alone they wait heartbeatFlush", async () => {
  const clock = fakeClock();
  const win = fakeWindow({ clock });
  const sdk = create({ ...policy, autocapture: true, heartbeat: 60 }, win);
  sdk.identify("u");
  await clock.advance(0); // a new browser: the page view at once
  assert.deepEqual(sent(win), [["page_view"]]);
  await clock.advance(6 * MIN - 1); // heartbeats at 60, 120, ... 300 s wait
  assert.equal(win.requests.length, 1);
  await clock.advance(1); // 360 s: the first of them is 5 minutes old
  assert.deepEqual(sent(win)[1], Array(5).fill("heartbeat"));
  await clock.advance(90_000); // 450 s
  assert.equal(win.requests.length, 2); // the next ones wait again...
  sdk.track("clicked");
  await clock.advance(210_000 - 1);
  assert.equal(win.requests.length, 2);
  await clock.advance(1); // ...and the click rides with them: 660 s, 5 minutes after the 360 s one
  const beat = "heartbeat";
  assert.deepEqual(sent(win)[2], [beat, beat, "clicked", beat, beat, beat]); // 360, 420, 450, 480-600 s
  assert.equal(sdk.pending().queued, 1); // the 660 s heartbeat, captured just after
});

test("pagehide beacons what no request carries; nothing is sent or stored twice", async () => {
  const clock = fakeClock();
  const win = fakeWindow({ clock });
  let answer;
  win.fetch = (url, init) => {
    win.requests.push({ url, keepalive: init.keepalive, body: JSON.parse(init.body) });
    if (win.requests.length > 1) return Promise.resolve({ status: 200, ok: true, json: async () => ({}) });
    return new Promise((resolve) => (answer = resolve)); // not answered before the page goes
  };
  win.navigator.sendBeacon = (url, blob) => win.beacons.push(blob) > 0;
  const sdk = create({ ...policy, autocapture: true }, win);
  sdk.identify("u").track("a");
  win.setVisibility("hidden"); // a keepalive request of [page_view, a, page_hidden] is under way
  assert.equal(win.requests[0].keepalive, true);
  sdk.track("late"); // captured after it left
  win.fire("pagehide", { persisted: true });
  win.setVisibility("hidden"); // Chromium hides an unloading page after pagehide: no new event
  assert.equal(win.requests.length, 1);
  assert.equal(win.beacons.length, 1);
  const beaconed = JSON.parse(await win.beacons[0].text()).events.map((e) => e.type);
  assert.deepEqual(beaconed, ["late"]);
  // The keepalive request outlives the page: the next page must not send it again.
  assert.ok(nothingStored(win));
  // Back from the back/forward cache, the page has the request in hand again,
  // and it failed after all: stored, then retried on the backoff.
  win.fire("pageshow", { persisted: true });
  answer({ status: 503, ok: false, json: async () => ({}) });
  await clock.advance(0);
  assert.deepEqual(storedTypes(win), ["page_view", "a", "page_hidden"]);
  await clock.advance(1_250);
  assert.deepEqual(sent(win)[1], ["page_view", "a", "page_hidden"]);
  assert.ok(nothingStored(win));
});

test("offline at pagehide: everything stays stored for the next page", () => {
  const win = fakeWindow();
  win.navigator.onLine = false;
  win.navigator.sendBeacon = () => assert.fail("no beacon while offline");
  const sdk = create({ ...policy, flushInterval: 60000 }, win);
  sdk.identify("u").track("a").track("b");
  win.fire("pagehide");
  assert.deepEqual(storedTypes(win), ["a", "b"]);
  assert.equal(records(win)[0].open, false); // gone: the next page takes them
});

// Tabs share localStorage: each page stores its own queue, and a page takes
// over only the queues of pages that have gone.
test("two tabs offline keep both queues, and the next page sends both once", async () => {
  const shared = new Map();
  const offline = () => {
    const win = fakeWindow({ statuses: Array(50).fill(0), stored: shared });
    win.navigator.onLine = false;
    return win;
  };
  const a = offline();
  const b = offline();
  create({ ...base, retryBase: 60000 }, a).identify("ua").track("a1");
  create({ ...base, retryBase: 60000 }, b).identify("ub").track("b1");
  assert.equal(records(a).length, 2); // one queue a tab, neither over the other
  // A third page while both are open takes neither (it would send them twice).
  const early = offline();
  early.navigator.onLine = true;
  create(base, early);
  assert.equal(records(early).length, 2);
  a.fire("pagehide");
  b.fire("pagehide");
  assert.deepEqual(records(a).map((r) => r.open), [false, false]);
  const next = fakeWindow({ stored: shared });
  create(base, next);
  await until(() => next.requests.length > 0);
  const sentTo = next.requests.flatMap((r) => r.body.events.map((e) => `${e.uuid}:${e.type}`));
  assert.deepEqual(sentTo.sort(), ["ua:a1", "ub:b1"]);
  await until(() => records(next).length === 0);
});

test("a tab that died without pagehide is taken over after an hour", () => {
  const win = fakeWindow();
  const events = [{ type: "x", uuid: "u", timestamp: Date.now() - 1000 }];
  win.stored.set(QUEUE + "#live", JSON.stringify({ at: Date.now() - 60_000, open: true, events }));
  win.stored.set(QUEUE + "#dead", JSON.stringify({ at: Date.now() - 2 * HOUR, open: true, events }));
  win.navigator.onLine = false;
  create(base, win);
  assert.ok(win.stored.has(QUEUE + "#live"));
  assert.ok(!win.stored.has(QUEUE + "#dead"));
  const mine = records(win).filter((r) => r.at > Date.now() - 5_000);
  assert.deepEqual(mine.map((r) => r.events.map((e) => e.type)), [["x"]]);
});
