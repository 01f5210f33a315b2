// Imports: pick a CSV or JSON Lines file, map its columns (built from the
// file's own header), upload it with the presigned form from POST /v1/imports
// straight to the imports bucket, follow the job, read its error report.
import { can, enc, get, post } from "./api.mjs";
import { html, useEffect, useState } from "./html.mjs";
import { Scroll, When } from "./widgets.mjs";

const TYPES = ["", "string", "number", "boolean", "date"];
const DONE = new Set(["succeeded", "partially_succeeded", "failed", "cancelled"]);
const HEAD_BYTES = 256 * 1024;

// RFC 4180 records (quoted fields with commas, quotes and newlines). The
// server parses the file with Python's csv module; this reads only the
// header for the form and the server's own error report.
export function parseCsv(text, maxRecords = Infinity) {
  const records = [];
  let field = "";
  let record = [];
  let quoted = false;
  for (let i = 0; i < text.length && records.length < maxRecords; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { record.push(field); field = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      record.push(field); field = "";
      if (record.length > 1 || record[0] !== "") records.push(record);
      record = [];
    } else field += c;
  }
  if ((field !== "" || record.length) && records.length < maxRecords) { record.push(field); records.push(record); }
  return records;
}

async function headText(file) {
  let blob = file.slice(0, HEAD_BYTES);
  const bytes = new Uint8Array(await blob.slice(0, 2).arrayBuffer());
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    // gzip (detected by magic bytes, as the server does): decompress the start.
    const stream = file.stream().pipeThrough(new DecompressionStream("gzip"));
    const reader = stream.getReader();
    const chunks = [];
    let size = 0;
    while (size < HEAD_BYTES) {
      const { value, done } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
    reader.cancel().catch(() => {});
    blob = new Blob(chunks);
  }
  return (await blob.text()).replace(/^\uFEFF/, "");
}

export async function readColumns(file) {
  const name = file.name.toLowerCase().replace(/\.gz$/, "");
  const text = await headText(file);
  if (name.endsWith(".csv")) {
    const [header] = parseCsv(text, 1);
    if (!header || !header.some((h) => h.trim())) throw new Error("The file has no header row.");
    return { format: "csv", columns: header };
  }
  if (name.endsWith(".jsonl")) {
    const keys = new Set();
    for (const line of text.split(/\r?\n/).slice(0, 50)) {
      if (!line.trim()) continue;
      try {
        const row = JSON.parse(line);
        if (row && typeof row === "object" && !Array.isArray(row)) Object.keys(row).forEach((k) => keys.add(k));
      } catch {
        break; // a partial last line of the sample, or a bad line the server will name
      }
    }
    if (!keys.size) throw new Error("No JSON object found in the first lines.");
    return { format: "jsonl", columns: [...keys] };
  }
  throw new Error("Choose a .csv, .jsonl, .csv.gz or .jsonl.gz file.");
}

function defaultForm(columns) {
  const uuid = columns.find((c) => c === "uuid") || columns.find((c) => /user.?id|uuid/i.test(c)) || columns[0];
  const timestamp = columns.includes("timestamp") ? "timestamp" : "";
  return {
    uuid,
    timestamp,
    rows: columns.map((column) => ({ column, include: true, rename: "", type: "" })),
  };
}

export function mappingOf(form) {
  const chosen = form.rows.filter((r) => r.include && r.column !== form.uuid && r.column !== form.timestamp);
  const mapping = { uuid: form.uuid, columns: chosen.map((r) => r.column) };
  const rename = Object.fromEntries(chosen.filter((r) => r.rename.trim() && r.rename.trim() !== r.column).map((r) => [r.column, r.rename.trim()]));
  const types = Object.fromEntries(chosen.filter((r) => r.type).map((r) => [r.column, r.type]));
  if (Object.keys(rename).length) mapping.rename = rename;
  if (Object.keys(types).length) mapping.types = types;
  if (form.timestamp) mapping.timestamp = form.timestamp;
  return mapping;
}

function upload(form, file, onProgress) {
  return new Promise((resolve, reject) => {
    const data = new FormData();
    Object.entries(form.fields).forEach(([k, v]) => data.append(k, v));
    data.append("file", file); // last: S3 ignores fields after the file
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.url);
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => (xhr.status < 300 ? resolve() : reject(new Error(`The upload was refused (${xhr.status}): ${xhr.responseText.slice(0, 300)}`)));
    xhr.onerror = () => reject(new Error("The upload failed (network)."));
    xhr.send(data);
  });
}

