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

function fakeWindow({ statuses = [], cookie = "", clock = null } = {}) {
  const stored = new Map();
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
      return {
        status,
        ok: status < 300,
        json: async () => ({ accepted: events.length, late: 0, rejected: [] }),
      };
    },
  };
  return win;
}

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
  const saved = JSON.parse(win.stored.get("insights:wk_test"));
  assert.deepEqual(saved.map((e) => e.type), ["e3", "e4", "e5", "e6", "e7"]);
  const next = fakeWindow();
  next.stored.set("insights:wk_test", JSON.stringify(saved));
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
// Defaults: 20 events, or 30 s after the first; at once when the page is hidden.
const policy = { key: "wk_test", endpoint: "https://t.example", autocapture: false, retryBase: 1000 };
const sent = (win) => win.requests.map((r) => r.body.events.map((e) => e.type));

test("a request 30 s after the first queued event, carrying every event since", async () => {
  const clock = fakeClock();
  const win = fakeWindow({ clock });
  const sdk = create(policy, win);
  sdk.identify("u").track("a");
  await clock.advance(10_000);
  sdk.track("b");
  await clock.advance(19_999);
  assert.equal(win.requests.length, 0);
  await clock.advance(1);
  assert.deepEqual(sent(win), [["a", "b"]]);
  // The next request waits 30 s from the next first event, not from the last request.
  await clock.advance(40_000);
  sdk.track("c");
  await clock.advance(29_999);
  assert.equal(win.requests.length, 1);
  await clock.advance(1);
  assert.deepEqual(sent(win), [["a", "b"], ["c"]]);
  assert.equal(sdk.pending().queued, 0);
});

test("20 queued events go at once, in one request", async () => {
  const clock = fakeClock();
  const win = fakeWindow({ clock });
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
  assert.equal(win.stored.size, 0); // answered: nothing left to store
  win.setVisibility("visible");
  await clock.advance(29_999);
  assert.equal(win.requests.length, 1);
  await clock.advance(1);
  assert.deepEqual(sent(win)[1], ["page_visible"]);
});

test("hidden while backing off keeps the backoff; the events stay stored", async () => {
  const clock = fakeClock();
  const win = fakeWindow({ clock, statuses: [503, 200] });
  const sdk = create({ ...policy, autocapture: true, retryBase: 10_000 }, win);
  sdk.identify("u").track("a");
  await clock.advance(30_000);
  assert.equal(win.requests.length, 1); // failed: retry in about 10 s
  win.setVisibility("hidden");
  await clock.advance(0);
  assert.equal(win.requests.length, 1);
  assert.deepEqual(JSON.parse(win.stored.get("insights:wk_test")).map((e) => e.type), ["page_view", "a", "page_hidden"]);
  await clock.advance(13_000);
  assert.deepEqual(sent(win)[1], ["page_view", "a", "page_hidden"]);
  assert.equal(win.stored.size, 0);
});

test("a failed request is retried on the backoff, not 30 s later", async () => {
  const clock = fakeClock();
  const win = fakeWindow({ clock, statuses: [0, 503, 200] });
  const sdk = create(policy, win);
  sdk.identify("u").track("a");
  await clock.advance(30_000);
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
  await clock.advance(30_000); // the page view, 30 s after load
  assert.deepEqual(sent(win), [["page_view"]]);
  await clock.advance(329_999); // heartbeats at 60, 120, ... 300 s wait
  assert.equal(win.requests.length, 1);
  await clock.advance(1); // 360 s: the first of them is 5 minutes old
  assert.ok(sent(win)[1].length >= 5 && sent(win)[1].every((type) => type === "heartbeat"), sent(win)[1]);
  await clock.advance(90_000);
  assert.equal(win.requests.length, 2); // the next ones wait again...
  sdk.track("clicked");
  await clock.advance(29_999);
  assert.equal(win.requests.length, 2);
  await clock.advance(1); // ...and go with the next event, 30 s after it
  assert.ok(sent(win)[2].includes("clicked") && sent(win)[2][0] === "heartbeat", sent(win)[2]);
  assert.equal(sdk.pending().queued, 0);
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
  assert.equal(win.stored.size, 0);
  // Back from the back/forward cache, the page has the request in hand again,
  // and it failed after all: stored, then retried on the backoff.
  win.fire("pageshow", { persisted: true });
  answer({ status: 503, ok: false, json: async () => ({}) });
  await clock.advance(0);
  assert.deepEqual(JSON.parse(win.stored.get("insights:wk_test")).map((e) => e.type), ["page_view", "a", "page_hidden"]);
  await clock.advance(1_250);
  assert.deepEqual(sent(win)[1], ["page_view", "a", "page_hidden"]);
  assert.equal(win.stored.size, 0);
});

test("offline at pagehide: everything stays stored for the next page", () => {
  const win = fakeWindow();
  win.navigator.onLine = false;
  win.navigator.sendBeacon = () => assert.fail("no beacon while offline");
  const sdk = create({ ...policy, flushInterval: 60000 }, win);
  sdk.identify("u").track("a").track("b");
  win.fire("pagehide");
  assert.deepEqual(JSON.parse(win.stored.get("insights:wk_test")).map((e) => e.type), ["a", "b"]);
});
