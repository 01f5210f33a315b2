// Users: search by uuid prefix with chosen columns (GET /v1/users), and one
// user's page (GET /v1/users/{uuid}, its segments).
import { duration, enc, get, missingRoute, scalar, when } from "./api.mjs";
import { html, useEffect, useMemo, useState } from "./html.mjs";
import { Name, Scroll, When } from "./widgets.mjs";

export const STANDARD = [
  ["first_seen", "First seen", when],
  ["last_seen", "Last seen", when],
  ["total_sessions", "Sessions", scalar],
  ["total_session_duration", "Time in app", duration],
  ["avg_session_duration", "Average session", duration],
  ["avg_time_between_sessions", "Average time between sessions", duration],
  ["country", "Country", scalar],
  ["region", "Region", scalar],
  ["city", "City", scalar],
  ["browser_name", "Browser", scalar],
  ["browser_version", "Browser version", scalar],
];
const COLUMNS_KEY = "insights.userColumns"; // a display preference, not a secret
const DEFAULT_COLUMNS = ["last_seen", "total_sessions", "country", "browser_name"];
const NUMERIC = new Set(["total_sessions", "total_session_duration", "avg_session_duration", "avg_time_between_sessions"]);

function cell(user, column) {
  if (column.startsWith("custom.")) return scalar(user.custom?.[column.slice(7)]?.value);
  const found = STANDARD.find(([name]) => name === column);
  if (found?.[2] === when) return html`<${When} iso=${user.standard?.[column]} />`;
  return found ? found[2](user.standard?.[column]) : "—";
}

function label(column) {
  return STANDARD.find(([name]) => name === column)?.[1] || column;
}

