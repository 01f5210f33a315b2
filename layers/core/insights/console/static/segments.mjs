// Segments: the list, and the builder (live count, first members and plan
// from POST /v1/segments/preview; save, edit, delete; CSV export).
import { can, del, enc, get, post, put, when } from "./api.mjs";
import { html, useEffect, useMemo, useRef, useState } from "./html.mjs";
import {
  LIST_OPS, NO_VALUE_OPS, OPS, RELATIVE_OPS, TEXT_OPS, UNITS,
  countConditions, firstProblem, kindOf, newCondition, newGroup, opsFor, rootFromApi, toApi,
} from "./rules.mjs";
import { STANDARD } from "./users.mjs";
import { Scroll, When } from "./widgets.mjs";

const MAX_DEPTH = 5;
const PREVIEW_DELAY_MS = 350;

// A count too large for one request answers in parts (complete: false,
// count_so_far, next_cursor): follow the cursor until it is complete,
// telling `onPart` each count so far, unless `live()` says nobody looks.
async function countSegment(id, onPart, live) {
  let answer = await get(`/v1/segments/${enc(id)}/count`);
  while (!answer.complete && live()) {
    onPart(answer);
    answer = await get(`/v1/segments/${enc(id)}/count?cursor=${encodeURIComponent(answer.next_cursor)}`);
  }
  return answer;
}

const soFar = (n) => `${n.toLocaleString("en")}+`;

