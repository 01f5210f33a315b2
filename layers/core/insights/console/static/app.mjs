// The console's shell: sign-in, navigation and the hash router.
import { api, onKeyChange, secretKey, signIn, signOut } from "./api.mjs";
import { html, render, useEffect, useRef, useState } from "./html.mjs";
import { Imports } from "./imports.mjs";
import { Overview } from "./overview.mjs";
import { SegmentEditor, Segments } from "./segments.mjs";
import { Settings } from "./settings.mjs";
import { UserPage, Users } from "./users.mjs";

const PAGES = [
  ["overview", "Overview"],
  ["users", "Users"],
  ["segments", "Segments"],
  ["imports", "Imports"],
  ["settings", "Settings"],
];

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  return { page: parts[0] || "overview", arg: parts.slice(1).join("/") || null };
}

function useRoute() {
  const [route, setRoute] = useState(parseRoute());
  useEffect(() => {
    const changed = () => setRoute(parseRoute());
    addEventListener("hashchange", changed);
    return () => removeEventListener("hashchange", changed);
  }, []);
  return route;
}

function SignIn({ notice }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState(notice || null);
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    const value = key.trim();
    if (!value.startsWith("sk_")) {
      setError("That is not a secret key: it starts with sk_ (the write key, wk_..., cannot manage the account).");
      return;
    }
    setBusy(true);
    try {
      await api("GET", "/v1/account", undefined, value);
      signIn(value);
    } catch (failure) {
      setError(failure.status === 401 ? "This key is not valid for any account." : failure.message);
    } finally {
      setBusy(false);
    }
  };
  return html`
    <main class="signin" id="main">
      <form onSubmit=${submit} aria-describedby="signin-help">
        <h1>Insights console</h1>
        <p id="signin-help">Sign in with your account's <strong>secret key</strong>. It is kept in this tab only
          (session storage) and sent to this stack's API, nowhere else.</p>
        <label for="secret-key">Secret key</label>
        <input id="secret-key" type="password" autocomplete="off" spellcheck="false" required
          placeholder="sk_..." value=${key} onInput=${(e) => setKey(e.target.value)} />
        ${error && html`<p class="error" role="alert">${error}</p>`}
        <button type="submit" disabled=${busy}>${busy ? "Checking…" : "Sign in"}</button>
      </form>
    </main>`;
}

function Shell({ account }) {
  const route = useRoute();
  const main = useRef(null);
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => {
    setMenuOpen(false);
    const title = PAGES.find(([id]) => id === route.page)?.[1] || "Insights";
    document.title = `${title} · Insights console`;
  }, [route.page, route.arg]);
  let page;
  if (route.page === "users" && route.arg) page = html`<${UserPage} uuid=${route.arg} />`;
  else if (route.page === "users") page = html`<${Users} />`;
  else if (route.page === "segments" && route.arg) page = html`<${SegmentEditor} key=${route.arg} id=${route.arg} />`; // fresh state per segment
  else if (route.page === "segments") page = html`<${Segments} />`;
  else if (route.page === "imports") page = html`<${Imports} />`;
  else if (route.page === "settings") page = html`<${Settings} />`;
  else page = html`<${Overview} account=${account} />`;
  return html`
    <a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); main.current?.focus(); }}>Skip to content</a>
    <header class="top">
      <a class="brand" href="#/overview">Insights</a>
      <span class="account" title=${account.account_id}>${account.name || account.account_id}</span>
      <button class="menu" aria-expanded=${menuOpen} aria-controls="nav"
        onClick=${() => setMenuOpen(!menuOpen)}>Menu</button>
      <nav id="nav" class=${menuOpen ? "open" : ""} aria-label="Console">
        ${PAGES.map(([id, label]) => html`
          <a href=${`#/${id}`} aria-current=${route.page === id ? "page" : undefined}
            onClick=${() => setMenuOpen(false)}>${label}</a>`)}
        <button class="link" onClick=${() => signOut()}>Sign out</button>
      </nav>
    </header>
    <main id="main" tabindex="-1" ref=${main}>${page}</main>`;
}

function App() {
  const [key, setKey] = useState(secretKey());
  const [notice, setNotice] = useState(null);
  const [account, setAccount] = useState(null);
  useEffect(() => onKeyChange((next, reason) => {
    setKey(next);
    if (!next) { setAccount(null); setNotice(reason || null); }
  }), []);
  useEffect(() => {
    if (!key) return;
    api("GET", "/v1/account").then(setAccount).catch((error) => setNotice(error.message));
  }, [key]);
  if (!key) return html`<${SignIn} notice=${notice} />`;
  if (!account) return html`<p class="boot" role="status">${notice || "Loading the account…"}</p>`;
  return html`<${Shell} account=${account} />`;
}

const root = document.getElementById("app");
root.textContent = ""; // the "Loading" line: Preact appends, it does not replace
render(html`<${App} />`, root);
