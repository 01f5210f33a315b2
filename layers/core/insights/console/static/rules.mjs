// The segment rule language (README, "Segments") as the builder edits it:
// a tree of groups and conditions in form terms (texts, amounts and units),
// converted to and from the API's JSON. Pure functions, no DOM.

export const STANDARD_KINDS = {
  first_seen: "time",
  last_seen: "time",
  total_sessions: "number",
  total_session_duration: "number",
  avg_session_duration: "number",
  avg_time_between_sessions: "number",
  country: "string",
  region: "string",
  city: "string",
  browser_name: "string",
  browser_version: "string",
};

export const OPS = {
  equals: "is",
  not_equals: "is not",
  in: "is one of",
  not_in: "is none of",
  contains: "contains",
  not_contains: "does not contain",
  starts_with: "starts with",
  ends_with: "ends with",
  gt: "is greater than",
  gte: "is at least",
  lt: "is less than",
  lte: "is at most",
  between: "is between",
  before: "is before",
  after: "is after",
  within_last: "is within the last",
  not_within_last: "is not within the last",
  changed_within: "changed within the last",
  is_set: "is set",
  is_not_set: "is not set",
};

const BY_KIND = {
  string: ["equals", "not_equals", "in", "not_in", "contains", "not_contains", "starts_with", "ends_with", "is_set", "is_not_set"],
  number: ["equals", "not_equals", "in", "not_in", "gt", "gte", "lt", "lte", "between", "is_set", "is_not_set"],
  time: ["within_last", "not_within_last", "before", "after", "between", "gt", "gte", "lt", "lte", "equals", "not_equals", "is_set", "is_not_set"],
};
// Custom attributes hold whatever was sent: every operator applies.
BY_KIND.custom = [...new Set([...BY_KIND.string, ...BY_KIND.number, ...BY_KIND.time, "changed_within"])];

export const RELATIVE_OPS = new Set(["within_last", "not_within_last", "changed_within"]);
export const NO_VALUE_OPS = new Set(["is_set", "is_not_set"]);
export const LIST_OPS = new Set(["in", "not_in"]);
export const TEXT_OPS = new Set(["contains", "not_contains", "starts_with", "ends_with"]);
export const UNITS = { s: "seconds", m: "minutes", h: "hours", d: "days", w: "weeks" };
const RELATIVE = /^(\d+)([smhdw])$/;

let serial = 0;
const key = () => `n${++serial}`;

export function kindOf(attribute) {
  return attribute.startsWith("custom.") ? "custom" : STANDARD_KINDS[attribute] || "custom";
}

export function opsFor(attribute) {
  return BY_KIND[kindOf(attribute)];
}

export function newCondition(attribute = "last_seen") {
  return {
    kind: "cond", key: key(), not: false, attribute, op: opsFor(attribute)[0],
    text: "", text2: "", amount: "7", unit: "d", to: "", valueType: "string", ignoreCase: false,
  };
}

export function newGroup(op = "all", items = [newCondition()]) {
  return { kind: "group", key: key(), not: false, op, items };
}

const DURATION = /^\d+[smhdw]$/;
const EPOCH_MS = /^\d{10,}$/;
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const NO_OFFSET = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/;
const WITH_OFFSET = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i;

// A time as typed: a duration back from now ("7d"), epoch milliseconds, or an
// ISO date or time. The console shows every time in UTC, so one typed without
// an offset is UTC too (the API wants an offset on every timestamp).
function timeValue(raw) {
  if (EPOCH_MS.test(raw)) return Number(raw);
  if (DATE_ONLY.test(raw)) return `${raw}T00:00:00Z`;
  if (NO_OFFSET.test(raw)) return `${raw.replace(" ", "T")}Z`;
  return raw;
}

function typed(text, condition) {
  const kind = kindOf(condition.attribute);
  const raw = text.trim();
  if (kind === "number") return raw === "" ? raw : Number(raw);
  if (kind === "time") return timeValue(raw);
  if (kind === "custom") {
    if (condition.valueType === "number") return raw === "" ? raw : Number(raw);
    if (condition.valueType === "boolean") return raw.toLowerCase() === "true";
  }
  return text;
}

function conditionToApi(c) {
  const out = { attribute: c.attribute, op: c.op };
  if (NO_VALUE_OPS.has(c.op)) return out;
  if (RELATIVE_OPS.has(c.op)) {
    out.value = `${c.amount}${c.unit}`;
    if (c.op === "changed_within" && c.to.trim() !== "") out.to = typed(c.to, c);
  } else if (LIST_OPS.has(c.op)) {
    out.value = c.text.split(",").map((v) => v.trim()).filter((v) => v !== "").map((v) => typed(v, c));
  } else if (c.op === "between") {
    out.value = [typed(c.text, c), typed(c.text2, c)];
  } else {
    out.value = typed(c.text, c);
  }
  if (TEXT_OPS.has(c.op) && c.ignoreCase) out.ignore_case = true;
  return out;
}

