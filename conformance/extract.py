#!/usr/bin/env python3
"""Extracts, from the official API descriptions, the operations the ops clients call into small
fixtures under conformance/descriptions/, which the conformance check reads.

    ../shared/tools/fetch-api-specs /tmp/specs      # Google discovery, GitHub OpenAPI, Vercel SDK
    python3 conformance/extract.py /tmp/specs

Each fixture keeps, per operation: method, path template, query parameters (type, format, enum,
required, repeated) and the request body's schema (JSON-Schema-like: type, format, enum,
properties, items, additionalProperties, nullable, oneOf/anyOf/allOf, $ref into `schemas`).
Descriptions (prose) are dropped. When a client starts calling a new endpoint, add it to the
lists below and run this again; the check fails on any request it cannot find here.
"""
import json
import os
import re
import subprocess
import sys

import k8s_models
import ts_types

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "descriptions")

# Google: discovery document -> method ids the clients call.
GOOGLE = {
    "storage.v1": [
        "storage.objects.get", "storage.objects.list", "storage.objects.insert",
        "storage.objects.delete", "storage.objects.patch", "storage.objects.rewrite",
        "storage.buckets.list",
    ],
    "run.v2": [
        "run.projects.locations.services.get", "run.projects.locations.services.patch",
        "run.projects.locations.services.revisions.list",
        "run.projects.locations.services.revisions.get",
        "run.projects.locations.services.revisions.delete",
        "run.projects.locations.operations.get", "run.projects.locations.operations.wait",
    ],
    "logging.v2": ["logging.entries.list"],
    "monitoring.v3": ["monitoring.projects.timeSeries.list"],
    "secretmanager.v1": [
        "secretmanager.projects.secrets.get", "secretmanager.projects.secrets.create",
        "secretmanager.projects.secrets.addVersion",
        "secretmanager.projects.secrets.versions.access",
        "secretmanager.projects.secrets.versions.get",
        "secretmanager.projects.secrets.versions.list",
        "secretmanager.projects.secrets.versions.disable",
        "secretmanager.projects.secrets.versions.enable",
        "secretmanager.projects.secrets.versions.destroy",
        "secretmanager.projects.secrets.list",
    ],
    "sqladmin.v1": [
        "sql.backupRuns.insert", "sql.backupRuns.list", "sql.backupRuns.get",
        "sql.backupRuns.delete", "sql.instances.get", "sql.instances.restoreBackup",
        "sql.operations.get", "sql.instances.insert", "sql.instances.clone",
        "sql.instances.delete", "sql.instances.patch",
    ],
    "cloudresourcemanager.v3": ["cloudresourcemanager.projects.getIamPolicy"],
    "iam.v1": [
        "iam.projects.serviceAccounts.list", "iam.projects.serviceAccounts.keys.list",
        "iam.projects.serviceAccounts.keys.create", "iam.projects.serviceAccounts.keys.disable",
        "iam.projects.serviceAccounts.keys.enable", "iam.projects.serviceAccounts.keys.delete",
    ],
    "bigquery.v2": ["bigquery.jobs.query", "bigquery.jobs.getQueryResults"],
    "billingbudgets.v1": [
        "billingbudgets.billingAccounts.budgets.list",
        "billingbudgets.billingAccounts.budgets.get",
        "billingbudgets.billingAccounts.budgets.patch",
    ],
}

# Discovery documents `fetch-api-specs` does not fetch: read from the same wheel here.
GOOGLE_EXTRA = ["bigquery.v2", "billingbudgets.v1"]
GOOGLE_API_CLIENT = "google-api-python-client==2.202.0"

# Documented in prose, not in the discovery document: the resumable-upload session
# (https://cloud.google.com/storage/docs/performing-resumable-uploads). The session URI is the
# upload path with `upload_id`; chunks are PUT to it, a status query is an empty PUT, and a
# DELETE cancels it.
STORAGE_SESSION_QUERY = {
    "upload_id": {"type": "string", "required": True},
    "uploadType": {"type": "string"},
    "name": {"type": "string"},
}


