#!/usr/bin/env python3
"""Does picket's Sigma engine agree with pySigma's SQLite backend?

For every rule picket loads, its matches on a set of raw records (picket's verdicts come from
`examples/sigma_matches.rs`) are compared with the rows an independent evaluation selects: the
rule converted to SQL by pySigma + pysigma-backend-sqlite and run by SQLite over the same
records. See README.md for the method, the classification and the known differences.

Usage (from the repository root, inside the venv of requirements.txt):

    python tools/sigma-agreement/sigma_agreement.py \
        --rules tests/fixtures/sigma-cloud \
        --records /work/shared/corpus/stratus-red-team-detonation-logs ... detections

Exit status: 0 when every comparable rule agrees, 1 when some disagree, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import collections
import copy
import fnmatch
import json
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaError
from sigma.types import (
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
)

# --------------------------------------------------------------------------------------------
# Field mappings: detections/mappings/*.yml, resolved the way the mapping format documents it
# (explicit entry, exact then case-insensitive; `prefix.*` rewrites; the kinds' native fields).
# --------------------------------------------------------------------------------------------


def as_list(v):
    return v if isinstance(v, list) else [v]


@dataclass
class Mapping:
    path: Path
    logsource: dict
    kinds: list
    fields: dict  # name -> (paths {kind: [path]}, values {kind: {folded sigma: raw}})
    prefixes: list  # (prefix, kind, raw prefix)
    native: dict  # kind -> {"fields": [...] | None, "prefix": str | None}

    def serves(self, ls: dict) -> bool:
        def same(a, b):
            if a is None or b is None:
                return a is None and b is None
            return str(a).lower() == str(b).lower()

        return (
            same(self.logsource.get("product"), ls.get("product"))
            and same(self.logsource.get("service"), ls.get("service"))
            and (
                self.logsource.get("category") is None
                or same(self.logsource.get("category"), ls.get("category"))
            )
        )

    def resolve(self, name: str):
        """({kind: [path, ...]}, {kind: value map}) for a Sigma field, or None if unmapped."""
        entry = self.fields.get(name)
        if entry is None:
            entry = next(
                (v for k, v in self.fields.items() if k.lower() == name.lower()), None
            )
        if entry is not None:
            return entry
        paths = collections.defaultdict(list)
        for prefix, kind, raw in self.prefixes:
            if name.startswith(prefix):
                paths[kind].append(raw + name[len(prefix) :])
        if paths:
            return dict(paths), {}
        head = split_segments(name)[0].split("[")[0]
        for kind, spec in self.native.items():
            allowed = spec.get("fields")
            if allowed is not None and head.lower() not in (f.lower() for f in allowed):
                continue
            prefix = spec.get("prefix")
            paths[kind].append(f"{prefix}.{name}" if prefix else name)
        return (dict(paths), {}) if paths else None


def load_mappings(folder: Path) -> list[Mapping]:
    out = []
    for f in sorted(folder.glob("*.y*ml")):
        doc = yaml.safe_load(f.read_text())
        fields, prefixes = {}, []
        for name, spec in (doc.get("fields") or {}).items():
            if isinstance(spec, dict) and "paths" in spec:
                paths, values = spec["paths"], spec.get("values") or {}
            else:
                paths, values = spec, {}
            if name.endswith("*"):
                for kind, targets in paths.items():
                    for t in as_list(targets):
                        prefixes.append((name[:-1], kind, t[:-1]))
                continue
            fields[name] = (
                {k: as_list(v) for k, v in paths.items()},
                {
                    k: {str(a).lower(): str(b) for a, b in m.items()}
                    for k, m in values.items()
                },
            )
        native = {k: (v or {}) for k, v in (doc.get("native") or {}).items()}
        out.append(Mapping(f, doc["logsource"], doc["kinds"], fields, prefixes, native))
    return out


# --------------------------------------------------------------------------------------------
# Raw-record values of a field path. `a.b` (arrays on the way: every element), `a[k=v].b`
# (the elements of array `a` whose `k` is `v`, case-insensitively); a leaf array is offered
# whole and element by element. Scalars are stored in their string form (JSON spelling for
# numbers and booleans, compact JSON for objects and arrays), null as null.
# --------------------------------------------------------------------------------------------


def split_segments(text: str) -> list[str]:
    out, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c == "[":
            depth += 1
        elif c == "]":
            depth = max(0, depth - 1)
        elif c == "." and depth == 0:
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return out


def parse_path(text: str):
    steps = []
    for seg in split_segments(text):
        m = re.fullmatch(r"([^\[]*)\[([^=\]]*)=([^\]]*)\]", seg)
        steps.append(("where", m[1], m[2], m[3]) if m else ("key", seg))
    return steps


def member(obj: dict, key: str):
    if key in obj:
        return obj[key]
    for k, v in obj.items():
        if k.lower() == key.lower():
            return v
    return None


def walk(v, steps, out):
    if not steps:
        out.append(v)
        if isinstance(v, list):
            for item in v:
                walk(item, steps, out)
        return
    if isinstance(v, list):
        for item in v:
            walk(item, steps, out)
    elif isinstance(v, dict):
        step = steps[0]
        if step[0] == "key":
            if step[1] in v or any(k.lower() == step[1].lower() for k in v):
                walk(member(v, step[1]), steps[1:], out)
        else:
            _, array, key, name = step
            items = member(v, array)
            if isinstance(items, list):
                for item in items:
                    n = member(item, key) if isinstance(item, dict) else None
                    if isinstance(n, str) and n.lower() == name.lower():
                        walk(item, steps[1:], out)


def string_form(v):
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    return json.dumps(v, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def stored_form(v):
    """What a list column holds: numbers as JSON numbers, anything else as its string form."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v
    return string_form(v)