// The list counts a few segments at a time: each count is a SegmentsFunction
// invocation of up to ~16 s, and a list of 100 large segments counted at once
// would hold 100 of them (and the browser's connections) together.
export const COUNTS_AT_ONCE = 4;
async function eachAtMost(items, limit, fn) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export function Segments() {
  const [state, setState] = useState({ loading: true });
  const [counts, setCounts] = useState({});
  useEffect(() => {
    let live = true;
    const show = (id, text, counting = false) => live && setCounts((all) => ({ ...all, [id]: { text, counting } }));
    get("/v1/segments")
      .then((data) => {
        if (!live) return;
        setState({ data });
        eachAtMost(data.segments, COUNTS_AT_ONCE, (s) => live &&
          countSegment(s.id, (part) => show(s.id, soFar(part.count_so_far), true), () => live)
            .then((c) => c.complete && show(s.id, c.count.toLocaleString("en")))
            .catch(() => show(s.id, "?")));
      })
      .catch((error) => live && setState({ error }));
    return () => { live = false; };
  }, []);
  return html`
    <div class="section-head">
      <h1>Segments</h1>
      ${can("editor") ? html`<a class="button" href="#/segments/new">New segment</a>`
        : html`<a class="button secondary" href="#/segments/new">Try rules</a>`}
    </div>
    ${state.loading && html`<p role="status">Loading segments…</p>`}
    ${state.error && html`<p class="error" role="alert">${state.error.message}</p>`}
    ${state.data && (state.data.segments.length ? html`
      <${Scroll} label="Segments"><table class="segments">
        <thead><tr><th scope="col">Name</th><th scope="col">Description</th>
          <th scope="col" class="num">Users</th><th scope="col">Updated</th></tr></thead>
        <tbody>${state.data.segments.map((s) => html`
          <tr><th scope="row"><a href=${`#/segments/${enc(s.id)}`}>${s.name}</a></th>
            <td>${s.description || ""}</td>
            <td class="num" data-count=${s.id} data-counting=${counts[s.id]?.counting ? "true" : undefined}
              title=${counts[s.id]?.counting ? "Counting: a large segment is counted in parts" : undefined}>${counts[s.id]?.text ?? "…"}</td>
            <td><${When} iso=${s.updated_at} /></td></tr>`)}</tbody>
      </table><//>` : html`<p>No segment yet.${can("editor") ? html` <a href="#/segments/new">Build the first one.</a>` : ""}</p>`)}`;
}

// ------------------------------------------------------------- the builder
function replaceAt(items, index, next) {
  return next === null ? items.filter((_, i) => i !== index) : items.map((item, i) => (i === index ? next : item));
}

function AttributeField({ node, onChange, id }) {
  const custom = node.attribute.startsWith("custom.");
  const choose = (event) => {
    const value = event.target.value;
    const attribute = value === "custom." ? `custom.${custom ? node.attribute.slice(7) : ""}` : value;
    const ops = opsFor(attribute);
    onChange({ ...node, attribute, op: ops.includes(node.op) ? node.op : ops[0] });
  };
  return html`
    <span class="field">
      <label class="sr" for=${`${id}-attr`}>Attribute</label>
      <select id=${`${id}-attr`} value=${custom ? "custom." : node.attribute} onChange=${choose}>
        <optgroup label="Standard">
          ${STANDARD.map(([name, text]) => html`<option value=${name}>${text}</option>`)}
        </optgroup>
        <optgroup label="Custom"><option value="custom.">Custom attribute…</option></optgroup>
      </select>
      ${custom && html`
        <label class="sr" for=${`${id}-custom`}>Custom attribute name</label>
        <input id=${`${id}-custom`} class="short" list="custom-names" placeholder="name, e.g. plan"
          value=${node.attribute.slice(7)} spellcheck="false"
          onInput=${(e) => onChange({ ...node, attribute: `custom.${e.target.value}` })} />`}
    </span>`;
}

function ValueFields({ node, onChange, id }) {
  const set = (patch) => onChange({ ...node, ...patch });
  const kind = kindOf(node.attribute);
  if (NO_VALUE_OPS.has(node.op)) return null;
  const typeField = kind === "custom" && html`
    <label class="sr" for=${`${id}-type`}>Value type</label>
    <select id=${`${id}-type`} class="short" value=${node.valueType} onChange=${(e) => set({ valueType: e.target.value })}>
      <option value="string">text</option><option value="number">number</option><option value="boolean">true/false</option>
    </select>`;
  if (RELATIVE_OPS.has(node.op)) {
    return html`
      <label class="sr" for=${`${id}-amount`}>How many</label>
      <input id=${`${id}-amount`} class="tiny" type="number" min="1" required value=${node.amount}
        onInput=${(e) => set({ amount: e.target.value })} />
      <label class="sr" for=${`${id}-unit`}>Unit</label>
      <select id=${`${id}-unit`} class="short" value=${node.unit} onChange=${(e) => set({ unit: e.target.value })}>
        ${Object.entries(UNITS).map(([u, text]) => html`<option value=${u}>${text}</option>`)}
      </select>
      ${node.op === "changed_within" && html`
        <label for=${`${id}-to`}>to</label>
        <input id=${`${id}-to`} class="short" placeholder="any value" value=${node.to}
          onInput=${(e) => set({ to: e.target.value })} />
        ${typeField}`}`;
  }
  const hint = kind === "time" ? "7d, or 2026-11-01" : LIST_OPS.has(node.op) ? "a, b, c" : "value";
  return html`
    <label class="sr" for=${`${id}-value`}>${node.op === "between" ? "From" : "Value"}</label>
    <input id=${`${id}-value`} class="short" placeholder=${node.op === "between" && kind === "time" ? "older, e.g. 14d" : hint}
      value=${node.text} onInput=${(e) => set({ text: e.target.value })} />
    ${node.op === "between" && html`
      <span aria-hidden="true">and</span>
      <label class="sr" for=${`${id}-value2`}>To</label>
      <input id=${`${id}-value2`} class="short" placeholder=${kind === "time" ? "newer, e.g. 7d" : "value"}
        value=${node.text2} onInput=${(e) => set({ text2: e.target.value })} />`}
    ${TEXT_OPS.has(node.op) && html`
      <label class="check"><input type="checkbox" checked=${node.ignoreCase}
        onChange=${(e) => set({ ignoreCase: e.target.checked })} /> ignore case</label>`}
    ${typeField}`;
}

function ConditionEditor({ node, onChange, path, problem }) {
  const id = `c-${path}`;
  const unfinished = problem?.key === node.key;
  return html`
    <li class=${unfinished ? "condition unfinished" : "condition"} data-path=${path}>
      <label class="check not"><input type="checkbox" checked=${node.not}
        onChange=${(e) => onChange({ ...node, not: e.target.checked })} /> not</label>
      <${AttributeField} node=${node} onChange=${onChange} id=${id} />
      <span class="field">
        <label class="sr" for=${`${id}-op`}>Operator</label>
        <select id=${`${id}-op`} value=${node.op} onChange=${(e) => onChange({ ...node, op: e.target.value })}>
          ${opsFor(node.attribute).map((op) => html`<option value=${op}>${OPS[op]}</option>`)}
        </select>
      </span>
      <span class="field"><${ValueFields} node=${node} onChange=${onChange} id=${id} /></span>
      <button type="button" class="icon" aria-label="Remove this condition" onClick=${() => onChange(null)}>×</button>
    </li>`;
}

function GroupEditor({ node, onChange, path, depth, problem }) {
  const id = `g-${path}`;
  const setItem = (index) => (next) => {
    const items = replaceAt(node.items, index, next);
    onChange(items.length || depth === 0 ? { ...node, items } : null);
  };
  return html`
    <fieldset class=${`group depth-${depth}`} data-path=${path}>
      <legend>
        ${depth === 0 ? "Users who match " : "A group: "}
        <label class="sr" for=${`${id}-op`}>Match</label>
        <select id=${`${id}-op`} value=${node.op} onChange=${(e) => onChange({ ...node, op: e.target.value })}>
          <option value="all">all of</option><option value="any">any of</option>
        </select>
        ${depth > 0 && html`
          <label class="check not"><input type="checkbox" checked=${node.not}
            onChange=${(e) => onChange({ ...node, not: e.target.checked })} /> not (exclude them)</label>`}
      </legend>
      <ol class="items">
        ${node.items.map((item, i) => (item.kind === "group"
          ? html`<li key=${item.key}><${GroupEditor} node=${item} onChange=${setItem(i)} path=${`${path}.${i}`} depth=${depth + 1} problem=${problem} /></li>`
          : html`<${ConditionEditor} key=${item.key} node=${item} onChange=${setItem(i)} path=${`${path}.${i}`} problem=${problem} />`))}
      </ol>
      <div class="group-actions">
        <button type="button" class="secondary" onClick=${() => onChange({ ...node, items: [...node.items, newCondition()] })}>Add condition</button>
        ${depth < MAX_DEPTH - 1 && html`
          <button type="button" class="secondary" onClick=${() => onChange({ ...node, items: [...node.items, newGroup("any")] })}>Add group</button>`}
        ${depth > 0 && html`<button type="button" class="secondary" onClick=${() => onChange(null)}>Remove group</button>`}
      </div>
    </fieldset>`;
}

const counted = (n, one, many) => `${(n ?? 0).toLocaleString("en")} ${n === 1 ? one : many}`;

export function planInWords(plan, rules) {
  if (!plan) return "";
  const read = `${counted(plan.items_read, "item", "items")} read`;
  if (plan.path === "scan") {
    const entries = JSON.stringify(rules || {}).match(/"attribute":"(custom\.|country|region|city|browser_name)/);
    const hint = entries
      ? " Indexes on custom, location and browser attributes are built when a saved segment uses them; until then previews scan."
      : "";
    return `Scanned every visible user (${read}): ${plan.reason || "no condition could use an index"}.${hint}`;
  }
  const on = plan.conditions?.length
    ? `, narrowed on “${plan.conditions.map((path) => describeAt(rules, path)).join("” and “")}”`
    : "";
  const decided = plan.reads === "index"
    ? "the index entries decided on their own, no profile read"
    : `${counted(plan.profiles_read, "profile", "profiles")} read to check the candidates`;
  return `Read from the ${plan.index} index${on}: ${counted(plan.index_items_read, "index entry", "index entries")}, ${decided} (${read}).`;
}

// "rules.all[0].any[1]" -> that condition in words ("Last seen is within the last 7d").
export function describeAt(rules, path) {
  let node = rules;
  for (const [, key, index] of path.matchAll(/\.(\w+)(?:\[(\d+)\])?/g)) {
    node = node?.[key];
    if (index !== undefined) node = node?.[Number(index)];
  }
  if (!node || !node.attribute) return path;
  const name = STANDARD.find(([n]) => n === node.attribute)?.[1] || node.attribute;
  const value = node.value === undefined ? "" : ` ${Array.isArray(node.value) ? node.value.join(", ") : node.value}`;
  const to = node.to === undefined ? "" : ` to ${node.to}`;
  return `${name} ${OPS[node.op] || node.op}${value}${to}`;
}

// The count, members and plan shown are always those of the rules on screen:
// a change drops them at once (a count of the previous rules under "Counting…"
// reads as the new rules' count), and rules still being typed are not sent.
function usePreview(rules, problem) {
  const body = JSON.stringify(rules);
  const waiting = problem?.message || null;
  const [state, setState] = useState({ loading: true });
  useEffect(() => {
    if (waiting) {
      setState({ waiting });
      return undefined;
    }
    let live = true;
    setState({ loading: true });
    // A large preview answers in parts: its first answer's members and plan
    // are shown at once with the count so far, then the cursor is followed
    // (same rules) until the count is complete.
    const run = async () => {
      let answer = await post("/v1/segments/preview", { rules, limit: 10 });
      const first = answer;
      let { plan } = answer;
      while (live && !answer.complete) {
        setState({ data: { ...first, plan, count: answer.count_so_far, counting: true }, body });
        answer = await post("/v1/segments/preview", { rules, limit: 10, cursor: answer.next_cursor });
        plan = readAlso(plan, answer.plan);
      }
      if (live) setState({ data: { ...first, plan, count: answer.count, counting: false }, body });
    };
    const timer = setTimeout(() => run().catch((error) => live && setState({ error, body })), PREVIEW_DELAY_MS);
    return () => { live = false; clearTimeout(timer); };
  }, [body, waiting]);
  return state;
}

// Each part of a count says what it read: the plan shown sums them.
function readAlso(plan, more) {
  const sum = (key) => (plan[key] ?? 0) + (more[key] ?? 0);
  return { ...plan, index_items_read: sum("index_items_read"), profiles_read: sum("profiles_read"), items_read: sum("items_read") };
}

function csvCell(value) {
  let text = value === null || value === undefined ? "" : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`; // no spreadsheet formulas
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

// Every member with its standard and custom attributes: one column per custom
// attribute any member holds (named custom.<name>), empty where a member has none.
async function exportCsv(segment, onProgress) {
  const columns = STANDARD.map(([name]) => name);
  const users = [];
  let cursor = null;
  do {
    const params = new URLSearchParams({ limit: "1000", custom: "true" });
    if (cursor) params.set("cursor", cursor);
    const page = await get(`/v1/segments/${enc(segment.id)}/users?${params}`);
    users.push(...page.users);
    onProgress(users.length);
    cursor = page.next_cursor;
  } while (cursor);
  const custom = [...new Set(users.flatMap((u) => Object.keys(u.custom || {})))].sort();
  const lines = [["uuid", ...columns, ...custom.map((n) => `custom.${n}`)].map(csvCell).join(",")];
  for (const user of users) {
    const values = [...columns.map((c) => user.standard?.[c]), ...custom.map((n) => user.custom?.[n]?.value)];
    lines.push([user.uuid, ...values].map(csvCell).join(","));
  }
  const count = users.length;
  const blob = new Blob([lines.join("\r\n") + "\r\n"], { type: "text/csv" });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `${segment.name.replace(/[^\w.-]+/g, "_") || segment.id}.csv`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
  return count;
}

export function SegmentEditor({ id }) {
  const isNew = id === "new";
  const [segment, setSegment] = useState(isNew ? { name: "", description: "" } : null);
  const [root, setRoot] = useState(isNew ? newGroup("all") : null);
  const [loadError, setLoadError] = useState(null);
  const [saving, setSaving] = useState(null);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [exported, setExported] = useState(null);
  const [names, setNames] = useState([]);
  const mounted = useRef(true);
  useEffect(() => () => { mounted.current = false; }, []);
  useEffect(() => {
    get("/v1/attributes").then((d) => setNames(d.attributes.map((a) => a.name))).catch(() => {});
    if (isNew) return;
    get(`/v1/segments/${enc(id)}`)
      .then((s) => { setSegment(s); setRoot(rootFromApi(s.rules)); })
      .catch(setLoadError);
  }, [id]);
  const rules = useMemo(() => (root ? toApi(root) : null), [root]);
  const problem = useMemo(() => (root ? firstProblem(root) : null), [root]);
  if (loadError) return html`<p><a href="#/segments">← Segments</a></p><p class="error" role="alert">${loadError.message}</p>`;
  if (!root) return html`<p role="status">Loading the segment…</p>`;
  const editor = can("editor"); // a viewer may try rules (the preview is a read), not save them
  const save = async (event) => {
    event.preventDefault();
    if (!editor) return;
    if (problem) {
      setSaving({ error: { message: `Not saved: ${problem.message}.` } });
      return;
    }
    setSaving({ busy: true });
    // A PUT replaces the segment: the flags go along as they are, or they would reset.
    const body = {
      name: segment.name.trim(),
      description: segment.description || "",
      rules,
      targeting: Boolean(segment.targeting),
      notify: Boolean(segment.notify),
    };
    try {
      const saved = isNew ? await post("/v1/segments", body) : await put(`/v1/segments/${enc(id)}`, body);
      // The user may have gone to another page while this was saving: the
      // answer then changes nothing on screen (the segment is saved all the same).
      if (!mounted.current) return;
      setSegment(saved);
      setSaving({ message: `Saved ${when(saved.updated_at)}.` });
      if (isNew) location.hash = `#/segments/${enc(saved.id)}`;
    } catch (error) {
      if (mounted.current) setSaving({ error });
    }
  };
  const remove = async () => {
    try {
      await del(`/v1/segments/${enc(id)}`);
      location.hash = "#/segments";
    } catch (error) {
      setSaving({ error });
    }
  };
  const download = async () => {
    setExported({ count: 0, busy: true });
    try {
      const count = await exportCsv(segment, (n) => setExported({ count: n, busy: true }));
      setExported({ count, done: true });
    } catch (error) {
      setExported({ error });
    }
  };
  return html`
    <p><a href="#/segments">← Segments</a></p>
    <h1>${isNew ? (editor ? "New segment" : "Try rules") : segment.name}</h1>
    ${!editor && html`<p class="muted" data-read-only>Viewers can try rules and see who matches; saving segments needs the editor role.</p>`}
    <datalist id="custom-names">${names.map((n) => html`<option value=${n} />`)}</datalist>
    <div class="builder">
      <form class="rules" onSubmit=${save} aria-label="Segment">
        ${editor && html`<div class="fields">
          <label for="segment-name">Name</label>
          <input id="segment-name" required maxlength="200" value=${segment.name}
            onInput=${(e) => setSegment({ ...segment, name: e.target.value })} />
          <label for="segment-description">Description</label>
          <input id="segment-description" value=${segment.description || ""}
            onInput=${(e) => setSegment({ ...segment, description: e.target.value })} />
          <label class="check notify"><input type="checkbox" checked=${Boolean(segment.notify)}
            onChange=${(e) => setSegment({ ...segment, notify: e.target.checked })} />
            Announce users entering and leaving it (membership events on the event bus)</label>
        </div>`}
        <${GroupEditor} node=${root} onChange=${setRoot} path="0" depth=${0} problem=${problem} />
        <p class="hint">${countConditions(root)} of 50 conditions. Times count back from now: “within the last 7 days”.</p>
        <details class="json"><summary>Rules as JSON</summary><pre>${JSON.stringify(rules, null, 2)}</pre></details>
        <div class="actions">
          ${editor && html`<button type="submit" disabled=${saving?.busy}>${isNew ? "Save segment" : "Save changes"}</button>`}
          ${!isNew && html`
            <button type="button" class="secondary" onClick=${download} disabled=${exported?.busy}>Export members (CSV)</button>
            ${!editor ? "" : confirmDelete
              ? html`<button type="button" class="danger" onClick=${remove}>Really delete “${segment.name}”</button>
                  <button type="button" class="secondary" onClick=${() => setConfirmDelete(false)}>Keep it</button>`
              : html`<button type="button" class="danger secondary" onClick=${() => setConfirmDelete(true)}>Delete…</button>`}`}
        </div>
        <div aria-live="polite">
          ${saving?.message && html`<p class="ok">${saving.message}</p>`}
          ${saving?.error && html`<p class="error" role="alert">${saving.error.message}${saving.error.field ? ` (${saving.error.field})` : ""}</p>`}
          ${exported?.busy && html`<p>Exporting… ${exported.count} users so far.</p>`}
          ${exported?.done && html`<p class="ok">Exported ${exported.count} users.</p>`}
          ${exported?.error && html`<p class="error">Export failed: ${exported.error.message}</p>`}
        </div>
      </form>
      <${Preview} rules=${rules} problem=${problem} />
    </div>`;
}

function Preview({ rules, problem }) {
  const state = usePreview(rules, problem);
  const { data, error, waiting } = state;
  return html`
    <aside class="preview" aria-labelledby="preview-title" aria-busy=${state.loading || data?.counting ? "true" : "false"}>
      <h2 id="preview-title">Preview</h2>
      <div aria-live="polite">
        ${waiting && html`<p class="waiting" data-waiting>${waiting}; the count follows when it is complete.</p>`}
        ${state.loading && html`<p class="count muted">Counting…</p>`}
        ${error && html`<p class="error" role="alert">${error.message}${error.field ? html` <code>${error.field}</code>` : ""}</p>`}
        ${data && html`
          <p class="count"><span data-preview-count data-counting=${data.counting ? "true" : undefined}>${data.count.toLocaleString("en")}</span>${" "}${data.count === 1 && !data.counting ? "user" : "users"}${data.counting ? " so far, counting…" : ""}</p>
          <p class="plan" data-plan=${data.plan.path}>${planInWords(data.plan, JSON.parse(state.body))}</p>`}
      </div>
      ${data && (data.users.length ? html`
        <h3>First members</h3>
        <ul class="members">${data.users.map((u) => html`
          <li><a href=${`#/users/${enc(u.uuid)}`}>${u.uuid}</a>${" "}<span class="muted">last seen ${when(u.standard?.last_seen)}</span></li>`)}</ul>`
        : html`<p class="muted">No user matches now.</p>`)}
    </aside>`;
}