def google_schema(node):
    """A discovery schema node in the fixture form."""
    out = {}
    if "$ref" in node:
        return {"$ref": node["$ref"]}
    for key in ("type", "format", "enum"):
        if key in node:
            out[key] = node[key]
    if node.get("type") == "any":
        out["type"] = "any"
    if "properties" in node:
        out["properties"] = {k: google_schema(v) for k, v in node["properties"].items()}
    if "items" in node:
        out["items"] = google_schema(node["items"])
    if "additionalProperties" in node:
        out["additionalProperties"] = google_schema(node["additionalProperties"])
    return out


def google_params(params):
    query = {}
    for name, p in params.items():
        if p.get("location") != "query":
            continue
        q = {"type": p.get("type", "string")}
        for key in ("format", "enum", "repeated", "required"):
            if key in p:
                q[key] = p[key]
        query[name] = q
    return query


def walk_methods(resources):
    for res in resources.values():
        for m in res.get("methods", {}).values():
            yield m
        yield from walk_methods(res.get("resources", {}))


def refs_of(node, found):
    if isinstance(node, dict):
        if "$ref" in node and isinstance(node["$ref"], str):
            found.add(node["$ref"])
        for v in node.values():
            refs_of(v, found)
    elif isinstance(node, list):
        for v in node:
            refs_of(v, found)


def close_schemas(all_schemas, roots, convert):
    keep, todo = {}, list(roots)
    while todo:
        name = todo.pop()
        if name in keep or name not in all_schemas:
            continue
        keep[name] = convert(all_schemas[name])
        found = set()
        refs_of(keep[name], found)
        todo.extend(found)
    return keep


def fetch_google_extra(specs):
    """The discovery documents of GOOGLE_EXTRA, from the google-api-python-client wheel (as
    fetch-api-specs reads the others), when SPECS/google lacks them."""
    missing = [d for d in GOOGLE_EXTRA
               if not os.path.exists(os.path.join(specs, "google", f"{d}.json"))]
    if not missing:
        return
    import tempfile
    import zipfile
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--only-binary=:all:", "-d", tmp, GOOGLE_API_CLIENT], check=True)
        wheel = next(os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".whl"))
        os.makedirs(os.path.join(specs, "google"), exist_ok=True)
        with zipfile.ZipFile(wheel) as z:
            for d in missing:
                data = z.read(f"googleapiclient/discovery_cache/documents/{d}.json")
                with open(os.path.join(specs, "google", f"{d}.json"), "wb") as f:
                    f.write(data)


def extract_google(specs):
    fetch_google_extra(specs)
    for doc, wanted in GOOGLE.items():
        d = json.load(open(os.path.join(specs, "google", f"{doc}.json")))
        base = "/" + d.get("servicePath", "")
        ops, roots = [], set()
        methods = {m["id"]: m for m in walk_methods(d.get("resources", {}))}
        for mid in wanted:
            m = methods.get(mid)
            if m is None:
                sys.exit(f"{doc}: no method {mid}")
            query = google_params(m.get("parameters", {}))
            body = m.get("request", {}).get("$ref")
            resp = m.get("response", {}).get("$ref")
            roots.update(x for x in (body, resp) if x)
            path = m.get("flatPath", m["path"])
            op = {"id": mid, "method": m["httpMethod"], "path": base + path, "query": query,
                  "body": body, "response": resp}
            ops.append(op)
            for proto in m.get("mediaUpload", {}).get("protocols", {}).values():
                # The resource goes as JSON when a resumable session opens; a multipart body
                # is not JSON and is not checked.
                upload = dict(op, id=mid + ".upload", path=proto["path"])
                ops.append(upload)
                if doc == "storage.v1":
                    for method in ("PUT", "DELETE"):
                        ops.append(dict(upload, id=mid + ".session." + method.lower(),
                                        method=method, query=STORAGE_SESSION_QUERY, body=None))
        global_query = google_params({k: dict(v, location="query")
                                      for k, v in d.get("parameters", {}).items()})
        fixture = {
            "source": f"Google discovery document {d['id']} revision {d.get('revision')}",
            "provider": "gcp",
            "global_query": global_query,
            "operations": dedup(ops),
            "schemas": close_schemas(d.get("schemas", {}), roots, google_schema),
        }
        write(f"google-{doc}.json", fixture)


