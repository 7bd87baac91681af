//! Arguments that do not fit a tool's input schema, explained in the terms
//! of the schema: which field, what it takes, what came, and an example.
//!
//! serde's message names a Rust type and often no field ("invalid type:
//! string \"price\", expected struct SortKeyWire"); the schema the client
//! saw says the same things in its own words, so the diagnosis walks the
//! arguments against it.

use serde_json::{Map, Value};

/// The first problem with `args` under `schema`, as one sentence with an
/// example, or `None` when the schema finds nothing wrong (serde's own
/// message is then the best there is).
pub fn diagnose(
    tool: &str,
    schema: &Map<String, Value>,
    args: &Map<String, Value>,
) -> Option<String> {
    let problem = check_object(schema, args, "")?;
    Some(format!(
        "the arguments of {tool} do not match its input schema: {problem}. Fix that field and call again."
    ))
}

/// Natural shorthands, rewritten in place before the arguments are read:
/// one value where the schema wants a list of such values (`"columns":
/// "price"` for `["price"]`, one sort key, one aggregate). Only top-level
/// fields, and only when the single value would be a valid item.
pub fn accept_shorthands(schema: &Map<String, Value>, args: &mut Map<String, Value>) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, value) in args.iter_mut() {
        let Some(field) = properties.get(name).and_then(Value::as_object) else {
            continue;
        };
        if field.get("type").and_then(Value::as_str) != Some("array")
            || value.is_array()
            || value.is_null()
        {
            continue;
        }
        let fits = field
            .get("items")
            .is_some_and(|items| check(items, value, name).is_none());
        if fits {
            *value = Value::Array(vec![value.take()]);
        }
    }
}

/// Other names the server reads for a field (serde aliases), both ways.
const ALIASES: &[(&str, &str)] = &[("table", "table_name"), ("table_name", "table")];

fn present(args: &Map<String, Value>, name: &str) -> bool {
    let given = |n: &str| args.get(n).is_some_and(|v| !v.is_null());
    given(name)
        || ALIASES
            .iter()
            .any(|(field, alias)| *field == name && given(alias))
}

/// Wrong values first, then missing fields, then unknown ones (which the
/// server ignores, so they are only worth naming when nothing else is
/// wrong: a misspelt required field shows up as missing).
fn check_object(
    schema: &Map<String, Value>,
    args: &Map<String, Value>,
    at: &str,
) -> Option<String> {
    let properties = schema.get("properties").and_then(Value::as_object);
    if let Some(properties) = properties {
        for (name, value) in args {
            if let Some(field) = properties.get(name)
                && let Some(problem) = check(field, value, &path(at, name))
            {
                return Some(problem);
            }
        }
    }
    if let Some(Value::Array(required)) = schema.get("required") {
        for name in required.iter().filter_map(Value::as_str) {
            if !present(args, name) {
                let field = properties.and_then(|p| p.get(name));
                return Some(format!(
                    "`{}` is required: {}{}",
                    path(at, name),
                    expected(field),
                    example(field)
                ));
            }
        }
    }
    let properties = properties?;
    for name in args.keys() {
        let known = properties.contains_key(name)
            || ALIASES
                .iter()
                .any(|(field, alias)| alias == name && properties.contains_key(*field));
        if !known {
            let names: Vec<String> = properties.keys().cloned().collect();
            let near = dfmcp_ops::columns::nearest(name, &names);
            return Some(format!(
                "there is no field `{}`{}; the fields are {}",
                path(at, name),
                near.first()
                    .map(|n| format!(" (did you mean `{n}`?)"))
                    .unwrap_or_default(),
                names.join(", ")
            ));
        }
    }
    None
}

