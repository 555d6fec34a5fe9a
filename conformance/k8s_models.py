"""Reads the Gateway API types from `@kubernetes-models/gateway-api` (npm), which generates
one TypeScript declaration per type from the project's CRDs (their `openAPIV3Schema`), into
the fixtures' JSON-Schema-like form:

    import { IIoK8sSigsGatewayApiApisV1Kind } from "./Kind.js";
    export interface IHTTPBackendRef extends IIoK8sSigsGatewayApiApisV1BackendRef {
        "filters"?: Array<IIoK8sSigsGatewayApiApisV1HTTPRouteFilter>;
    }
    export type IKind = string;

A field without `?` is required. TypeScript's `number` is an integer here: Kubernetes' API
conventions keep floating-point values out of every spec, and the Gateway API's CRDs give each
number `type: integer` (its generated validators check `int32`). Types from `@kubernetes-models/apimachinery` are Kubernetes'
own (`ObjectMeta`, `Condition`), named as in the core description. What TypeScript cannot say
(bounds, patterns, lengths, enums the CRD gives as plain strings) is not kept.
"""
import os
import re

PACKAGE = "@kubernetes-models/gateway-api@2.0.0"
PREFIX = "io.k8s.sigs.gateway-api.apis.v1."
APIMACHINERY = "io.k8s.apimachinery.pkg.apis.meta.v1."


def _body(text, start):
    """The text between the brace at `start` and its match."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1:i]
    raise ValueError("unbalanced braces")


class Models:
    """The declarations of one API version's directory (`gateway.networking.k8s.io/v1`)."""

    def __init__(self, directory):
        self.dir = directory
        self.schemas = {}

    def _imports(self, text):
        out = {}
        for name, source in re.findall(r'import \{ (\w+) \} from "([^"]+)";', text):
            if source.startswith("./"):
                out[name] = ("local", source[2:].removesuffix(".js"))
            elif source.startswith("@kubernetes-models/apimachinery/apis/meta/v1/"):
                out[name] = ("core", APIMACHINERY + source.rsplit("/", 1)[1])
        return out

    def _type(self, expr, imports):
        expr = expr.strip()
        if expr in ("string", "boolean"):
            return {"type": expr}
        if expr == "number":
            return {"type": "integer"}
        m = re.fullmatch(r"Array<(.+)>", expr)
        if m:
            return {"type": "array", "items": self._type(m.group(1), imports)}
        m = re.fullmatch(r"\{\s*\[key: string\]: (.+?);?\s*\}", expr, re.S)
        if m:
            return {"type": "object", "additionalProperties": self._type(m.group(1), imports)}
        if re.fullmatch(r'"[^"]*"(\s*\|\s*"[^"]*")*', expr):
            return {"type": "string", "enum": re.findall(r'"([^"]*)"', expr)}
        if re.fullmatch(r"\d+(\s*\|\s*\d+)*", expr):
            return {"type": "integer", "enum": [int(n) for n in re.findall(r"\d+", expr)]}
        if expr in imports:
            kind, target = imports[expr]
            if kind == "core":
                return {"$ref": target}
            self.load(target)
            return {"$ref": PREFIX + target}
        raise ValueError(f"{self.dir}: cannot read type {expr!r}")

    def load(self, name):
        """Reads `name` (a file stem: `HTTPRoute`) and what it refers to into `schemas`."""
        full = PREFIX + name
        if full in self.schemas:
            return
        self.schemas[full] = {}  # a placeholder against cycles
        text = open(os.path.join(self.dir, name + ".d.ts")).read()
        text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
        imports = self._imports(text)
        alias = re.search(r"export type I" + name + r" = (.+?);\n", text, re.S)
        if alias:
            self.schemas[full] = self._type(alias.group(1), imports)
            return
        m = re.search(r"export interface I" + name + r"(?: extends ([\w, ]+))? \{", text)
        if not m:
            raise ValueError(f"{name}: no interface or type")
        props, required = {}, []
        for parent in (m.group(1) or "").split(","):
            parent = parent.strip()
            if parent and parent in imports and imports[parent][0] == "local":
                self.load(imports[parent][1])
                base = self.schemas[PREFIX + imports[parent][1]]
                props.update(base.get("properties", {}))
                required += base.get("required", [])
        body = _body(text, m.end() - 1)
        for field, optional, expr in re.findall(r'^\s*"(\w+)"(\??): (.+?);\s*$', body, re.M):
            props[field] = self._type(expr, imports)
            if not optional and field not in required:
                required.append(field)
        schema = {"type": "object", "properties": props, "additionalProperties": False}
        if required:
            schema["required"] = required
        self.schemas[full] = schema
