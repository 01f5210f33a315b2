// Settings: account settings (PATCH /v1/account), keys (secret key rotation)
// and the integrations' status. Editors see the integrations; admins all of it.
import { can, get, missingRoute, patch, post, signIn, when, whoami } from "./api.mjs";
import { html, useEffect, useState } from "./html.mjs";

function AccountSettings() {
  const [account, setAccount] = useState(null);
  const [draft, setDraft] = useState(null);
  const [result, setResult] = useState(null);
  useEffect(() => {
    get("/v1/account").then((a) => { setAccount(a); setDraft(toDraft(a.settings)); }).catch((error) => setResult({ error }));
  }, []);
  if (!draft) return result?.error ? html`<p class="error">${result.error.message}</p>` : html`<p role="status">Loading…</p>`;
  const save = async (event) => {
    event.preventDefault();
    const body = {
      unique_user_ids: draft.unique_user_ids,
      session_timeout_minutes: Number(draft.session_timeout_minutes),
      backfill_days: Number(draft.backfill_days),
    };
    for (const name of LISTS) {
      if (name in account.settings) body[name] = draft[name].split(",").map((s) => s.trim()).filter(Boolean);
    }
    try {
      const saved = await patch("/v1/account", body);
      setAccount(saved); setDraft(toDraft(saved.settings)); setResult({ ok: "Saved. Every function uses it within 30 seconds." });
    } catch (error) {
      setResult({ error });
    }
  };
  const set = (name) => (e) => setDraft({ ...draft, [name]: e.target.type === "checkbox" ? e.target.checked : e.target.value });
  return html`
    <form class="settings" onSubmit=${save}>
      <p>Account <strong>${account.name}</strong>, id <code>${account.account_id}</code></p>
      <label class="check"><input type="checkbox" checked=${draft.unique_user_ids} onChange=${set("unique_user_ids")} />
        Keep user records (unique user ids)</label>
      <label for="set-timeout">Session timeout (minutes, 1–240)</label>
      <input id="set-timeout" type="number" min="1" max="240" required value=${draft.session_timeout_minutes} onInput=${set("session_timeout_minutes")} />
      <label for="set-backfill">Backfill window (days, 0–365): how old an event may be</label>
      <input id="set-backfill" type="number" min="0" max="365" required value=${draft.backfill_days} onInput=${set("backfill_days")} />
      ${"event_properties_as_attributes" in account.settings && html`
        <label for="set-kept-props">Event properties kept as user attributes (comma-separated names, every door)</label>
        <input id="set-kept-props" value=${draft.event_properties_as_attributes} onInput=${set("event_properties_as_attributes")} />`}
      ${"protected_attributes" in account.settings && html`
        <label for="set-protected">Protected attributes: only imports, integrations and identity providers set them,
          never a browser or app with the write key (comma-separated; <code>idp.*</code> is a prefix, <code>*</code> all)</label>
        <input id="set-protected" value=${draft.protected_attributes} onInput=${set("protected_attributes")} />`}
      <button type="submit">Save settings</button>
      <div aria-live="polite">
        ${result?.ok && html`<p class="ok">${result.ok}</p>`}
        ${result?.error && html`<p class="error" role="alert">${result.error.message}${result.error.field ? ` (${result.error.field})` : ""}</p>`}
      </div>
    </form>`;
}

// Settings that are lists of names, edited as comma-separated text.
const LISTS = ["event_properties_as_attributes", "protected_attributes"];

function toDraft(settings) {
  const draft = { ...settings };
  for (const name of LISTS) draft[name] = (settings[name] || []).join(", ");
  return draft;
}

