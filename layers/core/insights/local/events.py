"""EventBridge, locally: the template's buses, rules and SQS targets on moto, and the bus log.

Buses (AWS::Events::EventBus) and rules (AWS::Events::Rule, their event
patterns and SQS targets) come from template.yaml; moto matches each put
event against the rules and sends it to their queues, as EventBridge would.
Besides, every bus gets a catch-all rule of the local cloud's own, whose
queue pump_events() drains into `bus_events`: the local bus's log, which
`insights events tail` prints (`GET /_local/events`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from insights.local import aws
from insights.local.aws import ACCOUNT_ID, REGION
from insights.local.template import CONDITION, resolve

# Events kept in the bus log (the oldest are dropped past it).
BUS_LOG_SIZE = 10_000
_LOG_RULE = "local-bus-log"


class EventDelivery:
    # Provided by LocalCloud.
    template: Any
    deployment: Any
    sqs: Any
    own_clients: list[Any]
    bus_events: list[dict[str, Any]]
    bus_dropped: int
    _bus_lock: threading.Lock
    _lookup: Callable[[str, str | None], Any]

    def _create_event_buses(self) -> None:
        self.events = aws.client("events")
        self.own_clients.append(self.events)
        existing = {b["Name"] for b in self.events.list_event_buses()["EventBuses"]}
        for name, res in self.template.of_type("AWS::Events::EventBus").items():
            if not self._holds(res):
                continue
            bus = str(resolve(res["Properties"]["Name"], self._lookup))
            if bus not in existing:
                self.events.create_event_bus(Name=bus)
            self.deployment.buses[name] = bus
        for name, res in self.template.of_type("AWS::Events::Rule").items():
            if self._holds(res):
                self._put_rule(name, res["Properties"])
        for bus in self.deployment.buses.values():
            self._put_log_rule(bus)

    def _holds(self, resource: dict[str, Any]) -> bool:
        condition = resource.get("Condition")
        return condition is None or bool(self._lookup(condition, CONDITION))

    def _put_rule(self, name: str, props: dict[str, Any]) -> None:
        bus = str(resolve(props.get("EventBusName", "default"), self._lookup))
        self.events.put_rule(
            Name=name,
            EventBusName=bus,
            EventPattern=json.dumps(resolve(props["EventPattern"], self._lookup)),
            State="ENABLED",
        )
        targets = []
        for target in resolve(props.get("Targets", []), self._lookup):
            if ":sqs:" not in str(target["Arn"]):
                raise ValueError(f"rule {name}: the local cloud delivers to SQS targets only")
            targets.append({"Id": target["Id"], "Arn": target["Arn"]})
        if targets:
            self.events.put_targets(Rule=name, EventBusName=bus, Targets=targets)

    def _put_log_rule(self, bus: str) -> None:
        queue = f"local-events-{bus}"[:80]
        self.deployment.bus_logs[bus] = self.sqs.create_queue(QueueName=queue)["QueueUrl"]
        self.events.put_rule(
            Name=_LOG_RULE,
            EventBusName=bus,
            EventPattern=json.dumps({"account": [ACCOUNT_ID]}),
            State="ENABLED",
        )
        self.events.put_targets(
            Rule=_LOG_RULE,
            EventBusName=bus,
            Targets=[{"Id": "log", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{queue}"}],
        )

    def bus_arn(self, bus: str) -> str:
        return f"arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/{bus}"

    def pump_events(self) -> int:
        """Move what reached each bus into the bus log; returns events moved."""
        moved = 0
        for bus, url in self.deployment.bus_logs.items():
            while True:
                page = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
                messages = page.get("Messages", [])
                if not messages:
                    break
                with self._bus_lock:
                    for message in messages:
                        self.bus_events.append({"bus": bus, **json.loads(message["Body"])})
                    overflow = len(self.bus_events) - BUS_LOG_SIZE
                    if overflow > 0:
                        del self.bus_events[:overflow]
                        self.bus_dropped += overflow
                for message in messages:
                    self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                moved += len(messages)
        return moved

    def events_after(self, position: int) -> tuple[list[dict[str, Any]], int]:
        """Bus log entries after `position` (a count of events ever logged), and the new one."""
        self.pump_events()
        with self._bus_lock:
            end = self.bus_dropped + len(self.bus_events)
            start = max(position, self.bus_dropped) - self.bus_dropped
            return list(self.bus_events[start:]), end
