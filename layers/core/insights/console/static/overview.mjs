// Overview: users, new users, sessions and median session length per day
// (GET /v1/stats), and the attribute catalogue (GET /v1/attributes).
import { get, missingRoute, scalar } from "./api.mjs";
import { BarChart } from "./charts.mjs";
import { html, useEffect, useState } from "./html.mjs";
import { Name, Scroll } from "./widgets.mjs";

const RANGES = [30, 90, 180];

function useLoad(path) {
  const [state, setState] = useState({ loading: true });
  useEffect(() => {
    let live = true;
    setState({ loading: true });
    get(path)
      .then((data) => live && setState({ data }))
      .catch((error) => live && setState({ error }));
    return () => { live = false; };
  }, [path]);
  return state;
}

function Problem({ error, what }) {
  if (missingRoute(error)) {
    return html`<p class="notice">${what} is not available on this stack yet (its API route is missing).</p>`;
  }
  return html`<p class="error" role="alert">${what} could not be loaded: ${error.message}</p>`;
}

function Stats({ days }) {
  const { data, error, loading } = useLoad(`/v1/stats?days=${days}`);
  if (loading) return html`<p role="status">Loading statistics…</p>`;
  if (error) return html`<${Problem} error=${error} what="Statistics" />`;
  const series = (key) => data.days.map((d) => ({ date: d.date, value: d[key] }));
  const newUsers = data.days.reduce((a, d) => a + d.new_users, 0);
  const sessions = data.days.reduce((a, d) => a + d.sessions, 0);
  return html`
    <dl class="figures">
      <div><dt>Users now</dt><dd data-figure="users">${data.users.toLocaleString("en")}</dd></div>
      <div><dt>New users, ${days} days</dt><dd data-figure="new_users">${newUsers.toLocaleString("en")}</dd></div>
      <div><dt>Sessions, ${days} days</dt><dd data-figure="sessions">${sessions.toLocaleString("en")}</dd></div>
    </dl>
    <div class="charts">
      <${BarChart} id="chart-new-users" title="New users per day" points=${series("new_users")} />
      <${BarChart} id="chart-sessions" title="Sessions per day" points=${series("sessions")} />
      <${BarChart} id="chart-median" title="Median session (minutes)" unit=" min" summable=${false}
        points=${data.days.map((d) => ({ date: d.date, value: d.median_session_seconds === null ? null : d.median_session_seconds / 60 }))}
        format=${(v) => (v >= 10 || v === 0 ? v.toFixed(0) : v.toFixed(1))} />
    </div>`;
}

function Catalogue() {
  const { data, error, loading } = useLoad("/v1/attributes");
  if (loading) return html`<p role="status">Loading attributes…</p>`;
  if (error) return html`<${Problem} error=${error} what="The attribute catalogue" />`;
  if (!data.attributes.length) return html`<p>No custom attribute yet: send event properties or import a file.</p>`;
  return html`
    <${Scroll} label="Custom attributes">
      <table class="catalogue">
        <caption>${data.next_cursor
          ? `The first ${data.attributes.length.toLocaleString("en")} custom attributes by name (GET /v1/attributes pages the rest)`
          : "Every custom attribute seen in this account"}</caption>
        <thead><tr><th scope="col">Name</th><th scope="col">Sources</th><th scope="col">Types</th>
          <th scope="col" class="num">Users</th><th scope="col">Examples</th></tr></thead>
        <tbody>${data.attributes.map((a) => html`
          <tr>
            <th scope="row"><${Name} name=${a.name} /></th>
            <td>${a.sources.join(", ")}</td>
            <td>${a.types.join(", ")}</td>
            <td class="num">${a.users.toLocaleString("en")}</td>
            <td>${a.examples.map((e) => html`<span class="chip" title=${scalar(e)}>${scalar(e)}</span>`)}</td>
          </tr>`)}</tbody>
      </table>
    <//>`;
}

export function Overview({ account }) {
  const [days, setDays] = useState(30);
  return html`
    <h1>Overview</h1>
    <p class="lead">Account <strong>${account.name}</strong> <code>${account.account_id}</code></p>
    <section aria-labelledby="activity">
      <div class="section-head">
        <h2 id="activity">Activity</h2>
        <div role="group" aria-label="Period" class="segmented">
          ${RANGES.map((n) => html`
            <button aria-pressed=${days === n} onClick=${() => setDays(n)}>${n} days</button>`)}
        </div>
      </div>
      <${Stats} days=${days} />
    </section>
    <section aria-labelledby="attributes">
      <h2 id="attributes">Attributes</h2>
      <${Catalogue} />
    </section>`;
}
