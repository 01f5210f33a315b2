// The public API, called as whoever is signed in: a person through the
// account's OIDC provider (an HttpOnly session cookie this code never sees,
// sent by the browser), or the secret key (first setup, machines). The key
// lives in sessionStorage only: gone when the tab closes, never in a URL or
// a cookie, and readable only by this origin's scripts (the CSP allows no
// inline or foreign script). Every request carries X-Insights-Console: 1,
// which the API requires with the cookie (a page on another origin cannot
// send it without a CORS preflight, which the API refuses).

const KEY = "insights.secretKey";
const ACCOUNT = "insights.account"; // the last account signed in to: not a secret
const RANK = { viewer: 1, editor: 2, admin: 3 };
const listeners = new Set();
let me = null; // GET /v1/team/me of whoever is signed in

export function secretKey() {
  return sessionStorage.getItem(KEY);
}

// Who is signed in, and what they may do: pages show no control the role cannot use.
export function whoami() {
  return me;
}

export function can(role) {
  return !!me && (RANK[me.role] || 0) >= RANK[role];
}

export function setWhoami(who) {
  me = who;
  // Remembered for the next company sign-in (an account id is no secret); never the key.
  if (who?.via === "session") localStorage.setItem(ACCOUNT, who.account_id);
}

export function lastAccount() {
  return localStorage.getItem(ACCOUNT) || "";
}

export function signIn(key) {
  sessionStorage.setItem(KEY, key);
  listeners.forEach((f) => f(key));
}

// A person's session ends on the server too; a refused one (reason given) is already over.
export async function signOut(reason) {
  const session = me?.via === "session";
  sessionStorage.removeItem(KEY);
  me = null;
  if (session && !reason) await api("POST", "/v1/team/signout", undefined, null).catch(() => {});
  listeners.forEach((f) => f(null, reason));
}

export function onKeyChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body.message || `HTTP ${status}`);
    this.status = status;
    this.code = body.error || (status === 404 ? "not_found" : "error");
    this.field = body.field || body.path || null;
  }
}

const ENDED = {
  session_expired: "Your session has expired: sign in again.",
  session_ended: "Your session has ended (signed out elsewhere, or your role changed): sign in again.",
  invalid_session: "Your session is not valid any more: sign in again.",
};

export function endedBecause(code) {
  return ENDED[code] || null;
}

// Accepts a key to try before it is stored (sign-in); null: the session cookie only.
export async function api(method, path, body, key = secretKey()) {
  const headers = { "X-Insights-Console": "1" };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "same-origin",
    });
  } catch (error) {
    throw new ApiError(0, { error: "network", message: `The API did not answer (${error.message}).` });
  }
  const text = await response.text();
  let data = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = { message: text.slice(0, 200) };
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && me && key === secretKey()) {
      signOut(key ? "The secret key was refused (rotated or revoked): sign in again."
        : endedBecause(error.code) || "Sign in again.");
    }
    throw error;
  }
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body);
export const put = (path, body) => api("PUT", path, body);
export const patch = (path, body) => api("PATCH", path, body);
export const del = (path) => api("DELETE", path);

// A route that this stack does not have yet answers API Gateway's bare 404.
export function missingRoute(error) {
  return error instanceof ApiError && error.status === 404 && error.code === "not_found"
    && /^Not Found$/i.test(error.message);
}

export const enc = encodeURIComponent;

export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Number(seconds);
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 3600) return `${(s / 60).toFixed(1)} min`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

export function scalar(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}