def leaves(v, out):
    if isinstance(v, dict):
        for x in v.values():
            leaves(x, out)
    elif isinstance(v, list):
        for x in v:
            leaves(x, out)
    else:
        out.append(string_form(v))


def record_view(kind: str, raw):
    """picket unwraps a CloudTrail record from its EventBridge envelope, and an M365 Unified
    Audit Log record from its Search-UnifiedAuditLog wrapper (`AuditData` as an object)."""
    if kind == "cloudtrail" and isinstance(raw, dict) and "detail-type" in raw and "detail" in raw:
        return raw["detail"]
    if (
        kind == "m365_audit"
        and isinstance(raw, dict)
        and "CreationTime" not in raw
        and isinstance(raw.get("AuditData"), dict)
    ):
        return raw["AuditData"]
    return raw


# --------------------------------------------------------------------------------------------
# Records: the same files picket read, decoded the same way (see examples/sigma_matches.rs);
# the record ids and kinds come from picket's listing and are checked against this decoding.
# --------------------------------------------------------------------------------------------


def walk_files(path: Path):
    if path.is_dir():
        for e in sorted(path.iterdir()):
            if e.is_dir():
                yield from walk_files(e)
            elif e.suffix in (".json", ".jsonl"):
                yield e
    else:
        yield path


def decode(path: Path):
    name = str(path)
    text = path.read_text()
    try:
        v = json.loads(text)
    except json.JSONDecodeError:
        for i, line in enumerate(x for x in text.splitlines() if x.strip()):
            yield f"{name}#{i}", json.loads(line)
        return
    if name.endswith(".cases.json"):
        for i, case in enumerate(v.get("cases") or []):
            if "event" in case:
                yield f"{name}#{i}", case["event"]
            for j, e in enumerate(case.get("events") or []):
                yield f"{name}#{i}.{j}", e
        return
    if isinstance(v, dict):
        for k in ("Records", "value", "items"):
            if isinstance(v.get(k), list):
                v = v[k]
                break
        else:
            v = [v]
    if not isinstance(v, list):
        v = [v]
    for i, item in enumerate(v):
        yield f"{name}#{i}", item