/// The first problem with one value, or `None` when it fits.
fn check(schema: &Value, value: &Value, at: &str) -> Option<String> {
    let Value::Object(schema) = schema else {
        return None;
    };
    if value.is_null() {
        // Optional fields read null as absent.
        return None;
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = schema.get(key) {
            if branches.iter().any(|b| check(b, value, at).is_none()) {
                return None;
            }
            let field = Value::Object(schema.clone());
            return Some(format!(
                "`{at}` must be {}, not {}{}",
                expected(Some(&field)),
                shown(value),
                example(Some(&field))
            ));
        }
    }
    if let Some(Value::Array(allowed)) = schema.get("enum")
        && !allowed.contains(value)
    {
        let field = Value::Object(schema.clone());
        return Some(format!(
            "`{at}` must be one of {}, not {}",
            list(allowed),
            shown(value)
        ))
        .map(|s| s + &example(Some(&field)));
    }
    let fits = match schema.get("type").and_then(Value::as_str) {
        Some("string") => value.is_string(),
        Some("integer") => value.as_i64().is_some() || value.as_u64().is_some(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        Some("array") => value.is_array(),
        Some("object") => value.is_object(),
        _ => true,
    };
    let field = Value::Object(schema.clone());
    if !fits {
        return Some(format!(
            "`{at}` must be {}, not {}{}",
            expected(Some(&field)),
            shown(value),
            example(Some(&field))
        ));
    }
    if let Some(Value::Number(min)) = schema.get("minimum")
        && let (Some(min), Some(v)) = (min.as_f64(), value.as_f64())
        && v < min
    {
        return Some(format!("`{at}` must be at least {min}, not {v}"));
    }
    match value {
        Value::Array(items) => {
            let item_schema = schema.get("items")?;
            let problem = items
                .iter()
                .enumerate()
                .find_map(|(i, v)| check(item_schema, v, &format!("{at}[{i}]")))?;
            // Items rarely carry an example; the list often does.
            Some(if problem.contains("(e.g.") {
                problem
            } else {
                problem + &example(Some(&field))
            })
        }
        Value::Object(map) if schema.contains_key("properties") => check_object(schema, map, at),
        Value::Object(map) => {
            // A map of names to values (a rename, casts): check the values.
            let values = schema.get("additionalProperties")?;
            map.iter()
                .find_map(|(k, v)| check(values, v, &format!("{at}.{k}")))
        }
        _ => None,
    }
}

fn path(at: &str, name: &str) -> String {
    if at.is_empty() {
        name.to_string()
    } else {
        format!("{at}.{name}")
    }
}

fn list(values: &[Value]) -> String {
    values
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a schema takes, in words.
fn expected(schema: Option<&Value>) -> String {
    let Some(Value::Object(schema)) = schema else {
        return "a value".into();
    };
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = schema.get(key) {
            let words: Vec<String> = branches.iter().map(|b| expected(Some(b))).collect();
            return words.join(" or ");
        }
    }
    if let Some(Value::Array(allowed)) = schema.get("enum") {
        return format!("one of {}", list(allowed));
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => "a string".into(),
        Some("integer") => "a whole number".into(),
        Some("number") => "a number".into(),
        Some("boolean") => "true or false".into(),
        Some("null") => "null".into(),
        Some("array") => {
            let item = expected(schema.get("items"));
            if item.contains(" or ") || item.contains('{') {
                format!("a list, each item {item}")
            } else {
                format!("a list of {}", plural(&item))
            }
        }
        Some("object") => match schema.get("properties").and_then(Value::as_object) {
            Some(p) => format!(
                "an object {{{}}}",
                p.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
            None => "an object".into(),
        },
        _ => "a value".into(),
    }
}

fn plural(words: &str) -> String {
    let words = words
        .strip_prefix("a ")
        .or_else(|| words.strip_prefix("an "))
        .unwrap_or(words);
    match words {
        "string" => "strings".into(),
        "whole number" => "whole numbers".into(),
        "number" => "numbers".into(),
        other => other.to_string(),
    }
}

/// An example from the field's description ("e.g. …"), or built from the
/// schema.
fn example(schema: Option<&Value>) -> String {
    let Some(Value::Object(schema)) = schema else {
        return String::new();
    };
    if let Some(description) = schema.get("description").and_then(Value::as_str) {
        let lower = description.to_lowercase();
        if let Some(at) = lower.find("e.g.") {
            let text = description[at + 4..].trim().trim_end_matches('.');
            let text = text.split(". ").next().unwrap_or(text);
            return format!(" (e.g. {text})");
        }
    }
    built(schema).map_or(String::new(), |e| format!(" (e.g. {e})"))
}

fn built(schema: &Map<String, Value>) -> Option<String> {
    if let Some(Value::Array(allowed)) = schema.get("enum") {
        return allowed.first().map(Value::to_string);
    }
    match schema.get("type").and_then(Value::as_str)? {
        "string" => Some("\"price\"".into()),
        "integer" => Some("10".into()),
        "number" => Some("1.5".into()),
        "boolean" => Some("true".into()),
        "array" => {
            let item = schema.get("items").and_then(Value::as_object);
            let inner = item.and_then(built).unwrap_or_else(|| "\"price\"".into());
            Some(format!("[{inner}]"))
        }
        "object" => {
            let properties = schema.get("properties").and_then(Value::as_object)?;
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let fields: Vec<String> = properties
                .iter()
                .filter(|(k, _)| required.contains(&k.as_str()))
                .filter_map(|(k, v)| Some(format!("\"{k}\": {}", built(v.as_object()?)?)))
                .collect();
            Some(format!("{{{}}}", fields.join(", ")))
        }
        _ => None,
    }
}

/// A value as the caller sent it, cut short, with its JSON kind.
fn shown(value: &Value) -> String {
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    format!("{kind} {}", dfmcp_ops::values::cut(&value.to_string(), 60))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Map<String, Value> {
        json!({
            "type": "object",
            "required": ["session_id", "table", "by"],
            "properties": {
                "session_id": { "type": "string" },
                "table": { "type": "string" },
                "by": {
                    "description": "E.g. [\"region\", {\"column\": \"date\", \"descending\": true}].",
                    "type": "array",
                    "items": { "anyOf": [
                        { "type": "string" },
                        { "type": "object", "required": ["column"],
                          "properties": { "column": { "type": "string" }, "descending": { "type": "boolean" } } }
                    ] }
                },
                "strategy": { "type": "string", "enum": ["mean", "median"] },
                "limit": { "type": "integer", "minimum": 0 },
                "casts": { "type": "object", "additionalProperties": { "type": "string" } }
            }
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn each_problem_names_the_field_what_it_takes_and_an_example() {
        let base = json!({ "session_id": "s", "table": "t", "by": ["price"] });
        let cases = [
            (
                json!({ "by": "price" }),
                "`by` must be a list, each item a string or an object {column, descending}, not a string \"price\" (e.g. [\"region\"",
            ),
            (
                json!({ "by": [5] }),
                "`by[0]` must be a string or an object {column, descending}, not a number 5",
            ),
            (json!({ "by": [{ "descending": true }] }), "`by[0]` must be"),
            (
                json!({ "strategy": "avg" }),
                "`strategy` must be one of \"mean\", \"median\", not a string \"avg\"",
            ),
            (json!({ "limit": -1 }), "`limit` must be at least 0, not -1"),
            (
                json!({ "limit": "ten" }),
                "`limit` must be a whole number, not a string \"ten\" (e.g. 10)",
            ),
            (
                json!({ "casts": { "price": 3 } }),
                "`casts.price` must be a string, not a number 3",
            ),
            (
                json!({ "stratgy": "mean" }),
                "there is no field `stratgy` (did you mean `strategy`?)",
            ),
        ];
        for (extra, wanted) in cases {
            let mut args = base.as_object().unwrap().clone();
            args.extend(extra.as_object().unwrap().clone());
            let said = diagnose("sort_rows", &schema(), &args).unwrap_or_default();
            assert!(said.contains(wanted), "{extra}: {said}");
        }
        let mut missing = base.as_object().unwrap().clone();
        missing.remove("by");
        let said = diagnose("sort_rows", &schema(), &missing).unwrap();
        assert!(
            said.contains("`by` is required: a list, each item"),
            "{said}"
        );
        assert!(diagnose("sort_rows", &schema(), base.as_object().unwrap()).is_none());
        // An alias the server reads counts as the field.
        let mut aliased = base.as_object().unwrap().clone();
        let table = aliased.remove("table").unwrap();
        aliased.insert("table_name".into(), table);
        assert!(diagnose("sort_rows", &schema(), &aliased).is_none());
    }

    #[test]
    fn one_value_stands_for_a_list_of_one() {
        let cases = [
            (json!({ "by": "price" }), json!({ "by": ["price"] })),
            (
                json!({ "by": { "column": "date", "descending": true } }),
                json!({ "by": [{ "column": "date", "descending": true }] }),
            ),
            // Not a valid item, or not a list field: left for the error.
            (json!({ "by": 7 }), json!({ "by": 7 })),
            (json!({ "limit": 3 }), json!({ "limit": 3 })),
            (json!({ "by": ["a"] }), json!({ "by": ["a"] })),
        ];
        for (given, wanted) in cases {
            let mut args = given.as_object().unwrap().clone();
            accept_shorthands(&schema(), &mut args);
            assert_eq!(Value::Object(args), wanted);
        }
    }
}