export function toApi(node) {
  const body = node.kind === "group"
    ? { [node.op]: node.items.map(toApi) }
    : conditionToApi(node);
  return node.not ? { not: body } : body;
}

function valueType(value) {
  if (typeof value === "number") return "number";
  if (typeof value === "boolean") return "boolean";
  return "string";
}

function show(value) {
  return value === undefined || value === null ? "" : String(value);
}

export function fromApi(rule, negate = false) {
  if (rule && typeof rule === "object" && "not" in rule) return fromApi(rule.not, !negate);
  if (rule && (Array.isArray(rule.all) || Array.isArray(rule.any))) {
    const op = Array.isArray(rule.all) ? "all" : "any";
    return { kind: "group", key: key(), not: negate, op, items: rule[op].map((r) => fromApi(r)) };
  }
  const c = { ...newCondition(rule.attribute), not: negate, op: rule.op };
  const value = rule.value;
  if (RELATIVE_OPS.has(rule.op) && typeof value === "string" && RELATIVE.test(value)) {
    const [, amount, unit] = value.match(RELATIVE);
    Object.assign(c, { amount, unit });
  } else if (Array.isArray(value)) {
    if (rule.op === "between") Object.assign(c, { text: show(value[0]), text2: show(value[1]) });
    else c.text = value.map(show).join(", ");
    c.valueType = valueType(value[0]);
  } else {
    c.text = show(value);
    c.valueType = valueType(value);
  }
  if ("to" in rule) {
    c.to = show(rule.to);
    c.valueType = valueType(rule.to);
  }
  c.ignoreCase = Boolean(rule.ignore_case);
  return c;
}

// The root is always a group, so the builder can add beside a lone condition.
export function rootFromApi(rule) {
  const node = fromApi(rule);
  return node.kind === "group" && !node.not ? node : newGroup("all", [node]);
}

export function countConditions(node) {
  return node.kind === "group" ? node.items.reduce((n, i) => n + countConditions(i), 0) : 1;
}

// ------------------------------------------------ what a rule still lacks
// The builder asks for a count only when every condition is complete, so a
// rule being typed ("custom." with no name yet, an empty value) is never sent:
// the preview says what is missing instead of showing the API's 400.
export const MAX_CUSTOM_NAME = 128;

// Each problem reads after "Condition 2 ".
function valueProblem(raw, condition, what = "a value") {
  const text = raw.trim();
  if (text === "") return `needs ${what}`;
  const kind = kindOf(condition.attribute);
  const numeric = kind === "number" || (kind === "custom" && condition.valueType === "number");
  if (numeric && !Number.isFinite(Number(text))) return `has “${text}”, which is not a number`;
  if (kind === "time" && !DURATION.test(text) && !EPOCH_MS.test(text)
    && !DATE_ONLY.test(text) && !NO_OFFSET.test(text) && !WITH_OFFSET.test(text)) {
    return `has “${text}”, which is not a time: write 7d (7 days ago) or a date like 2026-11-01`;
  }
  return null;
}

export function conditionProblem(c) {
  if (c.attribute.startsWith("custom.")) {
    const name = c.attribute.slice(7);
    if (name.trim() === "") return "needs the custom attribute's name";
    if (name.length > MAX_CUSTOM_NAME) return `custom attribute names are at most ${MAX_CUSTOM_NAME} characters`;
  }
  if (NO_VALUE_OPS.has(c.op)) return null;
  if (RELATIVE_OPS.has(c.op)) {
    if (!/^\d+$/.test(String(c.amount).trim()) || Number(c.amount) < 1) return "needs how many (a whole number, 1 or more)";
    if (c.op === "changed_within" && c.to.trim() !== "") return valueProblem(c.to, c);
    return null;
  }
  if (LIST_OPS.has(c.op)) {
    const items = c.text.split(",").filter((v) => v.trim() !== "");
    if (!items.length) return "needs at least one value (a, b, c)";
    for (const item of items) {
      const problem = valueProblem(item, c);
      if (problem) return problem;
    }
    return null;
  }
  if (c.op === "between") return valueProblem(c.text, c, "a first value") || valueProblem(c.text2, c, "a second value");
  return valueProblem(c.text, c);
}

// The first condition (in reading order) that is not complete:
// {key, number, message}, or null when the rules can be sent.
export function firstProblem(root) {
  let number = 0;
  const walk = (node) => {
    if (node.kind === "group") {
      if (!node.items.length) return { key: node.key, number: null, message: "Add a condition" };
      for (const item of node.items) {
        const found = walk(item);
        if (found) return found;
      }
      return null;
    }
    number += 1;
    const message = conditionProblem(node);
    return message ? { key: node.key, number, message: `Condition ${number} ${message}` } : null;
  };
  return walk(root);
}
