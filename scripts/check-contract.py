#!/usr/bin/env python3
"""Validates real answers of graced against openapi.yaml.

The answers are written by the Swift test `ContractAnswerTests` (Tests/GraceAPITests), which drives a
service over a simulated host and saves one JSON file per answer in .build/contract-answers/:
{"method", "path" (the operation's path template), "status", "headers", "body" (the text)}. This
script starts nothing: it finds each answer's operation and response in the document, checks the
content type, the headers the response declares required and any ETag, Location, Retry-After,
Allow or WWW-Authenticate it carries but the response does not declare, and validates the body
against the response's schema as JSON Schema 2020-12 (what OpenAPI 3.1 schemas are), every $ref
resolved within the document. Then it checks that every operation has at least one answer of
2xx. It exits 1 on any failure.

Usage: check-contract.py [ANSWERS_DIR] (default .build/contract-answers)
"""
import datetime
import json
import pathlib
import sys

import jsonschema
import referencing
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCUMENT_URI = "urn:graceapi:openapi"
# Headers whose presence the contract must declare when graced sends them.
CONTRACT_HEADERS = ["etag", "location", "retry-after", "allow", "www-authenticate"]
METHODS = ["get", "put", "post", "delete", "patch"]


def load_document():
    with open(ROOT / "openapi.yaml", encoding="utf-8") as file:
        return yaml.safe_load(file)


def resolve(document, node):
    """Follows an OpenAPI (not JSON Schema) $ref, e.g. to #/components/responses/X."""
    while isinstance(node, dict) and "$ref" in node:
        target = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def pointer(*parts):
    return "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def date_time(value):
    if not isinstance(value, str):
        return True
    # RFC 3339 needs a time zone; fromisoformat alone would take a naive time.
    parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.tzinfo is not None


FORMATS = jsonschema.FormatChecker(formats=())
FORMATS.checks("date-time", raises=ValueError)(date_time)


def check_answer(document, registry, answer):
    """The problems with one answer, as strings; empty when it conforms."""
    method, path, status = answer["method"].lower(), answer["path"], str(answer["status"])
    operation = document["paths"].get(path, {}).get(method)
    if operation is None:
        return [f"{method.upper()} {path} is not an operation of openapi.yaml"]
    responses = operation["responses"]
    if status not in responses:
        return [f"status {status} is not listed (listed: {', '.join(sorted(responses))})"]
    response = resolve(document, responses[status])
    problems = []
    headers = {name.lower(): value for name, value in answer["headers"].items()}
    declared = {name.lower(): resolve(document, header) for name, header in response.get("headers", {}).items()}
    for name, header in declared.items():
        if header.get("required") and name not in headers:
            problems.append(f"header {name} is required but missing")
    for name in CONTRACT_HEADERS:
        if name in headers and name not in declared:
            problems.append(f"header {name} is sent but not declared")
    content = response.get("content")
    if not content:
        if answer["body"]:
            problems.append("the response declares no content but has a body")
        return problems
    sent = headers.get("content-type", "")
    # A media type declared with its parameters (`text/plain; version=0.0.4`) must be sent with them.
    full = ";".join(part.strip() for part in sent.split(";"))
    declared_types = {";".join(part.strip() for part in name.split(";")): name for name in content}
    media_type = declared_types.get(full) or declared_types.get(sent.split(";")[0].strip())
    if media_type is None:
        return problems + [f"content type {sent!r} is not declared ({', '.join(content)})"]
    if "schema" not in content[media_type]:
        return problems
    base_type = media_type.split(";")[0].strip()
    if base_type == "application/yaml":
        bodies = [yaml.safe_load(answer["body"])]
    elif base_type == "text/event-stream":
        bodies = server_sent_events(answer["body"])
        if not bodies:
            problems.append("the event stream carries no event")
    elif base_type.startswith("text/"):
        bodies = [answer["body"]]
    else:
        bodies = [json.loads(answer["body"])]
    # Validate through a $ref into the document, so that the schema's own $refs resolve in it.
    reference = {"$ref": DOCUMENT_URI + "#/" + response_schema_path(document, path, method, status, media_type)}
    validator = jsonschema.Draft202012Validator(reference, registry=registry, format_checker=FORMATS)
    for body in bodies:
        for error in sorted(validator.iter_errors(body), key=lambda error: list(error.absolute_path)):
            location = "/".join(str(part) for part in error.absolute_path) or "(body)"
            problems.append(f"{location}: {error.message[:300]}")
        problems += event_data_problems(registry, body) if base_type == "text/event-stream" else []
    return problems


def server_sent_events(text):
    """The events of a text/event-stream body, each as its fields (comments and a lone `retry:`
    hint are not events)."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data" and "data" in fields:
                fields["data"] += "\n" + value
            elif name == "retry":
                fields["retry"] = int(value)
            else:
                fields[name] = value
        if "event" in fields or "data" in fields:
            events.append(fields)
    return events


def event_data_problems(registry, event):
    """A data line is JSON of the `Event` schema (contentSchema is an annotation JSON Schema does
    not assert, so it is checked here)."""
    try:
        data = json.loads(event.get("data", ""))
    except json.JSONDecodeError as error:
        return [f"data: not JSON ({error})"]
    validator = jsonschema.Draft202012Validator(
        {"$ref": DOCUMENT_URI + "#/components/schemas/Event"}, registry=registry, format_checker=FORMATS)
    return [f"data/{'/'.join(str(p) for p in error.absolute_path)}: {error.message[:300]}" for error in validator.iter_errors(data)]


def response_schema_path(document, path, method, status, media_type):
    """The JSON pointer of a response's schema, through a component response if it is a $ref."""
    node = document["paths"][path][method]["responses"][status]
    if "$ref" in node:
        base = node["$ref"].removeprefix("#/")
    else:
        base = pointer("paths", path, method, "responses", status)
    return base + "/" + pointer("content", media_type, "schema")


def main():
    folder = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / ".build" / "contract-answers"
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not files:
        print(f"no answers in {folder}: run `swift test --filter ContractAnswer` first")
        return 1
    document = load_document()
    resource = referencing.Resource.from_contents(document, default_specification=referencing.jsonschema.DRAFT202012)
    registry = referencing.Registry().with_resource(DOCUMENT_URI, resource)
    failures = 0
    answered = set()
    for file in files:
        answer = json.loads(file.read_text(encoding="utf-8"))
        label = f"{answer['method']} {answer['path']} {answer['status']} ({file.name})"
        try:
            problems = check_answer(document, registry, answer)
        except Exception as error:  # a body that does not parse, a schema that does not resolve
            problems = [f"{type(error).__name__}: {error}"]
        if problems:
            failures += 1
            print(f"FAIL {label}")
            for problem in problems:
                print(f"     {problem}")
        elif str(answer["status"]).startswith("2"):
            answered.add((answer["method"].lower(), answer["path"]))
    operations = {(method, path) for path, item in document["paths"].items() for method in item if method in METHODS}
    for method, path in sorted(operations - answered):
        failures += 1
        print(f"FAIL {method.upper()} {path}: no conforming 2xx answer was checked")
    print(f"checked {len(files)} answers against {len(operations)} operations")
    print(f"{max(len(files) - failures, 0)} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
