#!/usr/bin/env python3
"""Writes REQUIRED_FIELDS.md from the installed apache-airflow-client: the fields its
models declare, which are required, the enums, and each endpoint's status codes and
query parameters. Run with the contract venv:

    ~/.cache/updraft-tools/contract-venv/bin/python tests/contract/required_fields.py > tests/contract/REQUIRED_FIELDS.md
"""
import enum
import inspect
import re
import typing
from importlib.metadata import version

import pydantic
from airflow_client.client import api as apis
from airflow_client.client import models

MODELS = """DAGResponse DAGDetailsResponse DAGCollectionResponse DAGPatchBody
DAGRunResponse DAGRunCollectionResponse TriggerDAGRunPostBody DAGRunPatchBody DAGRunsBatchBody
TaskInstanceResponse TaskInstanceCollectionResponse TaskInstanceHistoryResponse
TaskInstanceHistoryCollectionResponse TaskInstancesLogResponse
XComResponse XComResponseNative XComResponseString ResponseGetXcomEntry XComCollectionResponse XComCreateBody XComUpdateBody
VariableBody VariableResponse VariableCollectionResponse BulkBodyVariableBody BulkResponse
ConnectionBody ConnectionResponse ConnectionCollectionResponse
PoolBody PoolPatchBody PoolResponse PoolCollectionResponse
ImportErrorResponse ImportErrorCollectionResponse EventLogResponse EventLogCollectionResponse
BackfillPostBody BackfillResponse BackfillCollectionResponse DryRunBackfillCollectionResponse
VersionInfo HealthInfoResponse DAGSourceResponse HTTPExceptionResponse HTTPValidationError""".split()

APIS = """VersionApi MonitorApi DAGApi DagRunApi TaskInstanceApi XComApi VariableApi ConnectionApi
PoolApi ImportErrorApi EventLogApi BackfillApi DagSourceApi LoginApi""".split()


def name(t):
    """Readable type: StrictStr -> str, Optional[X] -> X (nullability is shown separately)."""
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin is typing.Annotated:
        meta = [x for m in t.__metadata__ for x in getattr(m, "metadata", [m])]
        extra = [repr(m) for m in meta if not isinstance(m, pydantic.Strict)]
        return name(args[0]) + (f" ({', '.join(extra)})" if extra else "")
    if origin is typing.Union:
        parts = [name(a) for a in args if a is not type(None)]
        return " | ".join(parts)
    if origin in (list, typing.List):
        return f"List[{name(args[0])}]"
    if origin in (dict, typing.Dict):
        return f"Dict[{name(args[0])}, {name(args[1])}]"
    if t is typing.Any:
        return "Any"
    return getattr(t, "__name__", str(t)).replace("typing.", "")


def referenced(t):
    """Model and enum classes mentioned in a type."""
    if inspect.isclass(t) and (issubclass(t, enum.Enum) or issubclass(t, pydantic.BaseModel)):
        yield t
    for a in typing.get_args(t):
        yield from referenced(a)


def nullable(t):
    return typing.get_origin(t) is typing.Union and type(None) in typing.get_args(t)


def describe_model(cls, out, queue):
    out.append(f"### {cls.__name__}\n")
    wrapper = {"any_of_schemas", "one_of_schemas"} & set(cls.model_fields)
    if wrapper:
        field = wrapper.pop()
        kind = "anyOf" if field == "any_of_schemas" else "oneOf"
        schemas = sorted(cls.model_fields[field].default)
        out.append(f"{kind} wrapper (the JSON value itself is one of): {', '.join(schemas)}\n")
        for f in cls.model_fields.values():
            queue.extend(referenced(f.annotation))
        return
    required, optional = [], []
    for fname, f in cls.model_fields.items():
        if fname == "additional_properties":
            optional.append("any other key (additionalProperties)")
            continue
        key = f.alias or fname
        typ = name(f.annotation)
        queue.extend(referenced(f.annotation))
        if f.is_required():
            null = " (nullable: key present, value may be null)" if nullable(f.annotation) else ""
            required.append(f"`{key}`: {typ}{null}")
        else:
            default = "" if f.default is None else f" = {f.default!r}"
            optional.append(f"`{key}`: {typ}{default}")
    out.append("- **required**: " + (", ".join(required) or "none"))
    out.append("- optional/nullable: " + (", ".join(optional) or "none") + "\n")


def describe_enum(cls, out):
    out.append(f"- **{cls.__name__}**: " + ", ".join(f"`{m.value}`" for m in cls))


