// The console builder's rule conversions (layers/core/insights/console/static/rules.mjs),
// with node's built-in runner; run by tests/test_sdk_server.py with the SDK's tests.
// The builder itself is driven in a real browser by tests/e2e/test_console.py.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  conditionProblem, countConditions, firstProblem, fromApi, newCondition, newGroup, opsFor, rootFromApi, toApi,
} from "../../layers/core/insights/console/static/rules.mjs";

// Every shape the README's rule language has: groups, not, each kind of value.
const RULES = {
  all: [
    { attribute: "first_seen", op: "within_last", value: "7d" },
    { attribute: "last_seen", op: "between", value: ["14d", "7d"] },
    { attribute: "total_sessions", op: "in", value: [1, 2, 3] },
    { attribute: "country", op: "starts_with", value: "Swe", ignore_case: true },
    { attribute: "custom.plan", op: "changed_within", value: "2w", to: "VIP" },
    { attribute: "custom.seats", op: "gte", value: 10 },
    { attribute: "custom.beta", op: "equals", value: true },
    { attribute: "city", op: "is_set" },
    {
      not: {
        any: [
          { attribute: "browser_name", op: "not_in", value: ["Safari", "Firefox"] },
          { not: { attribute: "custom.role", op: "equals", value: "admin" } },
        ],
      },
    },
  ],
};

test("the API's rules survive a round trip through the builder's form", () => {
  assert.deepEqual(toApi(fromApi(RULES)), RULES);
  assert.equal(countConditions(fromApi(RULES)), 10);
});

test("a lone condition becomes the root group's only item", () => {
  const lone = { attribute: "first_seen", op: "within_last", value: "7d" };
  assert.deepEqual(toApi(rootFromApi(lone)), { all: [lone] });
  assert.deepEqual(toApi(rootFromApi({ not: lone })), { all: [{ not: lone }] });
});

test("values are typed by attribute: numbers for counts, relative or ISO times, custom as chosen", () => {
  const sessions = { ...newCondition("total_sessions"), op: "equals", text: "1" };
  assert.deepEqual(toApi(sessions), { attribute: "total_sessions", op: "equals", value: 1 });
  // The console shows times in UTC; the API wants an offset on every timestamp.
  const since = { ...newCondition("first_seen"), op: "after", text: "2026-11-01" };
  assert.equal(toApi(since).value, "2026-11-01T00:00:00Z");
  const at = { ...since, text: "2026-11-01 08:30" };
  assert.equal(toApi(at).value, "2026-11-01T08:30Z");
  const offset = { ...since, text: "2026-11-01T08:30:00+02:00" };
  assert.equal(toApi(offset).value, "2026-11-01T08:30:00+02:00");
  const ago = { ...since, op: "between", text: "14d", text2: "7d" };
  assert.deepEqual(toApi(ago).value, ["14d", "7d"]);
  const epoch = { ...newCondition("first_seen"), op: "after", text: "1795867200000" };
  assert.equal(toApi(epoch).value, 1795867200000);
  const text = { ...newCondition("custom.code"), op: "equals", text: "007" };
  assert.equal(toApi(text).value, "007"); // "007" stays a string unless asked
  const number = { ...text, valueType: "number" };
  assert.equal(toApi(number).value, 7);
  const list = { ...newCondition("country"), op: "in", text: "Sweden, Norway,  " };
  assert.deepEqual(toApi(list).value, ["Sweden", "Norway"]);
});

test("each attribute offers the operators the API accepts for it", () => {
  assert.ok(opsFor("first_seen").includes("within_last"));
  assert.ok(!opsFor("first_seen").includes("contains"));
  assert.ok(!opsFor("country").includes("gt"));
  assert.ok(opsFor("custom.anything").includes("changed_within"));
  assert.ok(!opsFor("total_sessions").includes("changed_within"));
});

test("groups nest and negate", () => {
  const group = newGroup("any", [newCondition("city"), newGroup("all")]);
  group.not = true;
  const api = toApi(group);
  assert.deepEqual(Object.keys(api), ["not"]);
  assert.equal(api.not.any.length, 2);
  assert.ok("all" in api.not.any[1]);
});

test("a condition still being typed is named, so the preview never sends it", () => {
  const custom = { ...newCondition("custom.x"), attribute: "custom.", op: "equals", text: "VIP" };
  assert.equal(conditionProblem(custom), "needs the custom attribute's name");
  const empty = { ...newCondition("country"), op: "equals", text: "  " };
  assert.equal(conditionProblem(empty), "needs a value");
  const list = { ...newCondition("country"), op: "in", text: " , " };
  assert.equal(conditionProblem(list), "needs at least one value (a, b, c)");
  const half = { ...newCondition("total_sessions"), op: "between", text: "2", text2: "" };
  assert.equal(conditionProblem(half), "needs a second value");
  const word = { ...newCondition("total_sessions"), op: "gt", text: "many" };
  assert.equal(conditionProblem(word), "has “many”, which is not a number");
  const when = { ...newCondition("first_seen"), op: "before", text: "yesterday" };
  assert.match(conditionProblem(when), /^has “yesterday”, which is not a time/);
  const amount = { ...newCondition("last_seen"), amount: "" };
  assert.equal(conditionProblem(amount), "needs how many (a whole number, 1 or more)");
  const typedNumber = { ...newCondition("custom.seats"), op: "gte", text: "ten", valueType: "number" };
  assert.equal(conditionProblem(typedNumber), "has “ten”, which is not a number");
  for (const done of [
    { ...newCondition("custom.plan"), op: "equals", text: "VIP" },
    { ...newCondition("city"), op: "is_set" },
    { ...newCondition("first_seen"), op: "before", text: "2026-11-01" },
    { ...newCondition("first_seen"), op: "after", text: "7d" },
    { ...newCondition("custom.plan"), op: "changed_within", to: "" },
  ]) assert.equal(conditionProblem(done), null, JSON.stringify(done));
});

test("the first unfinished condition is found in reading order, numbered", () => {
  const done = { ...newCondition("country"), op: "equals", text: "Sweden" };
  const open = { ...newCondition("city"), op: "equals", text: "" };
  const root = newGroup("all", [done, newGroup("any", [{ ...done }, open])]);
  assert.deepEqual(firstProblem(root), { key: open.key, number: 3, message: "Condition 3 needs a value" });
  assert.equal(firstProblem(newGroup("all", [done])), null);
  assert.equal(firstProblem(newGroup("all", [])).message, "Add a condition");
  assert.equal(firstProblem(fromApi(RULES)), null); // every shape the API accepts is complete
});
