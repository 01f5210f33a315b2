// Small pieces several pages share: a box that scrolls a wide table sideways
// and says so, and attribute names that wrap only between their words.
import { when } from "./api.mjs";
import { html, useEffect, useRef, useState } from "./html.mjs";

// A table wider than the screen scrolls inside its box instead of widening the
// page. On a phone nothing else shows that it can: the box fades at the edge
// that hides columns and a line above it says so; once it scrolls, it takes
// keyboard focus (arrow keys scroll it) under the label given.
export function Scroll({ label, children }) {
  const box = useRef(null);
  const [more, setMore] = useState({ left: false, right: false });
  useEffect(() => {
    const element = box.current;
    const measure = () => {
      const left = element.scrollLeft > 1;
      const right = element.scrollLeft + element.clientWidth < element.scrollWidth - 1;
      setMore((was) => (was.left === left && was.right === right ? was : { left, right }));
    };
    measure();
    const resized = new ResizeObserver(measure);
    resized.observe(element);
    if (element.firstElementChild) resized.observe(element.firstElementChild);
    element.addEventListener("scroll", measure, { passive: true });
    return () => {
      resized.disconnect();
      element.removeEventListener("scroll", measure);
    };
  }, [children]); // new rows may make the table wider or narrower
  const scrolls = more.left || more.right;
  const classes = ["scroll-box", more.left && "more-left", more.right && "more-right"].filter(Boolean).join(" ");
  return html`
    ${scrolls && html`<p class="scroll-hint" aria-hidden="true">${more.right
      ? "More columns: scroll sideways →" : "← Scroll back for the first columns"}</p>`}
    <div class=${classes}>
      <div class="scroll" ref=${box} tabindex=${scrolls ? "0" : undefined}
        role=${scrolls ? "region" : undefined} aria-label=${scrolls ? label : undefined}>${children}</div>
    </div>`;
}

// "avg_time_between_sessions" may wrap after an underscore or a dot, never
// inside a word ("avg_time_between_session" / "s").
export function Name({ name }) {
  const parts = String(name).split(/(?<=[_.])/);
  return html`<code class="name">${parts.map((part, i) => (i ? html`<wbr />${part}` : part))}</code>`;
}

// A time in a narrow column wraps between its date and its clock time, not at
// the date's hyphens ("2026-11-" / "29").
export function When({ iso }) {
  const [day, ...rest] = when(iso).split(" ");
  if (!rest.length) return day;
  return html`<span class="nowrap">${day}</span> <span class="nowrap">${rest.join(" ")}</span>`;
}
