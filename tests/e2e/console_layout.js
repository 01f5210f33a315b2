() => {
  // What a person looking at a console screen would call broken, measured in the
  // page (tests/e2e/test_console.py evaluates it on every screen at both sizes).
  // Returns a list of problems in words.
  const problems = [];
  const visible = (e) => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const root = document.documentElement;
  if (root.scrollWidth > innerWidth) problems.push(`the page is ${root.scrollWidth}px wide`);
  // a select shows its chosen option whole
  for (const select of document.querySelectorAll("select")) {
    if (!visible(select) || select.selectedIndex < 0) continue;
    const probe = select.cloneNode(false);
    probe.append(select.options[select.selectedIndex].cloneNode(true));
    Object.assign(probe.style, { width: "auto", minWidth: "0", maxWidth: "none", position: "absolute", visibility: "hidden" });
    select.parentElement.append(probe);
    const needed = probe.getBoundingClientRect().width;
    probe.remove();
    const shown = select.getBoundingClientRect().width;
    if (shown + 0.5 < needed) problems.push(`select cuts "${select.value}": ${shown}px of ${needed}px`);
  }
  // attribute names (in the tables' row headers) wrap only after "_" or "."
  for (const code of document.querySelectorAll("th code")) {
    if (!visible(code)) continue;
    let top = null, before = "";
    const walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (let i = 0; i < node.length; i++) {
        const range = document.createRange();
        range.setStart(node, i); range.setEnd(node, i + 1);
        const rect = range.getBoundingClientRect();
        if (top !== null && rect.top > top + 2 && !/[_.]$/.test(before)) {
          problems.push(`"${code.textContent}" breaks inside a word after "${before}"`);
        }
        top = rect.top; before += node.data[i];
      }
    }
  }
  // the controls of a condition sit next to each other
  for (const row of document.querySelectorAll("li.condition")) {
    const controls = [...row.querySelectorAll(
      "select, input:not([type=checkbox]), label:not(.sr), button, span[aria-hidden]",
    )]
      .filter(visible).map((e) => e.getBoundingClientRect());
    for (let i = 1; i < controls.length; i++) {
      const [a, b] = [controls[i - 1], controls[i]];
      if (Math.abs(a.top - b.top) < 4 && b.left - a.right > 16) {
        problems.push(`a ${Math.round(b.left - a.right)}px gap between controls of a condition`);
      }
    }
  }
  // the period toggle does not touch what follows it
  for (const toggle of document.querySelectorAll(".segmented")) {
    const next = toggle.closest(".section-head")?.nextElementSibling;
    if (next && visible(next)) {
      const gap = next.getBoundingClientRect().top - toggle.getBoundingClientRect().bottom;
      if (gap < 8) problems.push(`the period toggle is ${gap}px from what follows`);
    }
  }
  // a table that scrolls sideways says so
  for (const box of document.querySelectorAll("*")) {
    const style = getComputedStyle(box);
    if (!["auto", "scroll"].includes(style.overflowX) || box.scrollWidth <= box.clientWidth + 1) continue;
    if (box.tagName === "PRE" || box.tagName === "HTML" || box.tagName === "BODY") continue;
    const frame = box.closest(".scroll-box");
    const hint = frame?.previousElementSibling;
    const edge = frame && getComputedStyle(frame, "::after");
    if (!frame || !frame.classList.contains(box.scrollLeft > 1 ? "more-left" : "more-right")
        || !hint?.matches(".scroll-hint") || !visible(hint) || edge.opacity !== "1") {
      problems.push(`a ${box.scrollWidth}px table in a ${box.clientWidth}px box shows no sign it scrolls`);
    }
  }
  // the builder's preview is beside the rules, or under them on a phone
  const rules = document.querySelector("form.rules"), preview = document.querySelector("aside.preview");
  if (rules && preview) {
    const [r, p] = [rules.getBoundingClientRect(), preview.getBoundingClientRect()];
    const beside = p.left >= r.right - 1, under = p.top >= r.bottom - 1;
    if (!beside && !under) problems.push("the preview is above the rules");
  }
  return problems;
}
