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

function fakeWindow({ statuses = [], cookie = "" } = {}) {
  const stored = new Map();
  const listeners = {};
  const win = {
    requests: [],
    cookie,
    console: { log() {}, warn() {}, error() {} },
    crypto: globalThis.crypto,
    navigator: { onLine: true },
    document: { cookie, addEventListener() {}, visibilityState: "visible" },
    localStorage: {
      getItem: (k) => (stored.has(k) ? stored.get(k) : null),
      setItem: (k, v) => stored.set(k, String(v)),
      removeItem: (k) => stored.delete(k),
    },
    stored,
    addEventListener: (name, fn) => (listeners[name] = listeners[name] || []).push(fn),
    fire: (name) => (listeners[name] || []).forEach((fn) => fn()),
    // Pending retries must not keep the test process alive.
    setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
    clearTimeout: (id) => clearTimeout(id),
    fetch: async (url, init) => {
      win.requests.push({ url, body: init.body && JSON.parse(init.body) });
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
  assert.deepEqual(events[1].properties, { role: "admin" });
  assert.ok(win.requests[0].body.sent_at.endsWith("Z"));
  assert.equal(win.requests[0].url, "https://t.example/v1/events?key=wk_test");
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
