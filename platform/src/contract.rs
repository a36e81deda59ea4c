//! The settings contract, derived from [`Settings`] itself: every `CITAFLOW__SECTION__KEY`
//! name with its type, default and description (from the type's JSON schema), and a check of
//! a set of environment variables that parses them with the services' own loader. The launcher,
//! the tests and the chart's check (`citaflow settings …`) all read it, so a setting added,
//! renamed or retyped in `settings.rs` is seen everywhere on the next build.

use std::{collections::BTreeMap, path::Path};

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

use crate::settings::{ENV_PREFIX, RawEnv, Settings};

/// One setting as an environment variable.
#[derive(Debug, Clone, Serialize)]
pub struct Setting {
    /// `CITAFLOW__SECTION__KEY`.
    pub name: String,
    /// What the value must be, in words: `text`, `integer 0..=65535`, `one of json, pretty`,
    /// `list of integer`.
    pub kind: String,
    /// May be left unset (no value at all).
    pub optional: bool,
    /// Never printed; `default` shows `<secret>`.
    pub secret: bool,
    /// The built-in value, as the services would use it (`null` when unset).
    pub default: Value,
    pub description: Option<String>,
}

/// Every setting of every service, sorted by name.
pub fn settings() -> Vec<Setting> {
    let schema = serde_json::to_value(schemars::schema_for!(Settings)).expect("schema");
    let defaults = serde_json::to_value(Settings::default()).expect("defaults");
    let defs = schema.get("$defs").cloned().unwrap_or(Value::Null);
    let mut out = Vec::new();
    let sections = schema["properties"]
        .as_object()
        .expect("Settings is a struct");
    for (section, section_schema) in sections {
        let section_schema = resolve(section_schema, &defs);
        let fields = section_schema["properties"]
            .as_object()
            .expect("sections are structs");
        for (field, field_schema) in fields {
            let (kind, optional) = describe(field_schema, &defs);
            out.push(Setting {
                name: format!(
                    "{ENV_PREFIX}{}__{}",
                    section.to_uppercase(),
                    field.to_uppercase()
                ),
                kind,
                optional,
                secret: field_schema.get("x-secret") == Some(&Value::Bool(true)),
                default: defaults[section][field].clone(),
                description: field_schema
                    .get("description")
                    .and_then(Value::as_str)
                    .map(|d| d.split_whitespace().collect::<Vec<_>>().join(" ")),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn resolve<'a>(schema: &'a Value, defs: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => &defs[r.trim_start_matches("#/$defs/")],
        None => schema,
    }
}

/// The value kind in words, and whether `null` (unset) is allowed.
fn describe(schema: &Value, defs: &Value) -> (String, bool) {
    // `Option<T>` is `anyOf: [T, null]` for references, `type: [t, "null"]` for primitives.
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        let inner: Vec<_> = any
            .iter()
            .filter(|s| s.get("type") != Some(&Value::from("null")))
            .collect();
        let optional = inner.len() < any.len();
        if let [one] = inner.as_slice() {
            return (describe(one, defs).0, optional);
        }
    }
    let schema = resolve(schema, defs);
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let names: Vec<_> = values.iter().filter_map(Value::as_str).collect();
        return (format!("one of {}", names.join(", ")), false);
    }
    if let Some(variants) = schema.get("oneOf").and_then(Value::as_array) {
        let names: Vec<_> = variants
            .iter()
            .filter_map(|v| v.get("const").and_then(Value::as_str))
            .collect();
        return (format!("one of {}", names.join(", ")), false);
    }
    let (ty, optional) = match schema.get("type") {
        Some(Value::Array(types)) => (
            types
                .iter()
                .filter_map(Value::as_str)
                .find(|t| *t != "null")
                .unwrap_or("any"),
            types.iter().any(|t| t == "null"),
        ),
        Some(Value::String(t)) => (t.as_str(), false),
        _ => ("any", false),
    };
    let kind = match ty {
        "string" => "text".to_owned(),
        "integer" => match (
            schema.get("minimum").and_then(Value::as_i64),
            schema.get("maximum").and_then(Value::as_u64),
        ) {
            (Some(lo), Some(hi)) => format!("integer {lo}..={hi}"),
            (Some(lo), None) => format!("integer ≥ {lo}"),
            _ => "integer".to_owned(),
        },
        "array" => format!(
            "list of {}",
            describe(schema.get("items").unwrap_or(&Value::Null), defs).0
        ),
        other => other.to_owned(),
    };
    (kind, optional)
}

/// The settings a service binary cannot start without beyond the defaults (the defaults name
/// a local stack): `serving` is its long-running mode, the others (`migrate`, `create-admin`)
/// need only the database.
pub fn required(binary: &str, serving: bool) -> &'static [&'static str] {
    const DATABASE: &str = "CITAFLOW__DATABASE__URL";
    match (binary.rsplit('/').next().unwrap_or(binary), serving) {
        ("ingest-api", true) => &[DATABASE, "CITAFLOW__AUTH__JWT_SECRET"],
        ("notifier", true) => &[DATABASE, "CITAFLOW__NOTIFIER__CHANNEL"],
        ("ingest-api" | "booking-processor" | "notifier", _) => &[DATABASE],
        _ => &[],
    }
}

