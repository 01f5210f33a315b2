// Team (admins): the sign-in provider, roles assigned by email, the audit log.
// GET/PUT/DELETE /v1/team/provider, /v1/team/members, GET /v1/audit.
import { del, enc, get, put, whoami } from "./api.mjs";
import { html, useEffect, useState } from "./html.mjs";
import { Scroll, When } from "./widgets.mjs";

const ROLES = ["viewer", "editor", "admin"];
const list = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);

function toDraft(provider) {
  const p = provider || {};
  const groups = p.role_groups || {};
  return {
    issuer: p.issuer || "",
    client_id: p.client_id || "",
    client_secret: "",
    redirect_uri: p.redirect_uri || `${location.origin}/v1/team/callback`,
    allowed_domains: (p.allowed_domains || []).join(", "),
    group_claim: p.group_claim || "",
    viewer: (groups.viewer || []).join(", "),
    editor: (groups.editor || []).join(", "),
    admin: (groups.admin || []).join(", "),
    default_role: p.default_role || "",
    session_minutes: p.session_minutes || 240,
  };
}

function fromDraft(d) {
  const body = {
    issuer: d.issuer.trim(),
    client_id: d.client_id.trim(),
    redirect_uri: d.redirect_uri.trim(),
    allowed_domains: list(d.allowed_domains),
    group_claim: d.group_claim.trim() || null,
    role_groups: Object.fromEntries(ROLES.map((r) => [r, list(d[r])]).filter(([, g]) => g.length)),
    default_role: d.default_role || null,
    session_minutes: Number(d.session_minutes),
  };
  if (d.client_secret) body.client_secret = d.client_secret; // left out: the stored one stays
  return body;
}

function Provider({ account }) {
  const [state, setState] = useState({ loading: true });
  const [draft, setDraft] = useState(null);
  const [result, setResult] = useState(null);
  useEffect(() => {
    get("/v1/team/provider")
      .then((data) => { setState({ data }); setDraft(toDraft(data.provider)); })
      .catch((error) => setState({ error }));
  }, []);
  if (state.loading) return html`<p role="status">Loading…</p>`;
  if (state.error) return html`<p class="error" role="alert">${state.error.message}</p>`;
  const set = (name) => (e) => setDraft({ ...draft, [name]: e.target.value });
  const save = async (event) => {
    event.preventDefault();
    try {
      const data = await put("/v1/team/provider", fromDraft(draft));
      setState({ data }); setDraft(toDraft(data.provider));
      setResult({ ok: "Saved. People sign in with the link below." });
    } catch (error) {
      setResult({ error });
    }
  };
  const remove = async () => {
    try {
      await del("/v1/team/provider");
      setState({ data: { configured: false } }); setDraft(toDraft(null));
      setResult({ ok: "Removed: only the secret key signs in now." });
    } catch (error) {
      setResult({ error });
    }
  };
  const link = `${location.origin}/#/signin/${enc(account.account_id)}`;
  const field = (name, label, help, attrs = {}) => html`
    <label for=${`tp-${name}`}>${label}</label>
    <input id=${`tp-${name}`} value=${draft[name]} onInput=${set(name)} aria-describedby=${help ? `tp-${name}-help` : undefined} ...${attrs} />
    ${help && html`<small id=${`tp-${name}-help`} class="muted">${help}</small>`}`;
  return html`
    ${state.data.configured && html`<p>Sign-in link for your team: <code data-signin-link>${link}</code></p>`}
    <form class="settings team-form" onSubmit=${save} aria-label="Sign-in provider">
      ${field("issuer", "Issuer", "e.g. https://acme.okta.com/oauth2/default", { required: true })}
      ${field("client_id", "Client id", null, { required: true })}
      ${field("client_secret", "Client secret", state.data.provider?.has_client_secret
        ? "Stored (never shown). Type a new one to replace it." : "Optional: kept in Secrets Manager, never shown.",
        { type: "password", autocomplete: "off" })}
      ${field("redirect_uri", "Redirect URI (register exactly this at the provider)", null, { required: true })}
      ${field("allowed_domains", "Allowed email domains (comma-separated)", "Only verified emails of these domains get in.")}
      ${field("group_claim", "Group claim", "The ID token's claim listing the person's groups, e.g. groups or roles.")}
      <fieldset class="role-groups"><legend>Groups that give each role (comma-separated)</legend>
        ${ROLES.map((r) => html`<label for=${`tp-${r}`}>${r}</label>
          <input id=${`tp-${r}`} value=${draft[r]} onInput=${set(r)} />`)}
      </fieldset>
      <label for="tp-default_role">Role of everyone else let in</label>
      <select id="tp-default_role" value=${draft.default_role} onChange=${set("default_role")}
        aria-describedby="tp-default_role-help">
        <option value="">none</option>
        ${ROLES.map((r) => html`<option value=${r}>${r}</option>`)}
      </select>
      <small id="tp-default_role-help" class="muted">None: only people a group or an assignment gives a role get in.</small>
      ${field("session_minutes", "Session length (minutes, 15–720)", null, { type: "number", min: 15, max: 720, required: true })}
      <p class="actions"><button type="submit">Save the provider</button>
        ${state.data.configured && html`<button type="button" class="danger secondary" onClick=${remove}>Remove the provider</button>`}</p>
      <div aria-live="polite">
        ${result?.ok && html`<p class="ok">${result.ok}</p>`}
        ${result?.error && html`<p class="error" role="alert">${result.error.message}${result.error.field ? ` (${result.error.field})` : ""}</p>`}
      </div>
    </form>`;
}

