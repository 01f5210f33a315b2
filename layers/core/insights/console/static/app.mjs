// The console's shell: sign-in, navigation and the hash router.
import { api, can, endedBecause, lastAccount, onKeyChange, setWhoami, signIn, signOut } from "./api.mjs";
import { html, render, useEffect, useRef, useState } from "./html.mjs";
import { Imports } from "./imports.mjs";
import { Overview } from "./overview.mjs";
import { SegmentEditor, Segments } from "./segments.mjs";
import { Settings } from "./settings.mjs";
import { Team } from "./team.mjs";
import { UserPage, Users } from "./users.mjs";

// [id, label, the role that sees it]: a page a role cannot use is not offered.
const PAGES = [
  ["overview", "Overview", "viewer"],
  ["users", "Users", "viewer"],
  ["segments", "Segments", "viewer"],
  ["imports", "Imports", "viewer"],
  ["settings", "Settings", "editor"],
  ["team", "Team", "admin"],
];

// The sign-in's refusals (GET /v1/team/callback sends /#/signin-error/<code>).
const SIGNIN_ERRORS = {
  not_configured: "This account has no sign-in provider yet: an admin sets it up under Team (signed in with the secret key).",
  unknown_account: "There is no account with that id on this stack.",
  wrong_origin: "Sign in from the console's own address: the provider sends you back there.",
  flow_expired: "That sign-in took too long or was already used: start again.",
  state_mismatch: "That sign-in was not started in this browser: start again from here.",
  denied: "The sign-in was cancelled at your identity provider.",
  idp_error: "The identity provider could not complete the sign-in; try again, or ask an admin to check the provider.",
  pkce_unsupported: "The identity provider does not offer PKCE with S256, which the console requires.",
  token_rejected: "The identity provider's answer did not verify; ask an admin to check the provider's settings.",
  nonce_mismatch: "The sign-in's answer belonged to another attempt: start again.",
  no_email: "Your identity provider sent no email address for you.",
  email_not_verified: "Your identity provider says your email address is not verified.",
  domain_not_allowed: "Your email's domain is not one this account lets in.",
  no_role: "You signed in, but have no role in this account: ask an admin for one.",
};

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

function SignIn({ notice, account: linked }) {
  const [key, setKey] = useState("");
  const [account, setAccount] = useState(linked || lastAccount());
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const sso = () => {
    const id = account.trim();
    if (!id) { setError("Enter the account id (your admin's sign-in link fills it in)."); return; }
    // A navigation, not a call: the identity provider's page comes next.
    location.assign(`/v1/team/signin?account=${encodeURIComponent(id)}`);
  };
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
      <div class="panels">
        <h1>Insights console</h1>
        ${notice && html`<p class="error" role="alert">${notice}</p>`}
        <section class="panel" aria-labelledby="sso-title">
          <h2 id="sso-title">Sign in with your company account</h2>
          <p>Through your company's identity provider. Your admin's sign-in link fills in the account.</p>
          <label for="account-id">Account id</label>
          <input id="account-id" autocomplete="off" spellcheck="false" placeholder="acc_..."
            value=${account} onInput=${(e) => setAccount(e.target.value)} />
          <button type="button" onClick=${sso}>Sign in with your company account</button>
        </section>
        <form class="panel" onSubmit=${submit} aria-labelledby="key-title" aria-describedby="signin-help">
          <h2 id="key-title">Sign in with the secret key</h2>
          <p id="signin-help">For the first setup, and for whoever holds the account's <strong>secret key</strong> (it
            acts as admin). It is kept in this tab only (session storage) and sent to this stack's API, nowhere else.</p>
          <label for="secret-key">Secret key</label>
          <input id="secret-key" type="password" autocomplete="off" spellcheck="false" required
            placeholder="sk_..." value=${key} onInput=${(e) => setKey(e.target.value)} />
          ${error && html`<p class="error" role="alert">${error}</p>`}
          <button type="submit" disabled=${busy}>${busy ? "Checking…" : "Sign in"}</button>
        </form>
      </div>
    </main>`;
}

function Credential({ me }) {
  const who = me.via === "secret_key" ? "Secret key" : me.name || me.email;
  const how = me.via === "secret_key" ? "signed in with the account's secret key" : `signed in as ${me.email} through your identity provider`;
  return html`<span class="who" title=${how} data-credential=${me.via}>
    ${who} · <span data-role>${me.role}</span>${me.via === "session" ? " · SSO" : ""}</span>`;
}

function Shell({ me }) {
  const account = { account_id: me.account_id, name: me.account_name };
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
  else if (route.page === "settings" && can("editor")) page = html`<${Settings} />`;
  else if (route.page === "team" && can("admin")) page = html`<${Team} account=${account} />`;
  else page = html`<${Overview} account=${account} />`;
  return html`
    <a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); main.current?.focus(); }}>Skip to content</a>
    <header class="top">
      <a class="brand" href="#/overview">Insights</a>
      <span class="account" title=${account.account_id}>${account.name || account.account_id}</span>
      <${Credential} me=${me} />
      <button class="menu" aria-expanded=${menuOpen} aria-controls="nav"
        onClick=${() => setMenuOpen(!menuOpen)}>Menu</button>
      <nav id="nav" class=${menuOpen ? "open" : ""} aria-label="Console">
        ${PAGES.filter(([, , role]) => can(role)).map(([id, label]) => html`
          <a href=${`#/${id}`} aria-current=${route.page === id ? "page" : undefined}
            onClick=${() => setMenuOpen(false)}>${label}</a>`)}
        <button class="link" onClick=${() => signOut()}>Sign out</button>
      </nav>
    </header>
    <main id="main" tabindex="-1" ref=${main}>${page}</main>`;
}

function App() {
  const [me, setMe] = useState(undefined); // undefined: asking; null: nobody
  const [notice, setNotice] = useState(null);
  const route = useRoute();
  const ask = () => api("GET", "/v1/team/me")
    .then((who) => {
      setWhoami(who.signed_in ? who : null);
      setMe(who.signed_in ? who : null);
      if (!who.signed_in) setNotice(endedBecause(who.reason));
    })
    .catch((error) => { setWhoami(null); setMe(null); setNotice(error.message); });
  useEffect(() => {
    ask();
    return onKeyChange((next, reason) => {
      if (next) { ask(); return; } // a new key (signed in, or rotated): the page stays
      setMe(null);
      setNotice(reason || null);
    });
  }, []);
  if (me === undefined) return html`<p class="boot" role="status">Loading the account…</p>`;
  if (!me) {
    const refused = route.page === "signin-error" ? SIGNIN_ERRORS[route.arg] || SIGNIN_ERRORS.idp_error : null;
    return html`<${SignIn} notice=${refused || notice} account=${route.page === "signin" ? route.arg : null} />`;
  }
  if (route.page.startsWith("signin")) location.hash = "#/overview";
  return html`<${Shell} me=${me} />`;
}

const root = document.getElementById("app");
root.textContent = ""; // the "Loading" line: Preact appends, it does not replace
render(html`<${App} />`, root);
