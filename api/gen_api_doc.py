#!/usr/bin/env python3
"""Generates docs/api.md from the comments of a .proto file.

The .proto is the API's documentation; this keeps a readable reference in
docs/ without a second copy to maintain by hand.

  python3 api/gen_api_doc.py api/ptnetmap/v1/ptnetmap.proto docs/api.md
  python3 api/gen_api_doc.py --check api/ptnetmap/v1/ptnetmap.proto docs/api.md

--check exits 1 when the file differs from what would be generated (the
`api_doc_up_to_date` unit test runs it).

Understands the subset of proto3 the project uses: one package, services
with unary or streaming rpcs, top-level enums and messages, scalar,
message, repeated and map fields, and `//` comments directly above a
declaration.
"""
import argparse
import re
import sys

RPC = re.compile(r"rpc\s+(\w+)\s*\(\s*(stream\s+)?([\w.]+)\s*\)\s*returns\s*\(\s*(stream\s+)?([\w.]+)\s*\)")
FIELD = re.compile(r"(repeated\s+|optional\s+)?(map<[^>]+>|[\w.]+)\s+(\w+)\s*=\s*(\d+)\s*;")
ENUM_VALUE = re.compile(r"(\w+)\s*=\s*(-?\d+)\s*;")
BLOCK = re.compile(r"(service|message|enum)\s+(\w+)\s*\{")


def parse(text):
    """Returns (package, header comment, [blocks]); a block is a dict with
    kind, name, comment and items (each a dict with its own comment)."""
    package, header, blocks = "", [], []
    comment, current = [], None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("//"):
            comment.append(line[2:].removeprefix(" "))
            continue
        if not line:  # a blank line detaches a comment from what follows
            comment = []
            continue
        if line.startswith("syntax"):  # the file's comment sits right above it
            header, comment = comment, []
            continue
        if line.startswith("package"):
            package = line.split()[1].rstrip(";")
        elif (m := BLOCK.match(line)) and current is None:
            current = {"kind": m.group(1), "name": m.group(2), "comment": comment, "items": []}
            blocks.append(current)
            if line.endswith("}"):
                current = None
        elif line.startswith("}"):
            current = None
        elif current is not None:
            item = None
            if current["kind"] == "service" and (m := RPC.match(line)):
                item = {"name": m.group(1), "request": (m.group(2) or "") + m.group(3),
                        "response": (m.group(4) or "") + m.group(5)}
            elif current["kind"] == "message" and (m := FIELD.match(line)):
                label = (m.group(1) or "").strip()
                item = {"name": m.group(3), "type": (label + " " if label else "") + m.group(2),
                        "number": m.group(4)}
            elif current["kind"] == "enum" and (m := ENUM_VALUE.match(line)):
                item = {"name": m.group(1), "number": m.group(2)}
            if item is not None:
                item["comment"] = comment
                current["items"].append(item)
        comment = []
    return package, header, blocks


def cell(lines):
    """One table cell: lines joined, and nothing read as markup."""
    text = " ".join(lines).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return text or "-"


def type_link(name, known):
    base = name.replace("repeated ", "").replace("stream ", "")
    if base in known:
        return name.replace(base, f"[{base}](#{base.lower()})")
    return f"`{name}`"


def render(source, package, header, blocks):
    known = {b["name"] for b in blocks if b["kind"] != "service"}
    out = [f"# API reference: `{package}`", "",
           f"<!-- Generated from {source} by api/gen_api_doc.py; do not edit by hand. -->", ""]
    out += header + [""]
    for block in (b for b in blocks if b["kind"] == "service"):
        out += [f"## Service `{block['name']}`", ""] + block["comment"] + [""]
        for rpc in block["items"]:
            out += [f"### {rpc['name']}", "",
                    f"`rpc {rpc['name']}({rpc['request']}) returns ({rpc['response']})`", "",
                    "Request: " + type_link(rpc["request"], known) + ", response: "
                    + type_link(rpc["response"], known) + ".", ""]
            out += rpc["comment"] + [""]
    enums = [b for b in blocks if b["kind"] == "enum"]
    if enums:
        out += ["## Enums", ""]
    for block in enums:
        out += [f"### {block['name']}", ""] + block["comment"] + [""]
        out += ["| value | number | meaning |", "|---|---|---|"]
        out += [f"| `{v['name']}` | {v['number']} | {cell(v['comment'])} |" for v in block["items"]]
        out += [""]
    out += ["## Messages", ""]
    for block in (b for b in blocks if b["kind"] == "message"):
        out += [f"### {block['name']}", ""]
        if block["comment"]:
            out += block["comment"] + [""]
        if not block["items"]:
            out += ["No fields.", ""]
            continue
        out += ["| field | type | number | meaning |", "|---|---|---|---|"]
        out += [f"| `{f['name']}` | {type_link(f['type'], known)} | {f['number']} | {cell(f['comment'])} |"
                for f in block["items"]]
        out += [""]
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare instead of writing; exit 1 if out of date")
    parser.add_argument("proto")
    parser.add_argument("output")
    args = parser.parse_args()
    with open(args.proto, encoding="utf-8") as f:
        package, header, blocks = parse(f.read())
    source = "api/" + args.proto.split("/api/", 1)[-1] if "/api/" in args.proto else args.proto
    text = render(source, package, header, blocks)
    if args.check:
        try:
            with open(args.output, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current != text:
            print(f"{args.output} is out of date with {args.proto}; regenerate it with\n"
                  f"  python3 api/gen_api_doc.py {source} docs/api.md", file=sys.stderr)
            return 1
        return 0
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
