#!/usr/bin/env python3
"""Count what instantiating a WebAssembly component creates in one store:
core module instances, and the tables and memories they define. These are
what recotem's per-store limits (host/src/plugin/limits.rs) bound.

Usage: scripts/component-counts.py file.wasm
"""
import sys


def leb(buf, pos):
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def module_counts(buf):
    """Defined tables and memories of one core module."""
    pos, tables, memories = 8, 0, 0
    while pos < len(buf):
        sid, pos = buf[pos], pos + 1
        size, pos = leb(buf, pos)
        if sid == 4:
            tables += leb(buf, pos)[0]
        elif sid == 5:
            memories += leb(buf, pos)[0]
        pos += size
    return tables, memories


def component_counts(buf):
    """(module instantiations, tables, memories), counting each core
    instantiation of a module with the module's own tables and memories."""
    modules, pos = [], 8
    instances = tables = memories = 0
    while pos < len(buf):
        sid, pos = buf[pos], pos + 1
        size, pos = leb(buf, pos)
        body = buf[pos:pos + size]
        if sid == 1:  # core module
            modules.append(module_counts(body))
        elif sid == 4:  # nested component (counted as if instantiated once)
            i, t, m = component_counts(body)
            instances, tables, memories = instances + i, tables + t, memories + m
        elif sid == 2:  # core instances
            n, p = leb(body, 0)
            for _ in range(n):
                kind, p = body[p], p + 1
                if kind == 0x00:  # instantiate a module
                    idx, p = leb(body, p)
                    instances += 1
                    t, m = modules[idx] if idx < len(modules) else (0, 0)
                    tables, memories = tables + t, memories + m
                    args, p = leb(body, p)
                    for _ in range(args):
                        ln, p = leb(body, p)
                        p += ln + 1  # name, then the 0x12 instance sort
                        _, p = leb(body, p)
                else:  # from exports
                    exports, p = leb(body, p)
                    for _ in range(exports):
                        ln, p = leb(body, p)
                        p += ln + 1
                        _, p = leb(body, p)
        pos += size
    return instances, tables, memories


if __name__ == "__main__":
    data = open(sys.argv[1], "rb").read()
    i, t, m = component_counts(data)
    print(f"{sys.argv[1]}: {i} core instances, {t} tables, {m} memories, {len(data)} bytes")