def describe_api(cls, out):
    out.append(f"### {cls.__name__}\n")
    for mname, fn in inspect.getmembers(cls, inspect.isfunction):
        if mname.startswith("_") or mname.endswith(("_with_http_info", "_without_preload_content")):
            continue
        src = inspect.getsource(fn)
        ser = inspect.getsource(getattr(cls, f"_{mname}_serialize"))
        method = re.search(r"method='(\w+)'", ser).group(1)
        path = re.search(r"resource_path='([^']+)'", ser).group(1)
        codes = re.search(r"_response_types_map[^{]*\{(.*?)\}", src, re.S).group(1)
        ok = [f"{c} {t.strip(chr(34))}" for c, t in re.findall(r"'(\d+)': (\S+?),", codes) if c.startswith("2")]
        multi = set(re.findall(r"'(\w+)': 'multi'", ser))
        query = []
        sig = inspect.signature(fn)
        for q in dict.fromkeys(re.findall(r"_query_params\.append\(\s*\(\s*'([^']+)'", ser)):
            p = sig.parameters.get(q) or sig.parameters.get("var_" + q)
            typ = name(p.annotation) if p else "?"
            csv = " (comma-joined!)" if typ.startswith("List") and q not in multi else ""
            query.append(f"{q}: {typ}{csv}")
        body = [f"{p}: {name(a.annotation)}" for p, a in sig.parameters.items()
                if re.search(rf"_body_params = {p}\b", ser)]
        out.append(f"- `{method} {path}` `{mname}` → {', '.join(ok) or '?'}")
        if body:
            out.append(f"  - body: {', '.join(body)}")
        if query:
            out.append(f"  - query: {'; '.join(query)}")
    out.append("")


def main():
    out = [
        "# What the official Airflow client expects (generated; do not edit by hand)\n",
        f"Generated by `tests/contract/required_fields.py` from apache-airflow-client "
        f"{version('apache-airflow-client')} (pydantic models in `airflow_client/client/models`).\n",
        "How to read it:\n",
        "- The client's `from_dict` reads every key with `obj.get(key)`, so a missing key becomes `None`. "
        "A **required** non-nullable field that is missing or null fails validation "
        "(the call raises `pydantic.ValidationError`). Optional fields may be absent, but Airflow's "
        "spec lists most of them as required-and-nullable, so emit every key (null when unknown).",
        "- Types are strict: `str` means a JSON string (not a number), `int` a JSON integer "
        "(`1.0` fails), `bool` a JSON boolean. `datetime` is an ISO 8601 string; emit it with an offset "
        "(`2025-01-01T00:00:00Z`).",
        "- `UUID` fields (`TaskInstanceResponse.id`, `DagVersionResponse.id`) must be UUID strings; "
        "`\"3\"` fails. A task instance's `state` is null while it has none (there is no `none` value).",
        "- Status codes matter: the client looks the response type up by the exact status. "
        "If the server answers 201 where the client expects 200 (or vice versa), the call "
        "returns `None` instead of a model. The codes below are the client's 2xx entries.",
        "- Query parameters typed `List[...]` are sent as repeated keys (`?state=queued&state=running`). "
        "Booleans are sent as `true`/`false`. Datetimes in query strings are formatted "
        "`%Y-%m-%dT%H:%M:%S.%f%z`, e.g. `2025-01-01T00:00:00.000000+0000` (offset WITHOUT a colon, "
        "`+` percent-encoded as `%2B`); in JSON bodies they are `isoformat()` (`+00:00`). "
        "`~` as a `dag_id`/`dag_run_id`/`task_id` path segment means \"all\".",
        "- `get_log` sends `Accept: application/json` unless the caller passes `accept=`; the answer "
        "must then be JSON `TaskInstancesLogResponse` (`content` = list of structured messages or of "
        "strings; `continuation_token` is sent back as the `token` query parameter).",
        "- Host: `Configuration(host=\"http://HOST:PORT\")` **without** `/api/v2` (every path in the "
        "client starts with `/api/v2`). Auth: `Configuration(access_token=JWT)` sends "
        "`Authorization: Bearer JWT` on every call except `get_version` and `get_health` (sent with no "
        "credentials at all); the token comes from `POST /auth/token` (not in the client).\n",
        "## Models\n",
    ]
    queue = [getattr(models, m) for m in MODELS]
    seen, enums = set(), []
    while queue:
        cls = queue.pop(0)
        if cls in seen:
            continue
        seen.add(cls)
        if issubclass(cls, enum.Enum):
            enums.append(cls)
        else:
            describe_model(cls, out, queue)
    out.append("## Enums\n")
    for cls in sorted(enums, key=lambda c: c.__name__):
        describe_enum(cls, out)
    out.append("\n## Endpoints (method path, client method, success status and type, body, query)\n")
    for a in APIS:
        describe_api(getattr(apis, a), out)
    print("\n".join(out))


if __name__ == "__main__":
    main()