/// What is wrong with a set of `CITAFLOW__…` variables: names that are no setting (with the
/// section's valid names as a hint), values the services' loader refuses (each checked on its
/// own, so every bad one is named), and cross-field rules of the whole set. `None` values (a
/// secret from a Secret object, unknown here) are checked by name only.
pub fn check_env<'a>(vars: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> Vec<String> {
    let known = settings();
    let mut problems = Vec::new();
    let mut given = Vec::new();
    for (name, value) in vars {
        if !name.starts_with(ENV_PREFIX) {
            continue;
        }
        let Some(setting) = known.iter().find(|s| s.name == name) else {
            let section = name.split("__").nth(1).unwrap_or_default();
            let siblings: Vec<_> = known
                .iter()
                .filter(|s| s.name.split("__").nth(1) == Some(section))
                .map(|s| {
                    s.name
                        .rsplit("__")
                        .next()
                        .unwrap_or_default()
                        .to_lowercase()
                })
                .collect();
            let hint = if siblings.is_empty() {
                String::new()
            } else {
                format!(" (settings of that section: {})", siblings.join(", "))
            };
            problems.push(format!("{name} is not a setting{hint}"));
            continue;
        };
        let Some(value) = value else { continue };
        let one = RawEnv::from_vars([(name.to_owned(), value.to_owned())]);
        if let Err(err) = Settings::load_from(None, one) {
            let shown = if setting.secret { "<secret>" } else { value };
            problems.push(format!(
                "{name}={shown}: expected {}: {}",
                setting.kind,
                root_cause(&err)
            ));
            continue;
        }
        given.push((name.to_owned(), value.to_owned()));
    }
    if problems.is_empty()
        && let Err(err) = Settings::load_from(None, RawEnv::from_vars(given))
    {
        problems.push(format!("the settings together: {}", root_cause(&err)));
    }
    problems
}

fn root_cause(err: &anyhow::Error) -> String {
    err.chain()
        .last()
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// The variables of an env file as the launcher writes it (`export NAME=value`, values bare
/// or in single or double quotes, `#` comments), in order.
pub fn read_env_file(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(parse_env(&text))
}

/// See [`read_env_file`].
pub fn parse_env(text: &str) -> Vec<(String, String)> {
    let mut vars = BTreeMap::new();
    let mut order = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, raw)) = line.split_once('=') else {
            continue;
        };
        if !vars.contains_key(name) {
            order.push(name.to_owned());
        }
        vars.insert(name.to_owned(), unquote(raw));
    }
    order
        .into_iter()
        .map(|name| {
            let value = vars.remove(&name).unwrap_or_default();
            (name, value)
        })
        .collect()
}

/// Shell quoting as the launcher writes it: `'…'` with `'\''` for a quote inside, `"…"`, or
/// bare.
fn unquote(raw: &str) -> String {
    let raw = raw.trim();
    if let Some(inner) = raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        inner.replace("'\\''", "'")
    } else if let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        inner.replace("\\\"", "\"").replace("\\\\", "\\")
    } else {
        raw.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(name: &str) -> Setting {
        settings()
            .into_iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    }

    #[test]
    fn every_field_of_settings_is_a_named_typed_setting() {
        let all = settings();
        assert!(all.len() > 40, "{} settings", all.len());
        assert_eq!(setting("CITAFLOW__HTTP__PORT").kind, "integer 0..=65535");
        assert_eq!(setting("CITAFLOW__HTTP__PORT").default, 8080);
        assert_eq!(setting("CITAFLOW__LOG__FORMAT").kind, "one of json, pretty");
        assert_eq!(
            setting("CITAFLOW__TOPICS__RETRY_DELAYS_MS").kind,
            "list of integer ≥ 0"
        );
        let url = setting("CITAFLOW__DATABASE__URL");
        assert!(url.secret && url.default == "<secret>", "{url:?}");
        let jwt = setting("CITAFLOW__AUTH__JWT_SECRET");
        assert!(
            jwt.secret && jwt.optional && jwt.default.is_null(),
            "{jwt:?}"
        );
        assert!(setting("CITAFLOW__SMTP__MESSAGE_LOG_URL").optional);
        assert!(
            setting("CITAFLOW__SMTP__MESSAGE_LOG_URL")
                .description
                .unwrap()
                .contains("Message-ID")
        );
    }

    #[test]
    fn unknown_names_and_wrong_types_are_named() {
        let problems = check_env([
            ("CITAFLOW__HTTP__PROT", Some("8080")),
            ("CITAFLOW__HTTP__PORT", Some("eighty")),
            ("CITAFLOW__LOG__FORMAT", Some("xml")),
            ("CITAFLOW__SMS__FROM", Some("+34600000000")),
            ("CITAFLOW__AUTH__JWT_SECRET", None),
            ("OTHER", Some("ignored")),
        ]);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].contains("CITAFLOW__HTTP__PROT is not a setting"));
        assert!(problems[0].contains("port"), "{}", problems[0]);
        assert!(problems[1].starts_with("CITAFLOW__HTTP__PORT=eighty: expected integer"));
        assert!(problems[2].starts_with("CITAFLOW__LOG__FORMAT=xml: expected one of json, pretty"));
    }

    #[test]
    fn cross_field_rules_are_checked_on_the_whole_set() {
        let problems = check_env([("CITAFLOW__TOPICS__RETRY_DELAYS_MS", Some("[10000, 1000]"))]);
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(problems[0].contains("must not decrease"), "{problems:#?}");
    }

    #[test]
    fn env_files_are_read_as_the_shell_reads_them() {
        let vars = parse_env(
            "# comment\nexport A=plain\nexport B='it'\\''s'\nC=\"quoted\"\nexport A=again\n",
        );
        assert_eq!(
            vars,
            vec![
                ("A".into(), "again".into()),
                ("B".into(), "it's".into()),
                ("C".into(), "quoted".into())
            ]
        );
    }
}