# --------------------------------------------------------------------------------------------
# The SQL side. One table per (rule, record kind): a row per record, a column per Sigma field of
# the rule holding the JSON array of the values its mapped paths reach (SQL NULL when none).
# pysigma-backend-sqlite writes each field condition for a scalar column; this subclass only
# puts that condition inside `EXISTS (SELECT ... FROM json_each(column))` so a field with
# several values matches when any of them does (Sigma's reading of lists), and reads `null`
# as "no non-null value". Modifiers, wildcards, escaping, case folding, regexes, CIDR
# expansion and the boolean condition are all pySigma's and SQLite's.
# --------------------------------------------------------------------------------------------

KEYWORD_COLUMN = "kw"


class ListBackend(sqliteBackend):
    """pysigma-backend-sqlite over list-valued columns."""

    columns: dict = {}
    scalar: bool = False  # --scalar-columns: plain columns holding one value, no wrapper

    def _column(self, name):
        return self.columns[name]

    def _any(self, column, expr):
        return (
            f"EXISTS (SELECT 1 FROM (SELECT CAST(value AS TEXT) AS v, value AS n "
            f"FROM json_each(logs.{column})) WHERE {expr})"
        )

    def convert_condition_field_eq_val(self, cond, state):
        value = cond.value
        if isinstance(value, (SigmaCIDRExpression, SigmaExpansion)):
            # Expanded into plain field conditions, each of which comes back here.
            return super().convert_condition_field_eq_val(cond, state)
        column = self._column(cond.field)
        if self.scalar:
            inner = copy.copy(cond)
            inner.field = column
            if isinstance(value, SigmaFieldReference):
                inner.value = copy.copy(value)
                inner.value.field = self._column(value.field)
            return super().convert_condition_field_eq_val(inner, state)
        if isinstance(value, SigmaExists):
            inner = copy.copy(cond)
            inner.field = column
            return super().convert_condition_field_eq_val(inner, state)
        if isinstance(value, SigmaNull):
            return (
                f"NOT EXISTS (SELECT 1 FROM json_each(logs.{column}) "
                f"WHERE value IS NOT NULL)"
            )
        if isinstance(value, SigmaFieldReference):
            # Any value of the field against any value of the referenced field.
            other = self._column(value.field)
            inner = copy.copy(cond)
            inner.field = "v"
            inner.value = copy.copy(value)
            inner.value.field = "w"
            expr = super().convert_condition_field_eq_val(inner, state)
            return (
                f"EXISTS (SELECT 1 FROM (SELECT CAST(a.value AS TEXT) AS v, "
                f"CAST(b.value AS TEXT) AS w FROM json_each(logs.{column}) AS a, "
                f"json_each(logs.{other}) AS b) WHERE {expr})"
            )
        inner = copy.copy(cond)
        # Text for string matching; the JSON value itself for |gt, |lt, ... (numbers compare
        # as numbers only when they are stored as numbers).
        inner.field = "n" if isinstance(value, SigmaCompareExpression) else "v"
        return self._any(column, super().convert_condition_field_eq_val(inner, state))

    # Keywords: the backend's own full-text form (`v LIKE '%x%'`), over every leaf value.
    def convert_condition_val_str(self, cond, state):
        return self._any(KEYWORD_COLUMN, super().convert_condition_val_str(cond, state))

    def convert_condition_val_num(self, cond, state):
        return self._any(KEYWORD_COLUMN, super().convert_condition_val_num(cond, state))

    def convert_condition_val_re(self, cond, state):
        return self._any(KEYWORD_COLUMN, super().convert_condition_val_re(cond, state))


def regexp(pattern, value):
    if value is None:
        return 0
    try:
        return 1 if re.search(pattern, str(value)) else 0
    except re.error as e:
        raise ValueError(f"python re: {e}") from e


def rule_fields(detection: dict) -> set[str]:
    """Sigma field names used by a detection (keys and `fieldref` values)."""
    out = set()

    def from_map(m):
        for key, value in m.items():
            name, *mods = str(key).split("|")
            if name:
                out.add(name)
            if "fieldref" in mods:
                out.update(str(x) for x in as_list(value))

    for k, v in detection.items():
        if k in ("condition", "timeframe"):
            continue
        if isinstance(v, dict):
            from_map(v)
        elif isinstance(v, list):
            for item in v:
                if isinstance(item, dict):
                    from_map(item)
    return out