export function Users() {
  const [prefix, setPrefix] = useState("");
  const [query, setQuery] = useState({ prefix: "", cursors: [null] });
  const [state, setState] = useState({ loading: true });
  const [columns, setColumns] = useState(
    () => JSON.parse(localStorage.getItem(COLUMNS_KEY) || "null") || DEFAULT_COLUMNS,
  );
  const [choosing, setChoosing] = useState(false);
  const cursor = query.cursors[query.cursors.length - 1];
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    const params = new URLSearchParams({ limit: "25" });
    if (query.prefix) params.set("prefix", query.prefix);
    if (cursor) params.set("cursor", cursor);
    // `shown` is the query these rows answer: the caption and the pager read it,
    // never the query asked for since, so they cannot get out of step.
    get(`/v1/users?${params}`)
      .then((data) => live && setState({ data, shown: query }))
      .catch((error) => live && setState({ error }));
    return () => { live = false; };
  }, [query]);
  useEffect(() => localStorage.setItem(COLUMNS_KEY, JSON.stringify(columns)), [columns]);
  const customNames = useMemo(() => {
    const names = new Set(columns.filter((c) => c.startsWith("custom.")).map((c) => c.slice(7)));
    (state.data?.users || []).forEach((u) => Object.keys(u.custom || {}).forEach((n) => names.add(n)));
    return [...names].sort();
  }, [state.data]);
  const toggle = (column) =>
    setColumns(columns.includes(column) ? columns.filter((c) => c !== column) : [...columns, column]);
  const search = (event) => {
    event.preventDefault();
    setQuery({ prefix: prefix.trim(), cursors: [null] });
  };
  const openExact = () => {
    if (prefix.trim()) location.hash = `#/users/${enc(prefix.trim())}`;
  };
  const missing = state.error && missingRoute(state.error);
  const shown = state.shown;
  const page = (cursors) => setQuery({ ...shown, cursors });
  return html`
    <h1>Users</h1>
    <form class="toolbar" role="search" onSubmit=${search}>
      <label for="user-prefix">uuid or its beginning</label>
      <input id="user-prefix" value=${prefix} onInput=${(e) => setPrefix(e.target.value)}
        autocomplete="off" spellcheck="false" placeholder="e.g. user-4" />
      <button type="submit">Search</button>
      <button type="button" class="secondary" onClick=${openExact}>Open this uuid</button>
      <button type="button" class="secondary" aria-expanded=${choosing}
        onClick=${() => setChoosing(!choosing)}>Columns</button>
    </form>
    ${choosing && html`
      <fieldset class="columns">
        <legend>Columns</legend>
        ${[...STANDARD.map(([name]) => name), ...customNames.map((n) => `custom.${n}`)].map((column) => html`
          <label class="check"><input type="checkbox" checked=${columns.includes(column)}
            onChange=${() => toggle(column)} /> ${label(column)}</label>`)}
      </fieldset>`}
    ${missing && html`<p class="notice">Listing and prefix search are not available on this stack yet;
      "Open this uuid" opens a user by its exact uuid.</p>`}
    ${state.error && !missing && html`<p class="error" role="alert">${state.error.message}</p>`}
    ${state.loading && html`<p role="status">Loading users…</p>`}
    ${state.data && html`
      <${Scroll} label="Users">
        <table class="users" aria-busy=${state.loading ? "true" : "false"}>
          <caption>${shown.prefix ? `Users whose uuid starts with “${shown.prefix}”` : "Users, by uuid"}, page ${shown.cursors.length}</caption>
          <thead><tr><th scope="col">uuid</th>${columns.map((c) => html`<th scope="col" class=${NUMERIC.has(c) ? "num" : undefined}>${label(c)}</th>`)}</tr></thead>
          <tbody>
            ${state.data.users.map((u) => html`
              <tr><th scope="row"><a href=${`#/users/${enc(u.uuid)}`}>${u.uuid}</a></th>
                ${columns.map((c) => html`<td class=${NUMERIC.has(c) ? "num" : undefined}>${cell(u, c)}</td>`)}</tr>`)}
            ${!state.data.users.length && html`<tr><td colspan=${columns.length + 1}>No user matches.</td></tr>`}
          </tbody>
        </table>
      <//>
      <div class="pager">
        <button class="secondary" disabled=${state.loading || shown.cursors.length < 2}
          onClick=${() => page(shown.cursors.slice(0, -1))}>Previous page</button>
        <button class="secondary" disabled=${state.loading || !state.data.next_cursor}
          onClick=${() => page([...shown.cursors, state.data.next_cursor])}>Next page</button>
      </div>`}`;
}

export function UserPage({ uuid }) {
  const [state, setState] = useState({ loading: true });
  useEffect(() => {
    let live = true;
    setState({ loading: true });
    Promise.all([
      get(`/v1/users/${enc(uuid)}`),
      get(`/v1/users/${enc(uuid)}/segments`).catch((error) => ({ error })),
      get("/v1/segments").catch(() => ({ segments: [] })),
    ])
      .then(([user, member, all]) => live && setState({ user, member, all: all.segments }))
      .catch((error) => live && setState({ error }));
    return () => { live = false; };
  }, [uuid]);
  const back = html`<p><a href="#/users">← Users</a></p>`;
  if (state.loading) return html`${back}<p role="status">Loading ${uuid}…</p>`;
  if (state.error) {
    return html`${back}<h1>${uuid}</h1><p class="error" role="alert">${state.error.message}</p>`;
  }
  const { user, member, all } = state;
  const names = Object.fromEntries(all.map((s) => [s.id, s.name]));
  const custom = Object.entries(user.custom || {}).sort(([a], [b]) => a.localeCompare(b));
  return html`
    ${back}
    <h1 class="uuid">${user.uuid}</h1>
    <div class="columns-2">
      <section aria-labelledby="standard">
        <h2 id="standard">Standard attributes</h2>
        <table class="kv">
          <tbody>${STANDARD.map(([name, text, format]) => html`
            <tr><th scope="row">${text}<br /><${Name} name=${name} /></th><td>${format(user.standard?.[name])}</td></tr>`)}</tbody>
        </table>
      </section>
      <section aria-labelledby="custom">
        <h2 id="custom">Custom attributes</h2>
        ${custom.length ? html`
          <${Scroll} label="Custom attributes"><table class="custom">
            <thead><tr><th scope="col">Name</th><th scope="col">Value</th><th scope="col">Source</th><th scope="col">Updated</th></tr></thead>
            <tbody>${custom.map(([name, v]) => html`
              <tr><th scope="row"><${Name} name=${name} /></th><td>${scalar(v.value)}</td><td>${v.source}</td><td><${When} iso=${v.updated_at} /></td></tr>`)}</tbody>
          </table><//>` : html`<p>None.</p>`}
        <h2 id="member">Segments</h2>
        ${member.error ? html`<p class="error">${member.error.message}</p>` : member.segments.length ? html`
          <ul class="segments-of">${member.segments.map((id) => html`
            <li><a href=${`#/segments/${enc(id)}`}>${names[id] || id}</a></li>`)}</ul>`
          : html`<p>In no segment.</p>`}
      </section>
    </div>`;
}