def dedup(ops):
    seen, out = set(), []
    for op in ops:
        key = (op["method"], op["path"])
        if key not in seen:
            seen.add(key)
            out.append(op)
    return out


# GitHub: (method, path template) the clients call.
GITHUB = [
    ("GET", "/repos/{owner}/{repo}/issues"), ("POST", "/repos/{owner}/{repo}/issues"),
    ("PATCH", "/repos/{owner}/{repo}/issues/{issue_number}"),
    ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("GET", "/repos/{owner}/{repo}/commits"), ("GET", "/repos/{owner}/{repo}/pulls"),
    ("GET", "/repos/{owner}/{repo}/actions/runs"),
    ("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}"),
    ("POST", "/repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs"),
    ("GET", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs"),
    ("POST", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches"),
    ("GET", "/repos/{owner}/{repo}/deployments"),
    ("GET", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses"),
    ("POST", "/repos/{owner}/{repo}/releases"),
    ("GET", "/repos/{owner}/{repo}/actions/secrets"),
    ("GET", "/repos/{owner}/{repo}/actions/secrets/public-key"),
    ("GET", "/repos/{owner}/{repo}/actions/secrets/{secret_name}"),
    ("PUT", "/repos/{owner}/{repo}/actions/secrets/{secret_name}"),
    ("DELETE", "/repos/{owner}/{repo}/actions/secrets/{secret_name}"),
    ("GET", "/repos/{owner}/{repo}/environments/{environment_name}/secrets"),
    ("GET", "/repos/{owner}/{repo}/environments/{environment_name}/secrets/public-key"),
    ("GET", "/repos/{owner}/{repo}/environments/{environment_name}/secrets/{secret_name}"),
    ("PUT", "/repos/{owner}/{repo}/environments/{environment_name}/secrets/{secret_name}"),
    ("DELETE", "/repos/{owner}/{repo}/environments/{environment_name}/secrets/{secret_name}"),
    ("GET", "/orgs/{org}/actions/secrets"), ("GET", "/orgs/{org}/actions/secrets/public-key"),
    ("GET", "/orgs/{org}/actions/secrets/{secret_name}"),
    ("PUT", "/orgs/{org}/actions/secrets/{secret_name}"),
    ("DELETE", "/orgs/{org}/actions/secrets/{secret_name}"),
    ("GET", "/repos/{owner}/{repo}/hooks"), ("GET", "/repos/{owner}/{repo}/keys"),
    ("GET", "/repos/{owner}/{repo}/collaborators"),
    ("GET", "/repos/{owner}/{repo}/branches/{branch}/protection"),
    ("GET", "/repos/{owner}/{repo}"),
    ("POST", "/app/installations/{installation_id}/access_tokens"),
    ("GET", "/repos/{owner}/{repo}/actions/workflows"),
    ("GET", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}"),
    ("PUT", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/disable"),
    ("PUT", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/enable"),
    ("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs"),
    ("GET", "/repos/{owner}/{repo}/actions/jobs/{job_id}/logs"),
    ("GET", "/repos/{owner}/{repo}/dependabot/alerts"),
    ("GET", "/repos/{owner}/{repo}/code-scanning/alerts"),
]


def openapi_schema(node, spec):
    if not isinstance(node, dict):
        return {}
    if "$ref" in node:
        return {"$ref": node["$ref"].split("/")[-1]}
    out = {}
    for key in ("type", "format", "enum", "nullable"):
        if key in node:
            out[key] = node[key]
    for key in ("oneOf", "anyOf", "allOf"):
        if key in node:
            out[key] = [openapi_schema(s, spec) for s in node[key]]
    if "properties" in node:
        out["properties"] = {k: openapi_schema(v, spec) for k, v in node["properties"].items()}
    if "items" in node:
        out["items"] = openapi_schema(node["items"], spec)
    if "additionalProperties" in node:
        ap = node["additionalProperties"]
        out["additionalProperties"] = ap if isinstance(ap, bool) else openapi_schema(ap, spec)
    if "required" in node and isinstance(node["required"], list):
        out["required"] = node["required"]
    return out


# The replies the clients decode that the reply-shape tests derive variants from.
GITHUB_REPLIES = {
    ("GET", "/repos/{owner}/{repo}/commits"),
    ("GET", "/repos/{owner}/{repo}/deployments"),
    ("GET", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses"),
    ("GET", "/repos/{owner}/{repo}/issues"),
    ("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}"),
    ("GET", "/repos/{owner}/{repo}/actions/workflows"),
    ("GET", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}"),
    ("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs"),
    ("GET", "/repos/{owner}/{repo}/dependabot/alerts"),
    ("GET", "/repos/{owner}/{repo}/code-scanning/alerts"),
}


def extract_github(specs):
    spec = json.load(open(os.path.join(specs, "github", "api.github.com.json")))
    params = spec["components"]["parameters"]
    ops, roots, reply_schemas = [], set(), {}
    for method, path in GITHUB:
        op = spec["paths"].get(path, {}).get(method.lower())
        if op is None:
            sys.exit(f"github: no {method} {path}")
        query = {}
        for p in op.get("parameters", []):
            if "$ref" in p:
                p = params[p["$ref"].split("/")[-1]]
            if p.get("in") != "query":
                continue
            schema = openapi_schema(p.get("schema", {}), spec)
            q = {"type": schema.get("type", "string")}
            if "enum" in schema:
                q["enum"] = schema["enum"]
            if p.get("required"):
                q["required"] = True
            query[p["name"]] = q
        body = (op.get("requestBody", {}).get("content", {})
                .get("application/json", {}).get("schema"))
        body = openapi_schema(body, spec) if body else None
        if body:
            refs_of(body, roots)
        response = None
        if (method, path) in GITHUB_REPLIES:
            for code in ("200", "201"):
                r = op.get("responses", {}).get(code, {})
                if "$ref" in r:
                    r = spec["components"]["responses"][r["$ref"].split("/")[-1]]
                schema = r.get("content", {}).get("application/json", {}).get("schema")
                if schema:
                    response = op["operationId"] + ".response"
                    reply_schemas[response] = openapi_schema(schema, spec)
                    refs_of(reply_schemas[response], roots)
                    break
        ops.append({"id": op.get("operationId"), "method": method, "path": path,
                    "query": query, "body": body, "response": response})
    fixture = {
        "source": f"GitHub REST API OpenAPI description {spec['info'].get('version')}",
        "provider": "github",
        "global_query": {},
        "operations": ops,
        "schemas": dict(close_schemas(spec["components"]["schemas"], roots,
                                      lambda s: openapi_schema(s, spec)), **reply_schemas),
    }
    write("github-rest.json", fixture)


# Vercel: SDK function files (funcs/*.ts) the clients' endpoints come from.
VERCEL = [
    "deploymentsGetDeployments", "deploymentsGetDeployment", "deploymentsCreateDeployment",
    "deploymentsGetDeploymentEvents", "projectsGetProject", "projectsRequestPromote",
    "projectsRequestRollback", "projectsFilterProjectEnvs", "projectsCreateProjectEnv",
    "projectsGetProjectEnv", "projectsEditProjectEnv", "projectsRemoveProjectEnv",
    "projectsPauseProject", "projectsUnpauseProject", "logsGetRuntimeLogs",
]

TS_TYPES = {"string": "string", "number": "number", "boolean": "boolean"}


def ts_field_types(models, type_name):
    """Top-level fields of `export type NAME = { … }` in the SDK models: name -> type."""
    for fname in os.listdir(models):
        text = open(os.path.join(models, fname)).read()
        m = re.search(r"export type " + re.escape(type_name) + r" = \{(.*?)\n\};", text, re.S)
        if m:
            fields = {}
            for fm in re.finditer(r"^  (\w+)(\??):\s*([^;]+);", m.group(1), re.M):
                name, optional, ty = fm.groups()
                parts = [t.strip() for t in ty.split("|")]
                base = [TS_TYPES.get(t) for t in parts if t not in ("undefined", "null")]
                if "Array<" in ty:
                    kind = "array"
                elif base and all(b == base[0] for b in base) and base[0]:
                    kind = base[0]
                else:
                    kind = "any"
                fields[name] = {"type": kind, "optional": bool(optional)}
            return fields, fname
    return None, None


# Documented outside the SDK's request types: Vercel pages every list with `until` set to the
# previous page's `pagination.next` (https://vercel.com/docs/rest-api/reference/welcome#pagination),
# and the env listing answers with `pagination` although its request type omits the parameter.
VERCEL_EXTRA_QUERY = {"projectsFilterProjectEnvs": {"until": {"type": "number"}}}


def ts_raw_field(models, type_name, field):
    """The TypeScript type text of `field` (case-insensitive) in `export type TYPE = {…}`."""
    for fname in os.listdir(models):
        text = open(os.path.join(models, fname)).read()
        m = re.search(r"export type " + re.escape(type_name) + r" = \{(.*?)\n\};", text, re.S)
        if m:
            fm = re.search(r"^  (\w+)\??:([^;]+);", m.group(1), re.M | re.S)
            for fm in re.finditer(r"^  (\w+)\??:([^;]+);", m.group(1), re.M):
                if fm.group(1).lower() == field.lower():
                    return fm.group(2)
    return None


def ts_union_schema(models, raw):
    """A schema for a body type: one object type, a union of them, or an array of them."""
    raw = raw.strip()
    arrays = re.findall(r"Array<([^>]+)>", raw)
    plain = re.sub(r"Array<[^>]+>", "", raw)
    alts = []
    for name in [t.strip() for t in plain.split("|") if t.strip()]:
        name = name.split(".")[-1]
        fields, _ = ts_field_types(models, name)
        if fields:
            alts.append({"type": "object", "properties": {
                k: ({"type": v["type"]} if v["type"] != "any" else {}) for k, v in fields.items()}})
    for inner in arrays:
        item = ts_union_schema(models, inner)
        if item:
            alts.append({"type": "array", "items": item})
    if not alts:
        return None
    return alts[0] if len(alts) == 1 else {"oneOf": alts}


def extract_vercel(specs):
    funcs, models = os.path.join(specs, "vercel", "funcs"), os.path.join(specs, "vercel", "models")
    ops, types, schemas = [], ts_types.Models(models), {}
    for func in VERCEL:
        path_ = os.path.join(funcs, func + ".ts")
        if not os.path.exists(path_):
            sys.exit(f"vercel: no {func}")
        text = open(path_).read()
        path = re.search(r'pathToFunc\(\s*"([^"]+)"', text).group(1)
        method = re.search(r'method: "(\w+)"', text).group(1)
        query_names = re.findall(r'^\s+"(\w+)": payload\.', text.split("encodeFormQuery", 1)[1]
                                 if "encodeFormQuery" in text else "", re.M)
        req_type = re.search(r"request: (?:\w+\.)?(\w+Request)\b", text)
        fields = {}
        if req_type:
            fields, _ = ts_field_types(models, req_type.group(1))
            fields = fields or {}
        query = {}
        for q in query_names:
            f = fields.get(q, {"type": "any", "optional": True})
            entry = {"type": f["type"] if f["type"] in ("string", "number", "boolean") else "any"}
            if not f["optional"]:
                entry["required"] = True
            query[q] = entry
        query.update(VERCEL_EXTRA_QUERY.get(func, {}))
        body = None
        bm = re.search(r'encodeJSON\("body", payload\.(\w+)', text)
        if bm and req_type:
            raw = ts_raw_field(models, req_type.group(1), bm.group(1))
            if raw:
                body = ts_union_schema(models, raw)
        # The success reply's type, as the SDK decodes it (`M.json(200, XResponseBody$inboundSchema)`).
        reply = re.search(r"M\.json\(20\d, (\w+)\$inboundSchema[,)]", text)
        response = None
        if reply:
            response = reply.group(1)
            schemas.update(types.closure(response))
        ops.append({"id": func, "method": method, "path": re.sub(r"\{(\w+)\}", r"{\1}", path),
                    "query": query, "body": body, "response": response})
    write("vercel-rest.json", {
        "source": "Vercel REST API, from the request and reply types of its generated SDK",
        "provider": "vercel",
        "global_query": {},
        "operations": ops,
        "schemas": schemas,
    })


# Slack: the Web API's reply types in Slack's official SDK (generated from Slack's own
# samples). The request side of slack-web-api.json is transcribed; this adds the replies.
SLACK_SDK = "@slack/web-api@8.2.0"
SLACK_REPLIES = {"chat.postMessage": "ChatPostMessageResponse",
                 "chat.update": "ChatUpdateResponse",
                 "conversations.history": "ConversationsHistoryResponse"}


def slack_package(specs):
    """The SDK's package folder under SPECS/slack, fetched with `npm pack` when missing."""
    folder = os.path.join(specs, "slack")
    package = os.path.join(folder, "package")
    if not os.path.isdir(package):
        os.makedirs(folder, exist_ok=True)
        name = subprocess.run(["npm", "pack", SLACK_SDK, "--pack-destination", folder],
                              check=True, capture_output=True, text=True).stdout.split()[-1]
        subprocess.run(["tar", "xzf", os.path.join(folder, name), "-C", folder], check=True)
    return os.path.join(package, "dist")


def extract_slack_replies(specs):
    dist = slack_package(specs)
    path = os.path.join(OUT, "slack-web-api.json")
    fixture = json.load(open(path))
    schemas = {k: v for k, v in fixture["schemas"].items() if "." not in k}
    for op in fixture["operations"]:
        reply = SLACK_REPLIES.get(op["id"])
        if reply:
            files = [os.path.join(dist, "WebClient.d.ts"),
                     os.path.join(dist, "types", "response", reply + ".d.ts")]
            schemas.update(ts_types.Models(files, prefix=reply + ".").closure(reply))
            op["response"] = f"{reply}.{reply}"
    fixture["schemas"] = schemas
    if "reply types" not in fixture["source"]:
        fixture["source"] += (f"; reply types from {SLACK_SDK} dist/types/response/*.d.ts, "
                              "extracted by conformance/extract.py")
    write("slack-web-api.json", fixture)


# Kubernetes: the operations from the Kubernetes project's own client, generated from the
# official OpenAPI description (PyPI `kubernetes`, sdist: `client/api/*_api.py`), and the schemas
# from the same description as JSON Schema (PyPI `kubernetes-validate`, `_definitions.json` of
# the cluster version ops-kubernetes builds against, strict: no unknown fields).
KUBERNETES_CLIENT = "kubernetes==37.0.2"
KUBERNETES_VALIDATE = "kubernetes-validate==1.37.0"
KUBERNETES_SCHEMAS = "v1.33.0-local-strict"
KUBERNETES_OPS = {
    "apps_v1_api.py": ["read_namespaced_deployment", "replace_namespaced_deployment",
                       "list_namespaced_replica_set"],
    "core_v1_api.py": ["list_namespaced_pod", "read_namespaced_pod_log", "list_namespaced_secret",
                       "read_namespaced_service",
                       "read_namespaced_secret", "create_namespaced_secret",
                       "replace_namespaced_secret"],
    "autoscaling_v2_api.py": ["read_namespaced_horizontal_pod_autoscaler",
                              "replace_namespaced_horizontal_pod_autoscaler"],
}


def fetch_kubernetes(specs):
    """The two packages into SPECS/kubernetes, when it lacks them."""
    import tarfile
    import tempfile
    import zipfile
    out = os.path.join(specs, "kubernetes")
    if os.path.exists(os.path.join(out, "_definitions.json")):
        return out
    os.makedirs(os.path.join(out, "api"), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--no-binary=:all:", "-d", tmp, KUBERNETES_CLIENT], check=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--only-binary=:all:", "-d", tmp, KUBERNETES_VALIDATE], check=True)
        sdist = next(os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".tar.gz"))
        with tarfile.open(sdist) as t:
            for m in t.getmembers():
                base = os.path.basename(m.name)
                if "/kubernetes/client/api/" in m.name and base in KUBERNETES_OPS:
                    with open(os.path.join(out, "api", base), "wb") as f:
                        f.write(t.extractfile(m).read())
        wheel = next(os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".whl"))
        with zipfile.ZipFile(wheel) as z:
            data = z.read(f"kubernetes_validate/kubernetes-json-schema/{KUBERNETES_SCHEMAS}/_definitions.json")
            with open(os.path.join(out, "_definitions.json"), "wb") as f:
                f.write(data)
    return out


def fetch_gateway_api(specs):
    """The Gateway API's generated declarations into SPECS/kubernetes/gateway-api (npm)."""
    import tarfile
    import tempfile
    out = os.path.join(specs, "kubernetes", "gateway-api")
    if os.path.exists(os.path.join(out, "HTTPRoute.d.ts")):
        return out
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", "--silent", "--pack-destination", tmp, k8s_models.PACKAGE],
                       check=True, stdout=subprocess.DEVNULL)
        tgz = next(os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".tgz"))
        with tarfile.open(tgz) as t:
            for m in t.getmembers():
                prefix = "package/gateway.networking.k8s.io/v1/"
                if m.name.startswith(prefix) and m.name.endswith(".d.ts"):
                    with open(os.path.join(out, m.name[len(prefix):]), "wb") as f:
                        f.write(t.extractfile(m).read())
    return out


def k8s_schema(node, field=None):
    """A `_definitions.json` node in the fixture's schema form, as the OpenAPI description it
    was converted from has it: the converter's additions are taken out again, a `null` in
    every optional field's type (the API server omits empty fields; the description has no
    nulls) and an `enum` pinning `apiVersion` and `kind` (the description has
    `x-kubernetes-group-version-kind` instead)."""
    if not isinstance(node, dict):
        return {}
    out = {}
    if "$ref" in node:
        return {"$ref": node["$ref"].split("/")[-1]}
    kind = node.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    if kind:
        out["type"] = kind
    for key in ("format", "enum", "required"):
        if key in node and not (key == "enum" and field in ("apiVersion", "kind")):
            out[key] = node[key]
    if "properties" in node:
        out["properties"] = {k: k8s_schema(v, k) for k, v in node["properties"].items()}
        out.setdefault("type", "object")
    if "items" in node:
        out["items"] = k8s_schema(node["items"])
    if "additionalProperties" in node:
        ap = node["additionalProperties"]
        out["additionalProperties"] = ap if isinstance(ap, bool) else k8s_schema(ap)
    for key in ("oneOf", "anyOf", "allOf"):
        if key in node:
            out[key] = [k8s_schema(x) for x in node[key]]
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["additionalProperties"] = True
    return out


def k8s_type_name(py_name, defs):
    """`V1Deployment` → `io.k8s.api.apps.v1.Deployment`: the one definition of that version and
    kind; `None` for `str` and anything ambiguous."""
    m = re.match(r"^(V\d+(?:alpha\d+|beta\d+)?)(\w+)$", py_name or "")
    if not m:
        return None
    version, kind = m.group(1).lower(), m.group(2)
    found = [k for k in defs if k.endswith(f".{version}.{kind}")]
    return found[0] if len(found) == 1 else None


def extract_kubernetes(specs):
    src = fetch_kubernetes(specs)
    defs = json.load(open(os.path.join(src, "_definitions.json")))["$defs"]
    ops, roots = [], set()
    for fname, names in KUBERNETES_OPS.items():
        text = open(os.path.join(src, "api", fname)).read()
        for name in names:
            ser = re.search(r"def _" + name + r"_serialize\((.*?)\n    def ", text, re.S)
            if not ser:
                sys.exit(f"kubernetes: no {name} in {fname}")
            body_text = ser.group(1)
            method = re.search(r"method='(\w+)'", body_text).group(1)
            path = re.search(r"resource_path='([^']+)'", body_text).group(1)
            query = {q: {"type": "any"} for q in re.findall(r"_query_params\.append\(\('(\w+)'", body_text)}
            sig = re.search(r"def " + name + r"\(\s*self,(.*?)\)\s*->\s*(\w+):", text, re.S)
            body = None
            if sig and re.search(r"\n\s+body: (\w+)", sig.group(1)):
                body_type = k8s_type_name(re.search(r"\n\s+body: (\w+)", sig.group(1)).group(1), defs)
                if body_type:
                    body = body_type
                    roots.add(body_type)
            response = k8s_type_name(sig.group(2) if sig else None, defs)
            if response:
                roots.add(response)
            ops.append({"id": name, "method": method, "path": path, "query": query,
                        "body": body, "response": response})
    # metrics.k8s.io is served by metrics-server, outside the core description: its list
    # operation and types as the Kubernetes reference generated from k8s.io/metrics writes them
    # (kubernetes/website, docs/reference/external-api/metrics.v1beta1.md): PodMetrics requires
    # timestamp, window and containers; ContainerMetrics requires name and usage.
    list_query = next(o["query"] for o in ops if o["id"] == "list_namespaced_pod")
    ops.append({"id": "metrics.list_namespaced_pod_metrics", "method": "GET",
                "path": "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods",
                "query": list_query, "body": None,
                "response": "io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetricsList"})
    metrics_schemas = {
        "io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetricsList": {
            "type": "object", "required": ["items"],
            "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                           "metadata": {"$ref": "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"},
                           "items": {"type": "array", "items": {"$ref": "io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetrics"}}}},
        "io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetrics": {
            "type": "object", "required": ["timestamp", "window", "containers"],
            "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                           "metadata": {"$ref": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
                           "timestamp": {"$ref": "io.k8s.apimachinery.pkg.apis.meta.v1.Time"},
                           "window": {"type": "string"},
                           "containers": {"type": "array", "items": {"$ref": "io.k8s.metrics.pkg.apis.metrics.v1beta1.ContainerMetrics"}}}},
        "io.k8s.metrics.pkg.apis.metrics.v1beta1.ContainerMetrics": {
            "type": "object", "required": ["name", "usage"],
            "properties": {"name": {"type": "string"},
                           "usage": {"type": "object", "additionalProperties": {"$ref": "io.k8s.apimachinery.pkg.api.resource.Quantity"}}}},
    }
    # The Gateway API (gateway.networking.k8s.io/v1) is served by the same API server handlers
    # as any custom resource: the query parameters of the built-in read and replace.
    gateway = k8s_models.Models(fetch_gateway_api(specs))
    gateway.load("HTTPRoute")
    route = k8s_models.PREFIX + "HTTPRoute"
    path = "/apis/gateway.networking.k8s.io/v1/namespaces/{namespace}/httproutes/{name}"
    ops.append({"id": "gateway.read_namespaced_http_route", "method": "GET", "path": path,
                "query": next(o["query"] for o in ops if o["id"] == "read_namespaced_deployment"),
                "body": None, "response": route})
    ops.append({"id": "gateway.replace_namespaced_http_route", "method": "PUT", "path": path,
                "query": next(o["query"] for o in ops if o["id"] == "replace_namespaced_deployment"),
                "body": route, "response": route})
    metrics_schemas.update(gateway.schemas)
    roots |= {"io.k8s.apimachinery.pkg.apis.meta.v1.Condition"}
    roots |= {"io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta", "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
              "io.k8s.apimachinery.pkg.apis.meta.v1.Time", "io.k8s.apimachinery.pkg.api.resource.Quantity"}
    schemas, todo = dict(metrics_schemas), list(roots)
    while todo:
        n = todo.pop()
        if n in schemas or n not in defs:
            continue
        schemas[n] = k8s_schema(defs[n])
        todo.extend(re.findall(r'"\$ref": "([^"]+)"', json.dumps(schemas[n])))
    write("kubernetes-api.json", {
        "source": f"Kubernetes API: operations from the project's generated client ({KUBERNETES_CLIENT}), "
                  f"schemas from its OpenAPI description as JSON Schema ({KUBERNETES_VALIDATE}, {KUBERNETES_SCHEMAS}); "
                  f"Gateway API HTTPRoute from the declarations generated from its CRDs ({k8s_models.PACKAGE})",
        "provider": "kubernetes",
        "global_query": {"pretty": {"type": "string"}},
        "operations": ops,
        "schemas": schemas,
    })


def write(name, fixture):
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(fixture, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"{path}: {len(fixture['operations'])} operations, "
          f"{len(fixture['schemas'])} schemas, {os.path.getsize(path) // 1024} KiB")


if __name__ == "__main__":
    specs = sys.argv[1] if len(sys.argv) > 1 else ".api-specs"
    os.makedirs(OUT, exist_ok=True)
    extract_google(specs)
    extract_github(specs)
    extract_vercel(specs)
    extract_slack_replies(specs)
    extract_kubernetes(specs)