function Members() {
  const [state, setState] = useState({ loading: true });
  const [email, setEmail] = useState("");
  const [role, setRole] = useState("viewer");
  const [result, setResult] = useState(null);
  const load = () => get("/v1/team/members").then((data) => setState({ data })).catch((error) => setState({ error }));
  useEffect(() => { load(); }, []);
  const assign = async (event) => {
    event.preventDefault();
    try {
      await put(`/v1/team/members/${enc(email.trim())}`, { role });
      setResult({ ok: `${email.trim()} is ${role} from their next sign-in.` }); setEmail(""); load();
    } catch (error) {
      setResult({ error });
    }
  };
  const remove = async (who) => {
    try {
      await del(`/v1/team/members/${enc(who)}`);
      setResult({ ok: `${who}'s assigned role is gone; their groups decide again.` }); load();
    } catch (error) {
      setResult({ error });
    }
  };
  return html`
    <p class="muted">A role assigned here wins over the provider's groups. The person's open sessions end.</p>
    ${state.error && html`<p class="error" role="alert">${state.error.message}</p>`}
    ${state.data && (state.data.members.length ? html`
      <${Scroll} label="Members"><table class="members-table">
        <thead><tr><th scope="col">Email</th><th scope="col">Role</th><th scope="col">Assigned by</th><th scope="col">When</th><th scope="col"><span class="sr-only">Remove</span></th></tr></thead>
        <tbody>${state.data.members.map((m) => html`<tr>
          <th scope="row">${m.email}</th><td>${m.role}</td><td>${m.assigned_by}</td><td><${When} iso=${m.updated_at} /></td>
          <td><button class="secondary" aria-label=${`Remove ${m.email}'s role`} onClick=${() => remove(m.email)}>Remove</button></td></tr>`)}</tbody>
      </table><//>` : html`<p>No role assigned here yet.</p>`)}
    <form class="settings team-form" onSubmit=${assign} aria-label="Assign a role">
      <label for="member-email">Email</label>
      <input id="member-email" type="email" required value=${email} onInput=${(e) => setEmail(e.target.value)} />
      <label for="member-role">Role</label>
      <select id="member-role" value=${role} onChange=${(e) => setRole(e.target.value)}>
        ${ROLES.map((r) => html`<option value=${r}>${r}</option>`)}</select>
      <button type="submit">Assign the role</button>
      <div aria-live="polite">
        ${result?.ok && html`<p class="ok">${result.ok}</p>`}
        ${result?.error && html`<p class="error" role="alert">${result.error.message}</p>`}
      </div>
    </form>`;
}

function Audit() {
  const [pages, setPages] = useState([]);
  const [state, setState] = useState({ loading: true });
  const more = (cursor) => {
    setState({ loading: true });
    get(`/v1/audit?limit=25${cursor ? `&cursor=${enc(cursor)}` : ""}`)
      .then((data) => { setPages((p) => [...p, ...data.entries]); setState({ next: data.next_cursor, days: data.retention_days }); })
      .catch((error) => setState({ error }));
  };
  useEffect(() => { more(null); }, []);
  return html`
    <p class="muted">Every change and every refusal through the API, and every console sign-in, for ${state.days || 90} days.
      Where from: the network, never the address.</p>
    ${state.error && html`<p class="error" role="alert">${state.error.message}</p>`}
    <${Scroll} label="Audit log"><table class="audit">
      <thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">Role</th><th scope="col">What</th>
        <th scope="col" class="num">Result</th><th scope="col">From</th></tr></thead>
      <tbody>${pages.map((e) => html`<tr data-action=${e.action}>
        <td><${When} iso=${e.at} /></td><th scope="row">${e.actor}</th><td>${e.role || "—"}</td>
        <td><code>${e.action === "sign_in" ? "sign in" : `${e.action.split(" ")[0]} ${e.path || e.action}`}</code>${e.detail ? html` <span class="muted">${e.detail}</span>` : ""}</td>
        <td class="num"><span class=${e.status < 300 ? "ok" : "error"}>${e.status}</span></td><td>${e.network || "—"}</td></tr>`)}</tbody>
    </table><//>
    ${state.loading && html`<p role="status">Loading…</p>`}
    ${state.next && html`<p><button class="secondary" onClick=${() => more(state.next)}>Older entries</button></p>`}`;
}

export function Team({ account }) {
  const me = whoami();
  return html`
    <h1>Team</h1>
    <p>People sign in with your identity provider and get a role: <strong>viewer</strong> (users, segments, imports,
      figures), <strong>editor</strong> (+ segments, imports, integrations), <strong>admin</strong> (+ keys, identity
      verification, erasure, the team). ${me?.via === "secret_key" ? "The secret key acts as admin." : ""}</p>
    <section aria-labelledby="team-provider"><h2 id="team-provider">Sign-in provider</h2><${Provider} account=${account} /></section>
    <section aria-labelledby="team-members"><h2 id="team-members">Roles assigned here</h2><${Members} /></section>
    <section aria-labelledby="team-audit"><h2 id="team-audit">Audit log</h2><${Audit} /></section>`;
}
