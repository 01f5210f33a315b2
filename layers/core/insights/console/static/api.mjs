// The public API, called with the secret key the user signed in with.
// The key lives in sessionStorage only: gone when the tab closes, never in a
// URL or a cookie, and readable only by this origin's scripts (the CSP allows
// no inline or foreign script).

const KEY = "insights.secretKey";
const listeners = new Set();

export function secretKey() {
  return sessionStorage.getItem(KEY);
}

export function signIn(key) {
  sessionStorage.setItem(KEY, key);
  listeners.forEach((f) => f(key));
}

export function signOut(reason) {
  sessionStorage.removeItem(KEY);
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

// Accepts a key to try before it is stored (sign-in).
export async function api(method, path, body, key = secretKey()) {
  const headers = { Authorization: `Bearer ${key}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
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
    if (response.status === 401 && key === secretKey()) {
      signOut("The secret key was refused (rotated or revoked): sign in again.");
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
