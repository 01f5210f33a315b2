/*! Insights browser SDK | self-hosted | docs/sdk.md
 * One source, no build step: a classic script for the <script> tag, and the
 * ES module (insights.mjs) imports this file for bundlers. Dependency-free.
 */
(function (root) {
  "use strict";
  var VERSION = "1.2.0";
  var STUB_METHODS = ["identify", "track", "page", "segments", "flush", "reset", "ready", "debug"];
  var DEFAULTS = {
    endpoint: "", // base URL; the tag's own origin + path when loaded from the stack
    flushAt: 20, // events: send at once when this many wait
    flushInterval: 240000, // ms: ...else this long after the first one was captured
    heartbeatFlush: 300000, // ms: ...or this long when only heartbeats wait
    batchMax: 100, // events per request (the API takes 500)
    maxStored: 500, // events kept in localStorage while undelivered
    retryBase: 1000, // ms, doubled per failure
    retryMax: 60000,
    throttle: 1000, // ms between two autocaptured events of one kind
    heartbeat: 0, // s between non-interactive timer events while visible; 0 = off
    autocapture: true,
    debug: false,
    uuidVariable: "", // "app.user.id": a path under window
    uuidCookie: "",
    uuidFunction: null, // function () { return id }
    hashUuid: false, // SHA-256 the uuid in the browser (WebCrypto) before it is sent
    userHash: "" // HMAC from your backend, when the uuid does not come from identify()
  };
  // The API keeps at most this much history (the default backfill window).
  var MAX_AGE_MS = 7 * 864e5;
  // A tab's stored queue still marked open but untouched this long belongs to
  // a page that died without pagehide: the next page load takes it over.
  var ORPHAN_MS = 36e5;
  // The account's session timeout comes with each answer (this header, in
  // minutes); until one has, the shortest an account can set.
  var TIMEOUT_HEADER = "x-insights-session-timeout";
  var MIN_TIMEOUT_MINUTES = 1;

  function create(options, env) {
    var opts = {};
    var k;
    for (k in DEFAULTS) opts[k] = DEFAULTS[k];
    for (k in options || {}) if (options[k] !== undefined && options[k] !== null) opts[k] = options[k];
    env = env || root;
    var doc = env.document;
    var nav = env.navigator || {};
    var clock = env.Date || Date; // env: the window, or a test's stand-in with its own clock
    var now = function () { return clock.now(); };
    var later = function (fn, ms) { return env.setTimeout(fn, ms); };
    var cancel = function (id) { env.clearTimeout(id); };
    if (!opts.key) throw new Error("insights: a write key is required (data-key or {key})");
    var base = String(opts.endpoint || "").replace(/\/+$/, "");
    // Each page keeps its undelivered events under a key of its own (tabs
    // share localStorage: one key written by every tab lost a tab's events
    // when another wrote over them). `storeKey` alone is SDKs 1.0-1.1's.
    var storeKey = "insights:" + opts.key;
    var tabKey = storeKey + "#" + now().toString(36) + Math.random().toString(36).slice(2, 8);
    var held = []; // captured before an id is known: never sent without one
    var queue = []; // identified, waiting for delivery (persisted)
    var explicit = null; // {uuid, hash}: from identify()
    var hashed = {}; // raw id -> SHA-256 hex
    var inflight = null; // the request under way: one at a time
    var inflightBatch = [];
    var inflightKeepalive = false;
    var queuedAt = new WeakMap(); // event -> capture time (neither sent nor stored)
    var previousOf = new WeakMap(); // event -> capture time of the user's event before it
    // This browser's last event (any tab: kept in localStorage) and whose it
    // was (a checksum of the uuid, not the uuid), and the account's timeout.
    var metaKey = storeKey + ":session";
    var meta = {}; // {at, of, timeout}
    var timer = null;
    var unloading = false; // from pagehide until the page is shown again
    var failures = 0;
    var retryAt = 0;
    var lastOf = {};
    var readyFns = [];
    var api;

    function log(level, args) {
      if (opts.debug && env.console) env.console[level].apply(env.console, ["[insights]"].concat(args));
    }

    // --------------------------------------------------------- persistence
    function storage() {
      try { return env.localStorage || null; } catch (e) { return null; }
    }
    // open: false once the page has gone (pagehide): another page may take them.
    function store(events, open) {
      var s = storage();
      if (!s) return;
      try {
        if (events.length) s.setItem(tabKey, JSON.stringify({ at: now(), open: open, events: events }));
        else s.removeItem(tabKey);
      } catch (e) { log("warn", ["localStorage unavailable:", e.message]); }
    }
    function persist() {
      if (queue.length > opts.maxStored) {
        log("warn", ["stored queue full: dropping", queue.length - opts.maxStored, "oldest events"]);
        queue = queue.slice(queue.length - opts.maxStored);
      }
      store(queue, true);
    }
    // What pages that have gone left undelivered becomes this page's: every
    // closed page's queue, one still open but untouched for ORPHAN_MS, and
    // SDKs 1.0-1.1's shared queue. An open page's queue stays its own (taking it
    // would send its events twice). Two pages loading at once may both take a
    // queue: its events then arrive twice, which counts once.
    function restore() {
      var s = storage();
      if (!s) return;
      var keys = [];
      try {
        for (var k = 0; k < s.length; k++) keys.push(s.key(k));
      } catch (e) { return; }
      var oldest = now() - MAX_AGE_MS;
      var taken = 0;
      for (var j = 0; j < keys.length; j++) {
        var key = keys[j];
        if (key !== storeKey && String(key).indexOf(storeKey + "#") !== 0) continue;
        var saved = null;
        try { saved = JSON.parse(s.getItem(key)); } catch (e) { log("warn", ["ignoring unreadable stored events"]); }
        if (saved && saved.open && saved.at > now() - ORPHAN_MS) continue; // another page's, still open
        var events = Array.isArray(saved) ? saved : (saved && saved.events) || [];
        try { s.removeItem(key); } catch (e) { /* read-only: sent again later, counted once */ }
        for (var i = 0; i < events.length; i++) {
          var e = events[i];
          if (!e || !(e.timestamp > oldest)) continue;
          // Stored by an SDK before 1.1.0, which sent identify's traits as properties.
          if (e.type === "identify" && e.properties && !e.user_properties) {
            e.user_properties = e.properties;
            delete e.properties;
          }
          queue.push(e);
          taken++;
        }
      }
      if (taken) persist(); // under this page's key before anything else can fail
    }

    function remembered() {
      var s = storage();
      try {
        var saved = s && JSON.parse(s.getItem(metaKey));
        if (saved && typeof saved === "object") meta = saved;
      } catch (e) { /* unreadable: keep what this page knows */ }
      return meta;
    }
    function remember() {
      var s = storage();
      try { if (s) s.setItem(metaKey, JSON.stringify(meta)); } catch (e) { /* memory only */ }
    }
    function checksum(text) { // FNV-1a: tells users apart without storing their id
      for (var h = 2166136261, i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619) >>> 0;
      return h.toString(36);
    }

    // ------------------------------------------------------------ identity
    function pathValue(path) {
      var value = env;
      var parts = String(path).split(".");
      for (var i = 0; i < parts.length && value != null; i++) value = value[parts[i]];
      return value;
    }
    function cookieValue(name) {
      var pairs = doc && doc.cookie ? doc.cookie.split(/;\s*/) : [];
      for (var i = 0; i < pairs.length; i++) {
        var at = pairs[i].indexOf("=");
        if (pairs[i].slice(0, at) === name) {
          try { return decodeURIComponent(pairs[i].slice(at + 1)); } catch (e) { return pairs[i].slice(at + 1); }
        }
      }
      return null;
    }
    function rawUuid() {
      if (explicit) return explicit.uuid;
      var found = null;
      try {
        if (opts.uuidVariable) found = pathValue(opts.uuidVariable);
        if (found == null && opts.uuidCookie) found = cookieValue(opts.uuidCookie);
        if (found == null && typeof opts.uuidFunction === "function") found = opts.uuidFunction();
      } catch (e) { log("warn", ["uuid source failed:", e.message]); }
      return found == null || found === "" ? null : String(found);
    }
    function sha256(text) {
      var subtle = env.crypto && env.crypto.subtle;
      if (!subtle) return Promise.reject(new Error("WebCrypto is not available (it needs https or localhost)"));
      return subtle.digest("SHA-256", new TextEncoder().encode(text)).then(function (buf) {
        var out = "";
        var bytes = new Uint8Array(buf);
        for (var i = 0; i < bytes.length; i++) out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
        return out;
      });
    }
    // The id as sent, or null while unknown (or while its hash is computed).
    function identity() {
      var raw = rawUuid();
      if (raw == null) return null;
      var hash = explicit ? explicit.hash : typeof opts.userHash === "function" ? opts.userHash() : opts.userHash;
      if (!opts.hashUuid) return { uuid: raw, hash: hash || null };
      if (hashed[raw]) return { uuid: hashed[raw], hash: hash || null };
      if (hashed[raw] !== false) {
        hashed[raw] = false;
        sha256(raw).then(function (hex) { hashed[raw] = hex; adopt(); plan(); }, function (e) {
          log("error", ["cannot hash the uuid, nothing is sent:", e.message]);
        });
      }
      return null;
    }
    function adopt() {
      if (!held.length) return;
      var id = identity();
      if (!id) return;
      var of = checksum(id.uuid);
      var previous = remembered().of === of && meta.at > 0 ? +meta.at : undefined;
      for (var i = 0; i < held.length; i++) {
        held[i].uuid = id.uuid;
        if (id.hash) held[i].user_hash = id.hash;
        queue.push(held[i]);
        previousOf.set(held[i], previous);
        previous = Math.max(previous || 0, held[i].timestamp);
      }
      held = [];
      meta.at = previous;
      meta.of = of;
      remember();
      persist();
    }

    // ------------------------------------------------------------- capture
    function copied(values) {
      var out = null;
      if (values && typeof values === "object") {
        for (var name in values) if (Object.prototype.hasOwnProperty.call(values, name)) {
          (out = out || {})[name] = values[name];
        }
      }
      return out;
    }
    // properties describe the event (kept as attributes only for the names the
    // account lists); userProperties are the user's custom attributes, most
    // recent wins (docs/event-properties.md).
    function enqueue(type, properties, interactive, userProperties) {
      var event = { type: String(type).slice(0, 128), timestamp: now(), interactive: interactive !== false };
      queuedAt.set(event, event.timestamp);
      var props = copied(properties);
      var user = copied(userProperties);
      if (props) event.properties = props;
      if (user) event.user_properties = user;
      held.push(event);
      if (held.length > opts.maxStored) held.shift();
      adopt();
      plan();
    }
    function auto(type, interactive) {
      return function () {
        var t = now();
        if (t - (lastOf[type] || 0) < opts.throttle) return;
        lastOf[type] = t;
        enqueue(type, null, interactive);
      };
    }

    // ------------------------------------------------------------ delivery
    function url(path) {
      return base + path + "?key=" + encodeURIComponent(opts.key);
    }
    function body(events) {
      return JSON.stringify({ sent_at: new Date(now()).toISOString(), events: events });
    }
    function schedule(delay) {
      if (timer) cancel(timer);
      var wait = Math.max(delay, retryAt - now(), 0);
      timer = later(function () { timer = null; flush(); }, wait);
    }
    function waiting() {
      return queue.filter(function (e) { return inflightBatch.indexOf(e) < 0; });
    }
    // When an event must leave (docs/sdk.md, "Waiting and the session
    // timeout"): flushInterval after its capture (heartbeats, which only
    // stretch a session, heartbeatFlush), never later than 4/5 of the session
    // timeout after the user's event before it, so it arrives while the
    // server still holds that session open; one that follows a gap near the
    // timeout, or nothing this browser knows of, goes at once. Events restored
    // from an earlier page, or captured while the page is hidden (it may be
    // frozen any moment), are due at once.
    function dueOf(event) {
      var at = queuedAt.get(event);
      if (at === undefined || (doc && doc.visibilityState === "hidden")) return now();
      var timeout = (meta.timeout >= 1 && meta.timeout <= 240 ? meta.timeout : MIN_TIMEOUT_MINUTES) * 6e4;
      var safe = timeout * 0.8;
      var hold = Math.min(event.type === "heartbeat" ? opts.heartbeatFlush : opts.flushInterval, safe);
      var previous = previousOf.get(event);
      if (previous === undefined) return at;
      var gap = at - previous;
      if (gap <= safe) return Math.min(at + hold, previous + safe);
      return gap <= timeout * 1.2 ? at : at + hold; // past 6/5 of it: a new session anyway
    }
    // The flush policy: at once when flushAt events wait, else when the
    // earliest of them is due (later, once an answer has told the timeout).
    function plan() {
      var list = waiting();
      if (!list.length) return;
      var due = list.length >= opts.flushAt ? now() : Infinity;
      for (var i = 0; i < list.length && due > now(); i++) due = Math.min(due, dueOf(list[i]));
      schedule(due - now());
    }
    function report(answer, events) {
      var rejected = (answer && answer.rejected) || [];
      for (var i = 0; i < rejected.length; i++) {
        var r = rejected[i];
        log("warn", ["event rejected:", r.field, "-", r.error, events[r.index]]);
      }
    }
    function drop(batch) {
      queue = queue.filter(function (e) { return batch.indexOf(e) < 0; });
      persist();
    }
    function retryable(status) {
      return status >= 500 || status === 408 || status === 429;
    }
    function flush() {
      adopt();
      if (inflight) return inflight;
      if (!queue.length) return Promise.resolve();
      if (now() < retryAt) {
        schedule(0); // backing off (a timer may also fire a little early)
        return Promise.resolve();
      }
      var batch = queue.slice(0, opts.batchMax);
      var data = body(batch);
      inflightBatch = batch;
      // Browsers refuse keepalive bodies over 64 KB: a big backlog goes without
      // it. With it the request outlives the page (see beacon()).
      inflightKeepalive = data.length < 60000;
      var failed = false;
      // text/plain and the key in the query string: a CORS "simple" request, no preflight.
      inflight = env.fetch(url("/v1/events"), {
        method: "POST",
        body: data,
        headers: { "content-type": "text/plain;charset=UTF-8" },
        keepalive: inflightKeepalive,
        credentials: "omit"
      }).then(function (response) {
        if (retryable(response.status)) throw new Error("HTTP " + response.status);
        var minutes = Number(response.headers && response.headers.get(TIMEOUT_HEADER));
        if (minutes >= 1 && minutes <= 240) {
          remembered().timeout = minutes;
          remember();
        }
        failures = 0;
        retryAt = 0;
        drop(batch);
        return response.json().then(function (answer) {
          if (response.ok) report(answer, batch);
          else log("error", ["batch refused, not retried:", response.status, answer && answer.message]);
        }, function () {});
      }).catch(function (e) {
        failed = true;
        failures++;
        var delay = Math.min(opts.retryMax, opts.retryBase * Math.pow(2, failures - 1));
        retryAt = now() + delay * (0.75 + Math.random() * 0.5);
        log("warn", ["send failed (" + e.message + "), retry #" + failures + " in", Math.round(retryAt - now()), "ms"]);
      }).then(function () {
        inflight = null;
        inflightBatch = [];
        if (failed) schedule(0); // the batch is due: at the end of the backoff
        else plan();
      });
      return inflight;
    }
    // All that is queued, batch after batch, unless backing off: a hidden page
    // may never run again (what is undelivered stays stored).
    function drain() {
      return flush().then(function () {
        return queue.length && !retryAt ? drain() : undefined;
      });
    }
    // The page is going away. A keepalive request under way and a beacon both
    // outlive it: their events are not stored, or the next page would send
    // them again. What no request carries (offline, beacon refused) stays
    // stored. Back from the bfcache, pageshow stores the whole queue again.
    function beacon() {
      unloading = true;
      adopt();
      var handed = inflight && inflightKeepalive && nav.onLine !== false ? inflightBatch : [];
      var left = waiting();
      var sent = [];
      if (nav.onLine !== false) {
        for (var i = 0; i < left.length; i += opts.flushAt) {
          var chunk = left.slice(i, i + opts.flushAt);
          var ok = false;
          try {
            var blob = new Blob([body(chunk)], { type: "text/plain" });
            ok = nav.sendBeacon ? nav.sendBeacon(url("/v1/events"), blob) : false;
          } catch (e) { ok = false; }
          if (!ok) break;
          sent = sent.concat(chunk);
        }
      }
      drop(sent);
      store(queue.filter(function (e) { return handed.indexOf(e) < 0; }), false);
    }

    // ----------------------------------------------------------------- API
    api = {
      VERSION: VERSION,
      identify: function (uuid, traits, options) {
        if (uuid == null || String(uuid).trim() === "") {
          log("error", ["identify() needs a non-empty uuid"]);
          return api;
        }
        explicit = { uuid: String(uuid), hash: (options && options.userHash) || null };
        if (traits && typeof traits === "object") enqueue("identify", null, false, traits);
        else {
          adopt();
          plan();
        }
        return api;
      },
      track: function (type, properties, options) {
        if (!type) {
          log("error", ["track() needs an event name"]);
          return api;
        }
        enqueue(type, properties, !(options && options.interactive === false));
        return api;
      },
      page: function () {
        enqueue("page_view", null, false);
        return api;
      },
      segments: function () {
        var id = identity();
        if (!id) return Promise.reject(new Error("insights.segments(): no user identified yet"));
        if (!id.hash) return Promise.reject(new Error("insights.segments(): needs a verified user (identify with {userHash})"));
        var query = "&uuid=" + encodeURIComponent(id.uuid) + "&user_hash=" + encodeURIComponent(id.hash);
        return env.fetch(url("/v1/sdk/segments") + query, { credentials: "omit" }).then(function (response) {
          return response.json().then(function (answer) {
            if (!response.ok) {
              var error = new Error(answer.message || "HTTP " + response.status);
              error.code = answer.error;
              throw error;
            }
            return answer.segments;
          });
        });
      },
      // Sends everything queued now (batch after batch); resolves when done or failing.
      flush: function () {
        retryAt = 0;
        return flush().then(function () {
          return queue.length && !retryAt ? api.flush() : undefined;
        });
      },
      reset: function () {
        explicit = null;
        held = [];
        return api;
      },
      ready: function (fn) {
        if (typeof fn === "function") fn(api);
        return api;
      },
      debug: function (on) {
        opts.debug = on !== false;
        return api;
      },
      // For tests and the demo page: what waits to be sent.
      pending: function () {
        return { held: held.length, queued: queue.length };
      }
    };

    restore();
    remembered();
    plan();
    if (opts.autocapture && doc && doc.addEventListener) {
      var listen = { capture: true, passive: true };
      doc.addEventListener("click", auto("click", true), listen);
      doc.addEventListener("input", auto("input", true), listen);
      doc.addEventListener("change", auto("input", true), listen);
      doc.addEventListener("keydown", auto("key_press", true), listen);
      env.addEventListener("scroll", auto("scroll", true), listen);
      doc.addEventListener("visibilitychange", function () {
        // Chromium hides a page after its pagehide when it unloads: the
        // beacon has carried everything by then.
        if (unloading) return;
        enqueue(doc.visibilityState === "hidden" ? "page_hidden" : "page_visible", null, false);
        // Hidden may be the last moment this page runs (a phone freezes or
        // discards it, a closing tab goes on to pagehide): send it all now.
        if (doc.visibilityState === "hidden") drain();
      });
      env.addEventListener("popstate", function () { api.page(); });
      if (opts.heartbeat > 0) {
        var beat = function () {
          if (doc.visibilityState !== "hidden") enqueue("heartbeat", null, false);
          later(beat, opts.heartbeat * 1000);
        };
        later(beat, opts.heartbeat * 1000);
      }
      api.page();
    }
    if (env.addEventListener) {
      env.addEventListener("pagehide", beacon);
      env.addEventListener("pageshow", function () {
        unloading = false;
        persist(); // what pagehide left out of storage is this page's again
      });
      env.addEventListener("online", function () {
        var wasFailing = failures > 0;
        failures = 0;
        retryAt = 0;
        if (wasFailing) schedule(0); // the backlog goes now, not at the end of the backoff
        else plan();
      });
    }
    return api;
  }

  // Options from the tag: data-key, data-endpoint, data-debug, data-flush-at, ...
  function tagOptions(tag) {
    var out = {};
    var data = tag.dataset || {};
    for (var name in DEFAULTS) {
      var raw = data[name];
      if (raw === undefined) continue;
      var def = DEFAULTS[name];
      out[name] = typeof def === "number" ? Number(raw) : typeof def === "boolean" ? raw !== "false" : raw;
    }
    if (data.uuidFunction) out.uuidFunction = function () { return root[data.uuidFunction](); };
    out.key = data.key;
    if (!out.endpoint) out.endpoint = String(tag.src).replace(/\/v1\/sdk\/insights\.js([?#].*)?$/, "");
    return out;
  }

  root.Insights = { create: create, VERSION: VERSION, STUB_METHODS: STUB_METHODS };
  var doc = root.document;
  var tag = doc && doc.currentScript;
  if (tag && tag.getAttribute("data-key")) {
    var queued = Array.isArray(root.insights) ? root.insights : [];
    var client;
    try {
      client = create(tagOptions(tag));
    } catch (e) {
      if (root.console) root.console.error(String(e.message || e));
      return;
    }
    root.insights = client;
    // Calls made before the async tag loaded, in order (the stub queue).
    for (var i = 0; i < queued.length; i++) {
      var call = queued[i];
      if (call && typeof client[call[0]] === "function") client[call[0]].apply(client, call[1]);
    }
  }
})(typeof globalThis !== "undefined" ? globalThis : this);