function Progress({ label, value }) {
  const percent = Math.round((value || 0) * 100);
  return html`
    <div class="progress">
      <label>${label} <progress max="100" value=${percent} aria-valuetext=${`${percent}%`}>${percent}%</progress> ${percent}%</label>
    </div>`;
}

function ErrorReport({ job }) {
  const [rows, setRows] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    if (!job.error_report) return;
    fetch(job.error_report.url, { cache: "no-store" })
      .then((r) => (r.ok ? r.text() : Promise.reject(new Error(`HTTP ${r.status}`))))
      .then((text) => setRows(parseCsv(text)))
      .catch((e) => setError(e.message));
  }, [job.error_report?.url]);
  if (!job.error_report) return null;
  const [header, ...lines] = rows || [[]];
  return html`
    <section class="report" aria-labelledby=${`report-${job.id}`}>
      <h3 id=${`report-${job.id}`}>Error report: ${job.error_report.lines} rejected ${job.error_report.lines === 1 ? "row" : "rows"}</h3>
      ${error && html`<p class="error">The report could not be read here (${error}); <a href=${job.error_report.url}>download it</a>.</p>`}
      ${rows && html`
        <${Scroll} label="Error report"><table class="report-table">
          <thead><tr>${header.map((h) => html`<th scope="col">${h}</th>`)}</tr></thead>
          <tbody>${lines.slice(0, 200).map((line) => html`<tr>${line.map((v) => html`<td>${v}</td>`)}</tr>`)}</tbody>
        </table><//>
        ${lines.length > 200 && html`<p>The first 200 lines are shown.</p>`}
        <p><a href=${job.error_report.url} download=${`${job.id}-errors.csv`}>Download the report (CSV)</a>
          <span class="muted"> (link valid ${Math.round(job.error_report.expires_in_seconds / 60)} minutes)</span></p>`}
    </section>`;
}

function JobSummary({ job }) {
  const rows = job.rows;
  const total = rows.total ?? null;
  const progress = job.status === "running" && total ? (rows.imported + rows.rejected) / total : null;
  return html`
    <div class="job" data-status=${job.status}>
      <p><strong>${job.filename}</strong> <span class=${`status ${job.status}`}>${job.status.replace("_", " ")}</span>
        <span class="muted"> ${job.phase === "validate" ? "checking the file…" : ""}</span></p>
      ${progress !== null && html`<${Progress} label="Rows applied" value=${progress} />`}
      <p>${rows.read} rows read${total !== null ? ` of ${total}` : ""}: <strong data-imported>${rows.imported}</strong> imported,${" "}<strong data-rejected>${rows.rejected}</strong> rejected.</p>
      ${job.error && html`<p class="error">${job.error}</p>`}
      <${ErrorReport} job=${job} />
    </div>`;
}

