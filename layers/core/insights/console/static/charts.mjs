// Hand-rolled SVG charts: a bar chart of one daily series, scaled to its
// container by the viewBox. A chart library would be larger than the whole
// console for three bar charts; the same numbers are in a table beside it
// for screen readers and for copying.
import { html } from "./html.mjs";

// About the size it is drawn at, so its 12px labels stay readable.
const W = 400;
const H = 170;
const PAD = { left: 34, right: 6, top: 8, bottom: 22 };

function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (value <= step * power) return step * power;
  }
  return 10 * power;
}

export function BarChart({ id, title, points, format = String, unit = "", summable = true }) {
  const values = points.map((p) => p.value ?? 0);
  const top = niceMax(Math.max(0, ...values));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const slot = plotW / Math.max(points.length, 1);
  const barW = Math.max(1, slot * 0.72);
  const y = (v) => PAD.top + plotH - (v / top) * plotH;
  const ticks = [0, top / 2, top];
  const labelEvery = Math.ceil(points.length / 6);
  const total = values.reduce((a, b) => a + b, 0);
  const summary = points.length
    ? `${title}: ${points.length} days from ${points[0].date} to ${points[points.length - 1].date}; highest ${format(Math.max(...values))}${unit}.`
    : `${title}: no data.`;
  return html`
    <figure class="chart" aria-labelledby=${`${id}-title`}>
      <figcaption id=${`${id}-title`}>${title}</figcaption>
      <svg viewBox=${`0 0 ${W} ${H}`} role="img" aria-label=${summary}>
        ${ticks.map((t) => html`
          <line class="grid" x1=${PAD.left} x2=${W - PAD.right} y1=${y(t)} y2=${y(t)} />
          <text class="axis" x=${PAD.left - 4} y=${y(t) + 4} text-anchor="end">${Number.isInteger(t) ? format(t) : t.toFixed(1)}</text>`)}
        ${points.map((p, i) => {
          const v = p.value;
          const x = PAD.left + i * slot + (slot - barW) / 2;
          return html`
            ${v !== null && v !== undefined && html`
              <rect class="bar" x=${x} y=${y(v)} width=${barW} height=${Math.max(0, PAD.top + plotH - y(v))}>
                <title>${p.date}: ${format(v)}${unit}</title>
              </rect>`}
            ${i % labelEvery === 0 && html`
              <text class="axis" x=${x + barW / 2} y=${H - 6} text-anchor="middle">${p.date.slice(5)}</text>`}`;
        })}
      </svg>
      <details>
        <summary>Table (${points.length} days${summable ? `, total ${format(total)}${unit}` : ""})</summary>
        <table>
          <thead><tr><th scope="col">Day</th><th scope="col">${title}</th></tr></thead>
          <tbody>${points.map((p) => html`<tr><td>${p.date}</td><td>${p.value === null ? "—" : format(p.value) + unit}</td></tr>`)}</tbody>
        </table>
      </details>
    </figure>`;
}
