//! JSON the way the Go CNI library reads and writes it: keys matched case-insensitively (last
//! match wins, as with Go's encoding/json), output pretty-printed with four spaces and no trailing
//! newline.

use serde::Serialize;
use serde_json::{Map, Value};

/// Serialises like Go's `json.MarshalIndent(v, "", "    ")`.
pub fn to_pretty<T: Serialize>(v: &T) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    // Serialising our own plain data types cannot fail.
    if v.serialize(&mut ser).is_err() {
        return String::from("{}");
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Renames, in place, every key that equals one of `canonical` ignoring ASCII case to its canonical
/// spelling. When several spellings are present the one that appears last wins, as in Go.
pub fn fold_keys(obj: &mut Map<String, Value>, canonical: &[&str]) {
    for want in canonical {
        let variants: Vec<String> = obj
            .keys()
            .filter(|k| k.as_str() != *want && k.eq_ignore_ascii_case(want))
            .cloned()
            .collect();
        if variants.is_empty() {
            continue;
        }
        // Keep the value of whichever spelling came last in the document.
        let mut last: Option<(usize, Value)> = None;
        for (idx, (k, v)) in obj.iter().enumerate() {
            if k.eq_ignore_ascii_case(want) {
                last = Some((idx, v.clone()));
            }
        }
        for k in &variants {
            obj.shift_remove(k);
        }
        if let Some((_, v)) = last {
            obj.insert((*want).to_string(), v);
        }
    }
}

/// The keys of `obj` that match one of `canonical` ignoring ASCII case, copied under their
/// canonical spelling (last spelling wins, as in Go): what a plugin decodes its own keys from,
/// without copying the rest of a config that may be large.
pub fn pick(obj: &Map<String, Value>, canonical: &[&str]) -> Map<String, Value> {
    canonical
        .iter()
        .filter_map(|k| get_ci(obj, k).map(|v| ((*k).to_string(), v.clone())))
        .collect()
}

/// Looks a key up the way Go's decoder would: exact match, else any ASCII-case variant (last one).
pub fn get_ci<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
        .next_back()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_matches_go_indent() {
        let v = serde_json::json!({"a": [1], "b": {"c": "d"}});
        assert_eq!(
            to_pretty(&v),
            "{\n    \"a\": [\n        1\n    ],\n    \"b\": {\n        \"c\": \"d\"\n    }\n}"
        );
    }

    #[test]
    fn folds_case_variants_last_wins() {
        let mut m: Map<String, Value> =
            serde_json::from_str(r#"{"runtimeConfig": 1, "RuntimeConfig": 2, "x": 3}"#).unwrap();
        fold_keys(&mut m, &["runtimeConfig"]);
        assert_eq!(m["runtimeConfig"], 2);
        assert_eq!(m.len(), 2);
        let m: Map<String, Value> = serde_json::from_str(r#"{"RUNTIMECONFIG": 5}"#).unwrap();
        assert_eq!(get_ci(&m, "runtimeConfig").unwrap(), 5);
        let m: Map<String, Value> =
            serde_json::from_str(r#"{"MTU": 1, "mtu": 2, "big": [0], "Vlan": 3}"#).unwrap();
        let picked = pick(&m, &["mtu", "vlan", "bridge"]);
        assert_eq!(
            Value::Object(picked),
            serde_json::json!({"mtu": 2, "vlan": 3})
        );
    }
}
