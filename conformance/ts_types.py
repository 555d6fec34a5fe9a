"""Reads the TypeScript types of Vercel's generated SDK (`models/*.ts`) into the fixtures'
JSON-Schema-like form, so the reply-shape tests can derive the replies Vercel may send.

The SDK declares every reply as plain types:

    export type Deployments = { created: number; aliasError?: AliasError | null | undefined; … };
    export type Body = Body1 | Body2;
    export const ReadyState = { Ready: "READY", … } as const;
    export type ReadyState = ClosedEnum<typeof ReadyState>;

A field without `?` is required; `| null` makes it nullable; `| undefined` only repeats `?`.
"""
import os
import re

PRIMITIVES = {"string": {"type": "string"}, "number": {"type": "number"},
              "boolean": {"type": "boolean"}, "Date": {"type": "string", "format": "date-time"},
              "any": {}, "unknown": {}}


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"^\s*//.*$", "", text, flags=re.M)


def top_level(text, start=0):
    """The indices (from `start`) of characters outside brackets, angle brackets, parentheses
    and strings."""
    depth, quote = 0, None
    for i in range(start, len(text)):
        c = text[i]
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c in "{<([":
            depth += 1
        elif c in "}>)]":
            depth -= 1
        elif depth == 0:
            yield i


def split_top(text, sep):
    """Splits at `sep` outside brackets, angle brackets, parentheses and strings."""
    parts, start = [], 0
    for i in top_level(text):
        if text[i] == sep:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def declaration_end(text, start):
    """The index of the `;` ending the declaration that starts at `start`."""
    return next((i for i in top_level(text, start) if text[i] == ";"), len(text))


