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

function typed(text, condition) {
  const kind = kindOf(condition.attribute);
  const raw = text.trim();
  if (kind === "number") return raw === "" ? raw : Number(raw);
  if (kind === "time") return /^\d{10,}$/.test(raw) ? Number(raw) : raw;
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