def yaml_scalar_text(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def translate_values(detection: dict, resolved: dict, kind: str) -> dict:
    """Applies the mapping's per-kind value translations (`values:`) to the rule's values."""
    det = copy.deepcopy(detection)

    def fix_map(m):
        for key in list(m):
            name = str(key).split("|")[0]
            table = (resolved.get(name) or ({}, {}))[1].get(kind)
            if not table:
                continue

            def tr(x):
                if x is None or isinstance(x, (dict, list)):
                    return x
                return table.get(yaml_scalar_text(x).lower(), x)

            m[key] = [tr(x) for x in m[key]] if isinstance(m[key], list) else tr(m[key])

    for k, v in det.items():
        if isinstance(v, dict):
            fix_map(v)
        elif isinstance(v, list):
            for item in v:
                if isinstance(item, dict):
                    fix_map(item)
    return det


def load_known(path: Path) -> list[dict]:
    """Explained differences: `[{rule, record, side, reason}]`, `record` an fnmatch pattern over
    the record id or, for synthetic records, `synthetic: <case name>`."""
    if not path.exists():
        return []
    return yaml.safe_load(path.read_text()) or []


def explain(known, rule, side, label):
    for k in known:
        if (
            fnmatch.fnmatch(rule, str(k["rule"]))
            and k["side"] == side
            and fnmatch.fnmatch(label, k["record"])
        ):
            return k["reason"]
    return None


@dataclass
class Outcome:
    rule: str
    path: str
    picket: set = field(default_factory=set)
    sql: set = field(default_factory=set)
    reason: str | None = None  # set when not comparable
    explained: list = field(default_factory=list)  # reasons, when every difference has one

    @property
    def verdict(self):
        if self.reason:
            return "not comparable"
        if self.picket == self.sql:
            return "agree"
        return "disagree (explained)" if self.explained else "disagree"


def load_rule_doc(path: Path, rule_id: str):
    for doc in yaml.safe_load_all(path.read_text()):
        if isinstance(doc, dict) and str(doc.get("id")) == rule_id:
            return doc
    raise KeyError(f"{path}: no document with id {rule_id}")


def evaluate(doc, kinds, mapping, records_by_kind, cache, scalar=False):
    """Record ids the rule's SQL selects, over every kind it covers."""
    detection = doc["detection"]
    names = sorted(rule_fields(detection))
    resolved = {}
    for n in names:
        r = mapping.resolve(n)
        if r is None:
            raise SigmaError(f"field {n} has no mapping")
        resolved[n] = r
    columns = {n: f"c{i}" for i, n in enumerate(names)}
    selected = set()
    for kind in kinds:
        rows = records_by_kind.get(kind, [])
        if not rows:
            continue
        kdoc = dict(doc)
        kdoc["detection"] = translate_values(detection, resolved, kind)
        kdoc.pop("correlation", None)
        collection = SigmaCollection.from_dicts([kdoc])
        backend = ListBackend(collate_nocase=True, fulltext_field="v")
        backend.columns = columns
        backend.scalar = scalar
        queries = backend.convert(collection)
        db = sqlite3.connect(":memory:")
        db.create_function("REGEXP", 2, regexp, deterministic=True)
        # --scalar-columns: TEXT columns, as a flattener like Zircolite declares them.
        typed = [f"{c} TEXT" if scalar else c for c in columns.values()]
        cols = ", ".join(["rid", KEYWORD_COLUMN] + typed)
        db.execute(f"CREATE TABLE logs ({cols})")
        data = []
        for rid, raw in rows:
            row = [rid, cache_kw(cache, rid, raw)]
            for n in names:
                col = cache_col(cache, rid, raw, tuple(resolved[n][0].get(kind, [])))
                if scalar and col is not None:
                    first = json.loads(col)[0]
                    col = None if first is None else string_form(first)
                row.append(col)
            data.append(row)
        db.executemany(
            f"INSERT INTO logs VALUES ({', '.join('?' * (len(names) + 2))})", data
        )
        for q in queries:
            selected.update(r[0] for r in db.execute(f"SELECT rid FROM ({q})"))
        db.close()
    return selected


def cache_col(cache, rid, raw, paths):
    key = (rid, paths)
    if key not in cache:
        values = []
        for p in paths:
            walk(raw, parse_path(p), values)
        cache[key] = (
            json.dumps([stored_form(v) for v in values], ensure_ascii=False)
            if values
            else None
        )
    return cache[key]


def cache_kw(cache, rid, raw):
    key = (rid, "kw")
    if key not in cache:
        out = []
        leaves(raw, out)
        cache[key] = json.dumps(out, ensure_ascii=False)
    return cache[key]


# --------------------------------------------------------------------------------------------
# Synthetic records: most corpus records match no rule, so for every loaded rule and kind a few
# records are built from the rule's own values (each search alone, all searches together; as
# written, case-swapped, and with every value inside a list), written as a cases file
# (`{"cases": [{"kind": k, "event": {...}}]}`) that both engines then read like any other.
# --------------------------------------------------------------------------------------------


def sigma_literal(text: str, filler: str) -> str:
    """A string a Sigma value (wildcards `*`, `?`, escapes `\\`) matches."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and text[i + 1] in "*?\\":
            out.append(text[i + 1])
            i += 2
            continue
        out.append(filler if c == "*" else "Q" if c == "?" else c)
        i += 1
    return "".join(out)


def synth_value(key: str, value, near: bool = False):
    """A raw value satisfying `field|mods: value` (with `near`: one that just misses it), or a
    marker when none is made."""
    mods = str(key).split("|")[1:]
    values = value if isinstance(value, list) else [value]
    if "exists" in mods:
        return "present" if values[0] in (True, "true") else _OMIT
    if "re" in mods:
        sample = regex_sample(str(values[0]))
        return _OMIT if sample is None or near else sample
    if any(m in mods for m in ("base64", "base64offset", "windash", "wide")):
        return _OMIT
    if any(m in mods for m in ("gt", "gte", "lt", "lte")):
        n = float(values[0])
        # Fewer digits below, more above: a comparison of text would get these wrong.
        return int(n // 2) if ("lt" in mods or "lte" in mods) else int(n * 10 + 1)
    if "cidr" in mods:
        return str(values[0]).split("/")[0]
    if "fieldref" in mods:
        return _OMIT
    pre = "ab" if ("contains" in mods or "endswith" in mods) else ""
    post = "cd" if ("contains" in mods or "startswith" in mods) else ""
    def one(v):
        if v is None:
            return None
        if isinstance(v, (bool, int, float)) and not pre and not post and not near:
            return v
        lit = sigma_literal(yaml_scalar_text(v), "zz")
        if near:
            # Off by one character where the anchor or the literal has to hold.
            if pre and post:
                return pre + lit[1:] + post if len(lit) > 1 else "abcd"
            return ("_" + lit + post) if post else (pre + lit + "_")
        return pre + lit + post
    if "all" in mods:
        if pre or post:
            return pre + " ".join(sigma_literal(yaml_scalar_text(v), "zz") for v in values) + post
        return [one(v) for v in values]
    return one(values[0])


_OMIT = object()


def regex_sample(pattern: str):
    """A string the regex matches (shortest repeats, first branches), or None."""
    try:
        import re._parser as sre_parse  # Python 3.11+
    except ImportError:  # pragma: no cover
        import sre_parse

    def gen(items):
        out = []
        for op, av in items:
            name = str(op)
            if name == "LITERAL":
                out.append(chr(av))
            elif name == "ANY":
                out.append("a")
            elif name in ("MAX_REPEAT", "MIN_REPEAT"):
                lo, _hi, sub = av
                out.append(gen(sub) * lo)
            elif name == "SUBPATTERN":
                out.append(gen(av[-1]))
            elif name == "BRANCH":
                out.append(gen(av[1][0]))
            elif name == "IN":
                first = av[0]
                if str(first[0]) == "LITERAL":
                    out.append(chr(first[1]))
                elif str(first[0]) == "RANGE":
                    out.append(chr(first[1][0]))
                elif str(first[0]) == "CATEGORY":
                    out.append(CATEGORY_SAMPLE.get(str(first[1]), "a"))
                else:
                    raise ValueError(name)
            elif name == "CATEGORY":
                out.append(CATEGORY_SAMPLE.get(str(av), "a"))
            elif name == "AT":
                pass
            else:
                raise ValueError(name)
        return "".join(out)

    try:
        sample = gen(sre_parse.parse(pattern))
    except (ValueError, TypeError, re.error):
        return None
    return sample if re.search(pattern, sample) else None


CATEGORY_SAMPLE = {"CATEGORY_DIGIT": "7", "CATEGORY_SPACE": " ", "CATEGORY_WORD": "w",
                   "CATEGORY_NOT_DIGIT": "a", "CATEGORY_NOT_SPACE": "a", "CATEGORY_NOT_WORD": "-"}


def put(record: dict, path: str, value):
    steps = parse_path(path)
    cur = record
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        if step[0] == "key":
            if last:
                cur[step[1]] = value
            else:
                nxt = cur.get(step[1])
                if not isinstance(nxt, dict):
                    nxt = {}
                    cur[step[1]] = nxt
                cur = nxt
        else:
            _, array, key, name = step
            lst = cur.setdefault(array, [])
            if not isinstance(lst, list):
                return
            item = {key: name}
            lst.append(item)
            if last:
                return
            cur = item


def numtext(v):
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)
    if isinstance(v, list):
        return [numtext(x) for x in v]
    return v


def booltext(v):
    if isinstance(v, bool):
        return "True" if v else "False"  # as .NET writes them
    if isinstance(v, list):
        return [booltext(x) for x in v]
    return v


def swapcase(v):
    if isinstance(v, str):
        return v.swapcase()
    if isinstance(v, list):
        return [swapcase(x) for x in v]
    return v


def listify(v):
    return v if isinstance(v, list) else ["other", v]


def merged_keys(search: dict) -> dict:
    """One key per field: `f|startswith: a`, `f|contains: b`, `f|endswith: c` -> `f: a*b*c`."""
    by_field = collections.defaultdict(list)
    for key, value in search.items():
        name, *mods = str(key).split("|")
        by_field[name].append((mods, value))
    out = {}
    for name, items in by_field.items():
        if len(items) == 1 or not all(
            set(m) <= {"startswith", "contains", "endswith"} and len(m) == 1 for m, _ in items
        ):
            for mods, value in items:
                out["|".join([name, *mods])] = value
            continue
        part = {m[0]: as_list(v)[0] for m, v in items}
        out[name] = "*".join(
            [str(part.get("startswith", "")), str(part.get("contains", "")), str(part.get("endswith", ""))]
        )
    return out


def synth_event(searches, combo, mapping, kind, variant) -> dict:
    """A record meeting the first map of each search in `combo`, in one of the variants."""
    event = {}
    for name in combo:
        for key, value in merged_keys(searches[name][0]).items():
            field_name = str(key).split("|")[0]
            res = mapping.resolve(field_name) if field_name else None
            paths = (res[0].get(kind) if res else None) or []
            if not field_name:
                key, paths, res = "|contains", ["synthKeyword"], ({}, {})
            raw = synth_value(key, value, near=variant == "nearmiss")
            if not paths or raw is _OMIT:
                continue
            table = res[1].get(kind) or {}
            if isinstance(raw, str) and raw.lower() in table:
                raw = table[raw.lower()]
            if variant == "swapcase":
                raw = swapcase(raw)
            elif variant == "list":
                raw = listify(raw)
            elif variant == "numtext":
                raw = numtext(raw)
            elif variant == "booltext":
                raw = booltext(raw)
            put(event, paths[0], raw)
    return event


def synthesize(rules: list[dict], mappings: list[Mapping]) -> list[dict]:
    cases = []
    for r in rules:
        try:
            doc = load_rule_doc(Path(r["path"]), r["loaded"])
        except KeyError:
            continue
        mapping = next((m for m in mappings if m.serves(doc.get("logsource") or {})), None)
        if mapping is None:
            continue
        det = doc.get("detection") or {}
        searches = {}
        for name, v in det.items():
            if name in ("condition", "timeframe"):
                continue
            if isinstance(v, dict):
                searches[name] = [v]
            elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
                searches[name] = v
            elif isinstance(v, list) and v and not any(isinstance(x, (dict, list)) for x in v):
                searches[name] = [{"": v}]  # keywords: written to a leaf of their own
        combos = [[n] for n in searches] + [list(searches)]
        for kind in r["kinds"]:
            for combo in combos:
                plain = None
                for variant in ("plain", "swapcase", "list", "numtext", "booltext", "nearmiss"):
                    event = synth_event(searches, combo, mapping, kind, variant)
                    if variant == "plain":
                        plain = event
                    elif variant in ("numtext", "booltext") and event == plain:
                        continue  # no number / boolean in it
                    if event:
                        cases.append(
                            {
                                "name": f"{r['loaded']} {kind} {'+'.join(combo)} {variant}",
                                "kind": kind,
                                "event": event,
                            }
                        )
    return cases


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rules", required=True, help="rules folder picket loads")
    ap.add_argument("--mappings", default="detections/mappings")
    ap.add_argument("--records", nargs="+", required=True, help="record files or folders")
    ap.add_argument(
        "--picket-output",
        help="JSON lines already written by the sigma_matches example (default: run it)",
    )
    ap.add_argument(
        "--synthesize",
        metavar="FILE",
        help="also build records from the rules' own values, write them to FILE, read them",
    )
    ap.add_argument(
        "--known",
        default=str(Path(__file__).with_name("known_differences.yml")),
        help="explained differences (default: known_differences.yml beside this script)",
    )
    ap.add_argument(
        "--scalar-columns",
        action="store_true",
        help="for comparison only: one value per field (the first), plain backend SQL",
    )
    ap.add_argument("--table", help="also write the per-rule table to this file")
    ap.add_argument("--verbose", action="store_true", help="list differing records")
    args = ap.parse_args(argv)

    def run_picket(records):
        cmd = [
            "cargo", "run", "--quiet", "--no-default-features", "--example", "sigma_matches",
            "--", "--mappings", args.mappings, args.rules, *records,
        ]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        return out.stdout.splitlines()

    mappings = load_mappings(Path(args.mappings))
    labels = {}
    if args.synthesize:
        if args.picket_output:
            sys.exit("--synthesize runs picket itself: leave out --picket-output")
        rules = [json.loads(x) for x in run_picket([])]
        cases = synthesize([d for d in rules if "loaded" in d], mappings)
        for i, c in enumerate(cases):
            labels[f"{args.synthesize}#{i}"] = f"synthetic: {c['name']}"
        Path(args.synthesize).write_text(json.dumps({"cases": cases}, indent=1) + "\n")
        args.records.append(args.synthesize)
    if args.picket_output:
        lines = Path(args.picket_output).read_text().splitlines()
    else:
        lines = run_picket(args.records)

    loaded, rejected, kinds_of, picket = [], [], {}, collections.defaultdict(set)
    for line in lines:
        d = json.loads(line)
        if "loaded" in d:
            loaded.append(d)
        elif "rejected" in d:
            rejected.append(d)
        elif "kind" in d:
            kinds_of[d["record"]] = d["kind"]
        elif d.get("match"):
            picket[d["rule"]].add(d["record"])

    records_by_kind = collections.defaultdict(list)
    seen = set()
    for r in args.records:
        for f in walk_files(Path(r)):
            for rid, raw in decode(f):
                kind = kinds_of.get(rid)
                if kind is None:
                    continue
                seen.add(rid)
                records_by_kind[kind].append((rid, record_view(kind, raw)))
    if seen != set(kinds_of):
        missing = sorted(set(kinds_of) - seen)[:5]
        sys.exit(f"record ids differ from picket's listing, e.g. {missing}")

    cache = {}
    known = load_known(Path(args.known))
    outcomes = []
    for r in loaded:
        o = Outcome(r["loaded"], r["path"], picket=picket.get(r["loaded"], set()))
        try:
            doc = load_rule_doc(Path(r["path"]), r["loaded"])
            mapping = next((m for m in mappings if m.serves(doc.get("logsource") or {})), None)
            if mapping is None:
                raise SigmaError("no mapping serves the logsource")
            o.sql = evaluate(doc, r["kinds"], mapping, records_by_kind, cache, args.scalar_columns)
        except (SigmaError, sqlite3.Error, ValueError, KeyError) as e:
            o.reason = f"{type(e).__name__}: {e}".splitlines()[0]
        if not o.reason and o.picket != o.sql:
            diffs = [("picket-only", x) for x in o.picket - o.sql]
            diffs += [("pysigma-only", x) for x in o.sql - o.picket]
            why = [explain(known, o.rule, side, labels.get(x, x)) for side, x in diffs]
            if all(why):
                o.explained = sorted(set(why))
        outcomes.append(o)

    # The independent load figure: every rule file pySigma parses and converts to SQLite.
    parsed = converted = total = 0
    for f in sorted(Path(args.rules).rglob("*.yml")):
        if "mappings" in f.relative_to(args.rules).parts:
            continue
        total += 1
        try:
            coll = SigmaCollection.from_yaml(f.read_text())
            parsed += 1
            sqliteBackend(fulltext_field="kw").convert(coll)
            converted += 1
        except (SigmaError, yaml.YAMLError, ValueError):
            pass

    table = ["| rule | file | picket | pySigma | agreement |", "|---|---|---:|---:|---|"]
    for o in sorted(outcomes, key=lambda o: o.path):
        sql = "-" if o.reason else str(len(o.sql))
        note = f"not comparable: {o.reason}" if o.reason else o.verdict
        if o.explained:
            note += ": " + "; ".join(o.explained)
        table.append(f"| {o.rule} | {o.path} | {len(o.picket)} | {sql} | {note} |")
    text = "\n".join(table)
    print(text)
    if args.verbose:
        for o in outcomes:
            if o.verdict.startswith("disagree"):
                print(f"\n{o.rule} ({o.path}): {o.verdict}")
                for rid in sorted(o.picket - o.sql):
                    print(f"  picket only: {labels.get(rid, rid)}")
                for rid in sorted(o.sql - o.picket):
                    print(f"  pySigma only: {labels.get(rid, rid)}")
    count = collections.Counter(o.verdict.split(" ")[0] for o in outcomes)
    explained = sum(1 for o in outcomes if o.explained)
    reasons = collections.Counter(o.reason for o in outcomes if o.reason)
    why = "; ".join(f"{n} x {r}" for r, n in reasons.most_common()) or "none"
    matched = sum(1 for o in outcomes if o.picket or o.sql)
    summary = [
        f"rules: {len(loaded)} loaded, {len(rejected)} rejected; "
        f"records: {len(seen)}; rules matching at least one record: {matched}",
        f"pySigma: {parsed} of {total} rule files parse, {converted} convert to SQLite",
        f"agree: {count['agree']} rules, disagree: {count['disagree']} rules, "
        f"not comparable: {count['not']} rules ({why})",
        f"explained disagreements: {explained} of {count['disagree']} "
        f"(known_differences.yml, README.md)",
    ]
    print("\n" + "\n".join(summary))
    if args.table:
        Path(args.table).write_text(text + "\n\n```\n" + "\n".join(summary) + "\n```\n")
    return 1 if count["disagree"] > explained else 0


if __name__ == "__main__":
    sys.exit(main())