def block_end(text, start):
    """The index just past the `}` closing the `{` at or after `start`."""
    depth = 0
    for i in range(text.index("{", start), len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return len(text)


class Models:
    """Every exported type, interface and enum of some TypeScript declaration files (a folder
    of them, or a list). `prefix` is put before every schema name, so that files declaring
    the same names differently (Slack's response types) can share one fixture."""

    def __init__(self, source, prefix=""):
        self.types, self.enums, self.prefix = {}, {}, prefix
        files = source if isinstance(source, list) else [
            os.path.join(source, f) for f in sorted(os.listdir(source))]
        for path in files:
            if not path.endswith(".ts"):
                continue
            text = strip_comments(open(path).read())
            for m in re.finditer(r"^export type (\w+) =", text, re.M):
                end = declaration_end(text, m.end())
                self.types.setdefault(m.group(1), text[m.end():end].strip())
            for m in re.finditer(r"^export interface (\w+) \{", text, re.M):
                self.types.setdefault(m.group(1), text[m.end() - 1:block_end(text, m.start())])
            for m in re.finditer(r"^export const (\w+) = \{(.*?)\} as const;", text, re.M | re.S):
                values = re.findall(r':\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?)', m.group(2))
                self.enums.setdefault(m.group(1), [eval_literal(v) for v in values])
            for m in re.finditer(r"^export declare enum (\w+) \{(.*?)\}", text, re.M | re.S):
                values = re.findall(r'=\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?)', m.group(2))
                self.types.setdefault(m.group(1), " | ".join(values) or "string")

    def closure(self, root):
        """Schemas for `root` and every named type it reaches: name -> schema."""
        out, todo = {}, [root]
        while todo:
            name = todo.pop()
            if name in out:
                continue
            if name not in self.types:
                raise KeyError(f"vercel SDK: no type {name}")
            schema = self.schema(self.types[name])
            out[name] = schema
            todo.extend(refs(schema))
        if self.prefix:
            out = {self.prefix + k: prefixed(v, self.prefix) for k, v in out.items()}
        return out

    def schema(self, expr):
        """The schema of a type expression."""
        expr = expr.strip()
        alts = split_top(expr, "|")
        nullable = any(a in ("null", "undefined") for a in alts)
        alts = [a for a in alts if a not in ("null", "undefined")]
        if not alts:
            return {"nullable": True}
        if all(is_literal(a) for a in alts):
            schema = {"enum": [eval_literal(a) for a in alts]}
        elif len(alts) == 1:
            schema = self.single(alts[0])
        else:
            schema = {"oneOf": [self.single(a) for a in alts]}
        if nullable:
            schema = dict(schema, nullable=True) if "$ref" not in schema else {
                "allOf": [schema], "nullable": True}
        return schema

    def single(self, expr):
        expr = expr.strip()
        if expr.startswith("(") and expr.endswith(")"):
            return self.schema(expr[1:-1])
        if "&" in expr and len(split_top(expr, "&")) > 1:
            return self.intersection(split_top(expr, "&"))
        if expr in PRIMITIVES:
            return dict(PRIMITIVES[expr])
        if is_literal(expr):
            return {"enum": [eval_literal(expr)]}
        if expr.endswith("[]"):
            return {"type": "array", "items": self.single(expr[:-2])}
        m = re.fullmatch(r"Array<(.*)>", expr, re.S)
        if m:
            return {"type": "array", "items": self.schema(m.group(1))}
        m = re.fullmatch(r"(?:Closed|Open)Enum<\s*typeof (\w+)\s*>", expr)
        if m:
            return {"type": "string", "enum": self.enums[m.group(1)]} if m.group(1) in \
                self.enums else {"type": "string"}
        m = re.fullmatch(r"Record<\s*string\s*,(.*)>", expr, re.S)
        if m:
            return {"type": "object", "additionalProperties": self.schema(m.group(1))}
        if expr.startswith("{") and expr.endswith("}"):
            return self.object(expr[1:-1])
        m = re.fullmatch(r"(?:\w+\.)?(\w+)", expr)
        if m:
            name = m.group(1)
            if name in self.enums and name not in self.types:
                return {"type": "string", "enum": self.enums[name]}
            return {"$ref": name}
        raise ValueError(f"vercel SDK: cannot read the type {expr!r}")

    def intersection(self, parts):
        """`A & { … }`: one object with the fields of all parts (an `allOf` of closed objects
        would refuse every field of the other parts)."""
        merged = {"type": "object", "properties": {}, "required": []}
        for part in parts:
            schema = self.schema(part)
            name = schema.get("$ref")
            if name in self.types:
                schema = self.schema(self.types[name])
            if schema.get("type") != "object":
                return {"allOf": [self.schema(p) for p in parts]}
            merged["properties"].update(schema.get("properties", {}))
            merged["required"] += [r for r in schema.get("required", [])
                                   if r not in merged["required"]]
        return {k: v for k, v in merged.items() if v}

    def object(self, body):
        props, required, extra = {}, [], None
        for member in split_top(body, ";"):
            for line in split_top(member, ","):
                m = re.fullmatch(r"\[\s*\w+\s*:\s*string\s*\]\s*:(.*)", line, re.S)
                if m:
                    extra = self.schema(m.group(1))
                    continue
                m = re.fullmatch(r"(\"[^\"]+\"|'[^']+'|[\w$]+)(\??)\s*:(.*)", line, re.S)
                if not m:
                    raise ValueError(f"vercel SDK: cannot read the member {line!r}")
                name = m.group(1).strip("\"'")
                props[name] = self.schema(m.group(3))
                if not m.group(2):
                    required.append(name)
        out = {"type": "object"}
        if props:
            out["properties"] = props
        if required:
            out["required"] = required
        if extra is not None:
            out["additionalProperties"] = extra
        return out


def is_literal(expr):
    return bool(re.fullmatch(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'|-?\d+(?:\.\d+)?|true|false', expr))


def eval_literal(expr):
    if expr in ("true", "false"):
        return expr == "true"
    if expr[0] in "\"'":
        return expr[1:-1]
    return float(expr) if "." in expr else int(expr)


def refs(schema):
    found = []
    if isinstance(schema, dict):
        if "$ref" in schema:
            found.append(schema["$ref"])
        for v in schema.values():
            found.extend(refs(v))
    elif isinstance(schema, list):
        for v in schema:
            found.extend(refs(v))
    return found


def prefixed(schema, prefix):
    if isinstance(schema, dict):
        return {k: (prefix + v if k == "$ref" else prefixed(v, prefix)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [prefixed(v, prefix) for v in schema]
    return schema
