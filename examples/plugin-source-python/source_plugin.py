"""`pyjsonl`: a recotem data source in Python reading JSON Lines.

It asks for one capability, `input-stream`: the host opens the recipe's
`source.path` read-only and hands over the bytes. String and integer fields
become ids; other values, missing fields and blank lines are nulls.
"""

import json

from recotem_source import LineReader, checked, guard, info, invalid_input, lines, require

SCHEMA = json.dumps({
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "pyjsonl source",
    "type": "object",
    "additionalProperties": False,
    "required": ["type", "path"],
    "properties": {
        "type": {"const": "pyjsonl"},
        "path": {"type": "string", "minLength": 1},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    },
})


def parse_object(number, line):
    try:
        value = json.loads(line)
    except ValueError as e:
        raise invalid_input(f"line {number}: not JSON: {e}") from None
    if not isinstance(value, dict):
        raise invalid_input(f"line {number}: not a JSON object")
    return value


def as_id(value):
    return value if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)) else None


class SourcePlugin:
    def describe(self):
        return info("pyjsonl", "0.1.0", "JSON Lines, read by a Python component.", SCHEMA)

    @guard
    def probe(self, config, data):
        for line in lines(require(data)):
            return checked(f"first line has {len(parse_object(1, line))} fields")
        return checked("the input is empty")


class Reader(LineReader):
    @classmethod
    @guard
    def open(cls, config, data, columns):
        return cls(require(data), columns)

    def parse(self, number, line):
        if not line.strip():
            return None
        obj = parse_object(number, line)
        return [as_id(obj.get(name)) for name in self.columns]