function Keys({ account }) {
  const [state, setState] = useState({});
  const [confirm, setConfirm] = useState(false);
  const rotate = async () => {
    setConfirm(false);
    setState({ busy: true });
    try {
      const { secret_key: key } = await post("/v1/account/secret-key");
      signIn(key); // the old key stopped working: this tab goes on with the new one
      setState({ key });
    } catch (error) {
      setState({ error });
    }
  };
  const me = whoami();
  return html`
    <p data-credential-in-use>${me?.via === "secret_key"
      ? html`This tab is signed in with the account's <strong>secret key</strong> (it acts as admin).`
      : html`You are signed in as <strong>${me?.email}</strong> (${me?.role}) through your identity provider;
          the secret key stays for machines (the CLI, backends) and the first setup.`}</p>
    <dl class="keys">
      <dt>Write key (public: events only)</dt>
      <dd>${account.write_key ? html`<code>${account.write_key}</code>`
        : html`Stored hashed: it was shown once, when the account was created. The browser SDK's tag carries it.`}</dd>
      <dt>Secret key (management)</dt>
      <dd>Stored hashed. Rotating it makes a new one and the current one stops working at once, for every
        client using it; this tab switches to the new one.</dd>
    </dl>
    ${whoami()?.via !== "secret_key"
      ? html`<p class="muted" data-key-rotation>Rotating the secret key takes the secret key itself: sign in with it
          (Sign out, then “Sign in with the secret key”) to rotate it.</p>`
      : confirm
      ? html`<p><button class="danger" onClick=${rotate}>Rotate now: the current secret key stops working</button>
          <button class="secondary" onClick=${() => setConfirm(false)}>Cancel</button></p>`
      : html`<p><button class="secondary" onClick=${() => setConfirm(true)} disabled=${state.busy}>Rotate the secret key…</button></p>`}
    <div aria-live="polite">
      ${state.key && html`
        <div class="new-key">
          <p class="ok">New secret key (shown once, copy it now):</p>
          <p><code data-new-secret-key>${state.key}</code></p>
        </div>`}
      ${state.error && html`<p class="error" role="alert">${missingRoute(state.error)
        ? "Key rotation is not available on this stack yet (its API route is missing)."
        : state.error.message}</p>`}
    </div>`;
}

function Status({ label, path, describe }) {
  const [state, setState] = useState({ loading: true });
  useEffect(() => {
    get(path).then((data) => setState({ data })).catch((error) => setState({ error }));
  }, [path]);
  let text;
  if (state.loading) text = "checking…";
  else if (state.error && missingRoute(state.error)) text = "not available on this stack";
  else if (state.error) text = `unknown (${state.error.message})`;
  else text = describe(state.data);
  return html`<tr><th scope="row">${label}</th><td>${text}</td></tr>`;
}

// The integrations' status routes answer 200 when nothing is set up (a 404
// from the resource itself would be logged by the browser as an error).
function salesforce(data) {
  if (!data.configured) return "not connected";
  const status = data.connection.status || {};
  if (status.last_error) return `error: ${status.last_error} (${when(status.last_error_at)})`;
  if (status.syncing) return "syncing now";
  return `connected; last sync ${when(status.last_success_at)}, next ${when(status.next_sync_at)}`;
}

export function Settings() {
  const [account, setAccount] = useState(null);
  const admin = can("admin");
  useEffect(() => { get("/v1/account").then(setAccount).catch(() => {}); }, []);
  return html`
    <h1>Settings</h1>
    ${admin && html`<section aria-labelledby="account-settings"><h2 id="account-settings">Account</h2><${AccountSettings} /></section>`}
    ${admin && html`<section aria-labelledby="keys"><h2 id="keys">Keys</h2>${account && html`<${Keys} account=${account} />`}</section>`}
    <section aria-labelledby="integrations"><h2 id="integrations">Integrations</h2>
      <table class="kv"><tbody>
        <tr><th scope="row">S3 drop</th><td>${account && html`put files at <code>imports/${account.account_id}/</code> in the stack's
          imports bucket (stack output <code>ImportsBucketName</code>)`}</td></tr>
        <${Status} label="Salesforce" path="/v1/integrations/salesforce/status" describe=${salesforce} />
        <${Status} label="SCIM (IdP provisioning)" path="/v1/idp/scim/tokens"
          describe=${(d) => ((d.tokens || []).length ? `${d.tokens.length} token(s) issued` : "no token issued")} />
        <${Status} label="OIDC sign-in" path="/v1/idp/oidc/status"
          describe=${(d) => (d.configured ? `issuer ${d.config.issuer}` : "not configured")} />
        ${admin && html`<${Status} label="Identity verification" path="/v1/account/identity"
          describe=${(d) => (d.verification ? "on" : "off") + (d.secret_created_at ? `, secret created ${when(d.secret_created_at)}` : ", no secret yet")} />`}
      </tbody></table>
    </section>`;
}
