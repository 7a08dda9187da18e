#!/usr/bin/env python3
"""Writes conformance/phonecom-api.json from the Phone.com events API reference.

Every documented request and response example of the management endpoints, in an order that
creates what the next one names, copied as written; only what names this account's own
resources is a placeholder: ids (`"$profile"`, `"$callback"`, path `{listener}`) and the
callback URL (`"$url"`, which must answer the hub's test POST). Run it against the reference
folder: scripts/conformance-phonecom-api.py ../shared/reference/phonecom-events-api/endpoints
"""
import re, json, sys
root = sys.argv[1]
def blocks(doc):
    text = open(f"{root}/{doc}").read()
    out = {}
    for sec in re.split(r'\n## ', text)[1:]:
        title = sec.split('\n', 1)[0].strip()
        out[title] = [json.loads(b) for b in re.findall(r'```json\n(.*?)```', sec, re.S)]
    return out
cb = blocks("callbacks.md"); ls = blocks("listeners.md"); sb = blocks("listener-subscriptions.md")
fl = blocks("listener-filters.md"); pr = blocks("profiles.md")
ov = json.loads(re.findall(r'```json\n(.*?)```', open(f"{root}/overview.md").read(), re.S)[0])
ex = json.loads(re.findall(r'```json\n(.*?)```', open(f"{root}/express-create.md").read(), re.S)[0])

def sub(v, repl):
    s = json.dumps(v)
    for a, b in repl: s = s.replace(a, b)
    return json.loads(s)

cb_req = sub(cb["Create callback"][0], [('20000', '"$profile"'), ('"https://example.org"', '"$url"')])
ex_req = sub(ex, [('"https://example.org"', '"$url"')])
E = []
def x(doc, section, method, path, request=None, response=None, status=200, save=None, loose=None):
    e = {"document": doc, "section": section, "method": method, "path": path}
    if request is not None: e["request"] = request
    e["status"] = status
    e["response"] = response
    if save: e["save"] = save
    if loose: e["loose"] = loose
    E.append(e)

# Where an example shows a value another example's request does not give, only the field's
# presence is compared (the reason is kept beside it).
OTHER_FILTER = "the example shows an `in` filter; the documented request creates an `eq` one"
EXPRESS = "the express example's callback has no name or profile (both optional, null by default)"
def express_loose(prefix):
    return {f"{prefix}.:callback.{k}": EXPRESS for k in ["name", "profile_id", ":profile"]}
x("profiles.md", "Create profile", "POST", "/profiles", pr["Create profile"][0], pr["Get profile"][0], save="profile")
x("profiles.md", "Get profile", "GET", "/profiles/{profile}", None, pr["Get profile"][0])
x("profiles.md", "Get list of profiles", "GET", "/profiles", None, pr["Get list of profiles"][0])
x("profiles.md", "Update profile", "PATCH", "/profiles/{profile}", pr["Create profile"][0], pr["Get profile"][0])
x("callbacks.md", "Create callback", "POST", "/callbacks", cb_req, cb["Get callback"][0], save="callback")
x("callbacks.md", "Get callback", "GET", "/callbacks/{callback}", None, cb["Get callback"][0])
x("callbacks.md", "Get list of callbacks", "GET", "/callbacks", None, cb["Get list of callbacks"][0])
x("callbacks.md", "Update callback", "PATCH", "/callbacks/{callback}", cb_req, cb["Get callback"][0])
lreq = sub(ls["Create listener"][0], [('1776', '"$callback"')])
x("listeners.md", "Create listener", "POST", "/listeners", lreq, ls["Get listener"][0], save="listener")
x("listeners.md", "Get listener", "GET", "/listeners/{listener}", None, ls["Get listener"][0])
x("listeners.md", "Get list of listeners", "GET", "/listeners", None, ls["Get list of listeners"][0])
x("listeners.md", "Update listener", "PATCH", "/listeners/{listener}", lreq, ls["Get listener"][0])
x("listener-subscriptions.md", "Create subscription", "POST", "/listeners/{listener}/subscriptions", sb["Create subscription"][0], sb["Get subscription"][0], save="subscription")
x("listener-subscriptions.md", "Get subscription", "GET", "/listeners/{listener}/subscriptions/{subscription}", None, sb["Get subscription"][0])
x("listener-subscriptions.md", "Get list of subscriptions", "GET", "/listeners/{listener}/subscriptions", None, sb["Get list of subscriptions"][0])
x("listener-filters.md", "Create filter", "POST", "/listeners/{listener}/filters", fl["Create filter"][0], fl["Get filter"][0], save="filter", loose={".filter_value": OTHER_FILTER})
x("listener-filters.md", "Get filter", "GET", "/listeners/{listener}/filters/{filter}", None, fl["Get filter"][0], loose={".filter_value": OTHER_FILTER})
x("listener-filters.md", "Get list of filters", "GET", "/listeners/{listener}/filters", None, fl["Get list of filters"][0], loose={".items[0].filter_value": OTHER_FILTER})
x("listener-filters.md", "Update filter", "PATCH", "/listeners/{listener}/filters/{filter}", fl["Create filter"][0], fl["Get filter"][0], loose={".filter_value": OTHER_FILTER})
x("express-create.md", "Express create", "POST", "/overview", ex_req, ov["items"][0], save="express", loose=express_loose(""))
x("overview.md", "Overview", "GET", "/overview", None, ov, loose=express_loose(".items[0]"))
x("callbacks.md", "Delete callback", "DELETE", "/callbacks/{callback}", None, cb["Delete callback"][1], status=409)
x("listener-filters.md", "Delete filter", "DELETE", "/listeners/{listener}/filters/{filter}", None, fl["Delete filter"][0])
x("listener-subscriptions.md", "Delete subscription", "DELETE", "/listeners/{listener}/subscriptions/{subscription}", None, sb["Delete subscription"][0])
x("listeners.md", "Delete listener", "DELETE", "/listeners/{listener}", None, ls["Delete listener"][0])
x("callbacks.md", "Delete callback", "DELETE", "/callbacks/{callback}", None, cb["Delete callback"][0])
x("profiles.md", "Delete profile", "DELETE", "/profiles/{profile}", None, pr["Delete profile"][0])
out = {"document": "shared/reference/phonecom-events-api/endpoints/",
       "base": "/v4/accounts/{account}/integrations/events", "exchanges": E}
print(json.dumps(out, indent=2))