function NewImport({ onDone }) {
  const [file, setFile] = useState(null);
  const [form, setForm] = useState(null);
  const [problem, setProblem] = useState(null);
  const [stage, setStage] = useState(null); // {upload: 0..1} | {job}
  const choose = async (event) => {
    const chosen = event.target.files[0];
    setProblem(null); setStage(null); setForm(null); setFile(chosen || null);
    if (!chosen) return;
    try {
      const { columns } = await readColumns(chosen);
      setForm(defaultForm(columns));
    } catch (error) {
      setProblem(error.message);
    }
  };
  const setRow = (index, patch) => setForm({ ...form, rows: form.rows.map((r, i) => (i === index ? { ...r, ...patch } : r)) });
  const start = async (event) => {
    event.preventDefault();
    setProblem(null);
    const mapping = mappingOf(form);
    if (!mapping.columns.length) { setProblem("Choose at least one column to import besides the uuid."); return; }
    try {
      const job = await post("/v1/imports", { filename: file.name, mapping });
      setStage({ upload: 0 });
      await upload(job.upload, file, (p) => setStage({ upload: p }));
      setStage({ upload: 1, job });
      let current = job;
      while (!DONE.has(current.status)) {
        await new Promise((r) => setTimeout(r, 700));
        current = await get(`/v1/imports/${enc(job.id)}`);
        setStage({ upload: 1, job: current });
      }
      onDone();
    } catch (error) {
      setProblem(`${error.message}${error.field ? ` (${error.field})` : ""}`);
    }
  };
  return html`
    <form class="new-import" onSubmit=${start}>
      <label for="import-file">File (CSV or JSON Lines, optionally gzipped)</label>
      <input id="import-file" type="file" accept=".csv,.jsonl,.gz" onChange=${choose} />
      ${form && html`
        <fieldset>
          <legend>Mapping for ${file.name}</legend>
          <div class="inline">
            <label for="map-uuid">The column naming the user</label>
            <select id="map-uuid" value=${form.uuid} onChange=${(e) => setForm({ ...form, uuid: e.target.value })}>
              ${form.rows.map((r) => html`<option value=${r.column}>${r.column}</option>`)}
            </select>
            <label for="map-timestamp">When each row was true</label>
            <select id="map-timestamp" value=${form.timestamp} onChange=${(e) => setForm({ ...form, timestamp: e.target.value })}>
              <option value="">the time of the upload</option>
              ${form.rows.map((r) => html`<option value=${r.column}>${r.column}</option>`)}
            </select>
          </div>
          <${Scroll} label="Column mapping"><table class="mapping">
            <thead><tr><th scope="col">Import</th><th scope="col">Column</th><th scope="col">Attribute name</th><th scope="col">Type</th></tr></thead>
            <tbody>${form.rows.map((r, i) => {
              const fixed = r.column === form.uuid || r.column === form.timestamp;
              return html`<tr>
                <td><input type="checkbox" id=${`map-include-${i}`} checked=${r.include && !fixed} disabled=${fixed}
                  aria-label=${`Import column ${r.column}`} onChange=${(e) => setRow(i, { include: e.target.checked })} /></td>
                <th scope="row"><label for=${`map-include-${i}`}>${r.column}</label>${fixed && html` <span class="muted">(${r.column === form.uuid ? "uuid" : "time"})</span>`}</th>
                <td><input class="short" aria-label=${`Attribute name for ${r.column}`} placeholder=${r.column} value=${r.rename}
                  disabled=${fixed} onInput=${(e) => setRow(i, { rename: e.target.value })} /></td>
                <td><select aria-label=${`Type of ${r.column}`} value=${r.type} disabled=${fixed}
                  onChange=${(e) => setRow(i, { type: e.target.value })}>
                  ${TYPES.map((t) => html`<option value=${t}>${t || "as in the file"}</option>`)}</select></td>
              </tr>`;
            })}</tbody>
          </table><//>
          <button type="submit" disabled=${stage && !stage.job?.status?.match(/succeeded|failed|cancelled/)}>Upload and import</button>
        </fieldset>`}
      <div aria-live="polite">
        ${problem && html`<p class="error" role="alert">${problem}</p>`}
        ${stage && html`<${Progress} label="Upload" value=${stage.upload} />`}
        ${stage?.job && html`<${JobSummary} job=${stage.job} />`}
      </div>
    </form>`;
}

function JobList({ version }) {
  const [state, setState] = useState({ loading: true });
  const [open, setOpen] = useState(null);
  useEffect(() => {
    get("/v1/imports?limit=20").then((data) => setState({ data })).catch((error) => setState({ error }));
  }, [version]);
  if (state.loading) return html`<p role="status">Loading imports…</p>`;
  if (state.error) return html`<p class="error" role="alert">${state.error.message}</p>`;
  if (!state.data.imports.length) return html`<p>No import yet.</p>`;
  return html`
    <${Scroll} label="Recent imports"><table class="jobs">
      <thead><tr><th scope="col">File</th><th scope="col">Status</th><th scope="col" class="num">Imported</th>
        <th scope="col" class="num">Rejected</th><th scope="col">Source</th><th scope="col">Created</th></tr></thead>
      <tbody>${state.data.imports.map((job) => html`
        <tr>
          <th scope="row"><button class="link" aria-expanded=${open === job.id}
            onClick=${() => setOpen(open === job.id ? null : job.id)}>${job.filename || job.id}</button></th>
          <td><span class=${`status ${job.status}`}>${job.status.replace("_", " ")}</span></td>
          <td class="num">${job.rows.imported}</td><td class="num">${job.rows.rejected}</td>
          <td>${job.source}</td><td><${When} iso=${job.created_at} /></td>
        </tr>
        ${open === job.id && html`<tr class="detail"><td colspan="6"><${JobSummary} job=${job} /></td></tr>`}`)}</tbody>
    </table><//>`;
}

export function Imports() {
  const [version, setVersion] = useState(0);
  return html`
    <h1>Imports</h1>
    ${can("editor") && html`<section aria-labelledby="new-import"><h2 id="new-import">Upload a file</h2>
      <${NewImport} onDone=${() => setVersion(version + 1)} /></section>`}
    <section aria-labelledby="jobs"><h2 id="jobs">Recent imports</h2><${JobList} version=${version} /></section>`;
}
