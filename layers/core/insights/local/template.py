"""Read template.yaml (with CloudFormation short tags) into plain data."""

from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


# libyaml's loader when PyYAML has it: the pure-Python one costs a quarter
# of a second per stack on this template, and every test deploys one.
class _CfnLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    pass


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: _tag(loader, suffix, node))


@functools.lru_cache(maxsize=4)
def _parsed(path: Path, mtime_ns: int) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CfnLoader)


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str
    environment: dict[str, Any]
    events: dict[str, dict[str, Any]]
    timeout: int
    memory: int
    policies: list[Any]


@dataclass
class Template:
    path: Path
    body: dict[str, Any]
    resources: dict[str, dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.resources = self.body.get("Resources", {})

    @classmethod
    def load(cls, path: Path) -> Template:
        # A copy: parsing is a tenth of a test stack's start, and callers may change theirs.
        return cls(path, copy.deepcopy(_parsed(path, path.stat().st_mtime_ns)))

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            name: res for name, res in self.resources.items() if res.get("Type") == resource_type
        }

    def parameter_defaults(self) -> dict[str, Any]:
        return {name: spec.get("Default") for name, spec in self.body.get("Parameters", {}).items()}

    def functions(self) -> list[FunctionSpec]:
        globals_fn = self.body.get("Globals", {}).get("Function", {})
        global_env = globals_fn.get("Environment", {}).get("Variables", {})
        specs = []
        for name, res in self.of_type("AWS::Serverless::Function").items():
            props = res["Properties"]
            env = {**global_env, **props.get("Environment", {}).get("Variables", {})}
            specs.append(
                FunctionSpec(
                    logical_id=name,
                    code_dir=self.path.parent / props["CodeUri"],
                    handler=props.get("Handler", globals_fn.get("Handler", "app.handler")),
                    environment=env,
                    events=props.get("Events", {}),
                    timeout=int(props.get("Timeout", globals_fn.get("Timeout", 3))),
                    memory=int(props.get("MemorySize", globals_fn.get("MemorySize", 128))),
                    policies=props.get("Policies", []),
                )
            )
        return specs


_SUB_REF = re.compile(r"\$\{([^}]+)\}")


# lookup(name, CONDITION): whether the template condition `name` holds.
CONDITION = "<condition>"


def rate_minutes(expression: str) -> int:
    """`rate(5 minutes)` -> 5: how often EventBridge Scheduler runs a schedule."""
    count, unit = expression.removeprefix("rate(").removesuffix(")").split()
    units = {"minute": 1, "minutes": 1, "hour": 60, "hours": 60, "day": 1440, "days": 1440}
    return int(count) * units[unit]


def resolve(value: Any, lookup: Any) -> Any:
    """Resolve Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Select, Fn::Split and conditions.

    Conditions (Fn::If, Fn::Equals, Fn::Not, Fn::Or, Condition) are evaluated as
    CloudFormation would with the parameters' defaults; `Ref: AWS::NoValue`
    resolves to None.
    """
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return None if arg == "AWS::NoValue" else lookup(arg, None)
        if key == "Fn::If":
            name, when_true, when_false = arg
            return resolve(when_true if lookup(name, CONDITION) else when_false, lookup)
        if key == "Fn::Equals":
            left, right = (resolve(v, lookup) for v in arg)
            return left == right
        if key == "Fn::Not":
            return not resolve(arg[0], lookup)
        if key == "Fn::Or":
            return any(resolve(v, lookup) for v in arg)
        if key == "Condition":
            return bool(lookup(arg, CONDITION))
        if key == "Fn::GetAtt":
            return lookup(arg[0], arg[1])
        if key == "Fn::Sub":
            text = arg if isinstance(arg, str) else arg[0]
            variables = {} if isinstance(arg, str) else resolve(arg[1], lookup)

            def sub(match: re.Match[str]) -> str:
                name, _, attribute = match.group(1).partition(".")
                if name in variables and not attribute:
                    return str(variables[name])
                return str(lookup(name, attribute or None))

            return _SUB_REF.sub(sub, text)
        if key == "Fn::Join":
            return str(arg[0]).join(str(v) for v in resolve(arg[1], lookup))
        if key == "Fn::Select":
            return resolve(arg[1], lookup)[int(resolve(arg[0], lookup))]
        if key == "Fn::Split":
            return str(resolve(arg[1], lookup)).split(arg[0])
    if isinstance(value, dict):
        return {k: resolve(v, lookup) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, lookup) for v in value]
    return value
