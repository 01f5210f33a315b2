/*! Insights browser SDK | self-hosted | docs/sdk.md
 * One source, no build step: a classic script for the <script> tag, and the
 * ES module (insights.mjs) imports this file for bundlers. Dependency-free.
 */
(function (root) {
  "use strict";
  var VERSION = "1.1.0";
  var STUB_METHODS = ["identify", "track", "page", "segments", "flush", "reset", "ready", "debug"];
  var DEFAULTS = {
    endpoint: "", // base URL; the tag's own origin + path when loaded from the stack
    flushAt: 20, // events: send at once when this many wait
    flushInterval: 30000, // ms: ...else this long after the first one was queued
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
    var storeKey = "insights:" + opts.key;
    var held = []; // captured before an id is known: never sent without one
    var queue = []; // identified, waiting for delivery (persisted)
    var explicit = null; // {uuid, hash}: from identify()
    var hashed = {}; // raw id -> SHA-256 hex
    var inflight = null; // the request under way: one at a time
    var inflightBatch = [];
    var inflightKeepalive = false;
    var queuedAt = new WeakMap(); // event -> capture time (neither sent nor stored)
    var timer = null;
    var timerAt = 0;
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
    function persist() {
      var s = storage();
      if (!s) return;
      if (queue.length > opts.maxStored) {
        log("warn", ["stored queue full: dropping", queue.length - opts.maxStored, "oldest events"]);
        queue = queue.slice(queue.length - opts.maxStored);
      }
      try {
        if (queue.length) s.setItem(storeKey, JSON.stringify(queue));
        else s.removeItem(storeKey);
      } catch (e) { log("warn", ["localStorage unavailable:", e.message]); }
    }
    function restore() {
      var s = storage();
      if (!s) return;
      try {
        var saved = JSON.parse(s.getItem(storeKey) || "[]");
        var oldest = now() - MAX_AGE_MS;
        for (var i = 0; i < saved.length; i++) {
          var e = saved[i];
          if (!e || !(e.timestamp > oldest)) continue;
          // Stored by an SDK before 1.1.0, which sent identify's traits as properties.
          if (e.type === "identify" && e.properties && !e.user_properties) {
            e.user_properties = e.properties;
            delete e.properties;
          }
          queue.push(e);
        }
      } catch (e) { log("warn", ["ignoring unreadable stored events"]); }
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
      for (var i = 0; i < held.length; i++) {
        held[i].uuid = id.uuid;
        if (id.hash) held[i].user_hash = id.hash;
        queue.push(held[i]);
      }
      held = [];
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
      timerAt = now() + wait;
      timer = later(function () { timer = null; flush(); }, wait);
    }
    function waiting() {
      return queue.filter(function (e) { return inflightBatch.indexOf(e) < 0; });
    }
    // The flush policy (docs/sdk.md): at once when flushAt events wait, else
    // flushInterval after the first was captured; heartbeats only stretch a
    // session, so they ride along or wait heartbeatFlush. Events restored from
    // an earlier page are due at once.
    function plan() {
      var list = waiting();
      if (!list.length) return;
      var due = Infinity;
      if (list.length >= opts.flushAt) due = now();
      for (var i = 0; i < list.length && due > now(); i++) {
        var at = queuedAt.get(list[i]);
        var hold = list[i].type === "heartbeat" ? opts.heartbeatFlush : opts.flushInterval;
        due = Math.min(due, at === undefined ? now() : at + hold);
      }
      if (timer && timerAt <= due) return; // an earlier flush is set already
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
      var s = storage();
      var kept = queue.filter(function (e) { return handed.indexOf(e) < 0; });
      try {
        if (s && kept.length) s.setItem(storeKey, JSON.stringify(kept));
        else if (s) s.removeItem(storeKey);
      } catch (e) { log("warn", ["localStorage unavailable:", e.message]); }
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
