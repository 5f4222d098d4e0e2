# accessgov's model in Rego, data-driven: every policy line is data, indexed so a query touches only
# the lines that can apply (see bench/engines/rego.py for the data layout).
package accessgov

import rego.v1

# -- domains: a line's domain pattern as a path in the data ("*" -> ["*"], "hq/v1/*" -> ["hq", "v1", "*"],
# "hq/v1/d3/" -> ["hq", "v1", "d3", ""]); the paths that can cover input.dom, and the same as strings
parts := split(input.dom, "/")

dom_paths contains array.concat(array.slice(parts, 0, i), ["*"]) if some i in numbers.range(0, count(parts) - 1)

dom_paths contains parts

dom_keys contains concat("/", path) if some path in dom_paths

key_match(k1, k2) if {
	not contains(k2, "*")
	k1 == k2
}

key_match(k1, k2) if {
	i := indexof(k2, "*")
	i >= 0
	count(k1) > i
	substring(k1, 0, i) == substring(k2, 0, i)
}

key_match(k1, k2) if {
	i := indexof(k2, "*")
	i >= 0
	count(k1) <= i
	k1 == substring(k2, 0, i)
}

# -- roles held in input.dom: grants in force whose domain covers it, closed over inheritance there
n := count(input.sub)

my_grants := object.get(data.grants, [substring(input.sub, n - 2, 2), substring(input.sub, n - 4, 2), input.sub], [])

granted contains g.role if {
	some g in my_grants
	g.from <= input.at
	input.at < g.until
	g.dom in dom_keys
}

# inheritance lines whose domain covers input.dom, followed up to 8 hops (the bundle's depth limit)
inherit := [t | some path in dom_paths; t := object.get(data.inherit, path, null); t != null]

step(roles) := roles | {p | some r in roles; some table in inherit; some p in table[r]}

held := step(step(step(step(step(step(step(step(granted))))))))

# -- data scopes
scope_ok(r) if r.scope == "all"

scope_ok(r) if {
	r.scope == "own"
	input.owner != ""
	input.owner == input.sub
}

scope_ok(r) if {
	r.scope == "dept"
	input.home != ""
	input.dom == input.home
}

scope_ok(r) if {
	r.scope == "tree"
	input.home != ""
	startswith(input.dom, input.home)
}

scope_ok(r) if {
	r.scope == "listed"
	some p in r.listed
	key_match(input.dom, p)
}

# -- conditions: a clause is in doubt when its property is missing or of the wrong type
missing := {"__missing__": true}

val(c) := object.get(input.attrs, c.path, missing)

order_ops := {"<", "<=", ">", ">="}

clear(c) if {
	v := val(c)
	v != missing
	c.op in order_ops
	is_number(v)
}

clear(c) if {
	v := val(c)
	v != missing
	not c.op in order_ops
	not is_array(v)
	not is_object(v)
	not is_set(v)
}

compare("==", v, x) if v == x

compare("!=", v, x) if v != x

compare("<", v, x) if v < x

compare("<=", v, x) if v <= x

compare(">", v, x) if v > x

compare(">=", v, x) if v >= x

compare("in", v, xs) if {
	some x in xs
	x == v
}

compare("not_in", v, xs) if {
	every x in xs {
		x != v
	}
}

holds(c) if {
	clear(c)
	compare(c.op, val(c), c.value)
}

cond_true(cs) if {
	every c in cs {
		holds(c)
	}
}

# a deny rule applies when its condition holds, or when a clause is in doubt before any false one
cond_deny(cs) if cond_true(cs)

cond_deny(cs) if {
	some i, c in cs
	not clear(c)
	every d in array.slice(cs, 0, i) {
		holds(d)
	}
}

# -- record decision: some allow line applies and no deny line does
candidates contains r if {
	some path in dom_paths
	bucket := object.get(data.rules, array.concat([input.obj, input.act], path), null)
	bucket != null
	some role in held
	some r in bucket[role]
}

allow_match if {
	some r in candidates
	r.eft == "allow"
	scope_ok(r)
	cond_true(r.cond)
}

deny_match if {
	some r in candidates
	r.eft == "deny"
	scope_ok(r)
	cond_deny(r.cond)
}

record_allowed if {
	allow_match
	not deny_match
}

# -- field level: hidden beats all, then the most open level; unknown fields hidden, plain ones visible
fact := "write" if input.act in data.writes[input.obj]

else := "read"

levels contains r.level if {
	some path in dom_paths
	bucket := object.get(data.frules, array.concat([input.obj, fact, input.field], path), null)
	bucket != null
	some role in held
	some r in bucket[role]
	scope_ok(r)
}

level := "hidden" if "hidden" in levels
else := "visible" if "visible" in levels
else := "masked" if "masked" in levels
else := "hidden"

field_level := "hidden" if not input.field in data.fields[input.obj]
else := "visible" if not input.field in object.get(data.classified, input.obj, [])
else := level

rank := {"hidden": 0, "masked": 1, "visible": 2}

default answer := false

answer if {
	record_allowed
	input.field == ""
}

answer if {
	record_allowed
	input.field != ""
	rank[field_level] >= rank[input.want]
}
