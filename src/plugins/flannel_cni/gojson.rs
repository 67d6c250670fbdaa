//! JSON bytes as Go's `json.Marshal` writes a `map[string]interface{}` decoded from JSON: object
//! keys sorted, compact, every number a float64 (`1.0` → `1`, `1e21` → `1e+21`, integers past
//! 2^53 rounded), and `<`, `>`, `&`, U+2028 and U+2029 escaped. The upstream plugin saves and
//! sends its delegate config in this form; writing the same bytes keeps the saved files
//! interchangeable with it and lets golden files compare bytes, not just meaning.

use serde::Serialize;
use serde_json::ser::Formatter;
use serde_json::{Map, Value};
use std::io::{self, Write};

/// Sorts the keys of every object in `v`, recursively, as Go's map encoding orders them.
pub fn sort_keys(v: &mut Value) {
    match v {
        Value::Object(m) => sort_map(m),
        Value::Array(a) => a.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

/// [`sort_keys`] for an object held as a map.
pub fn sort_map(m: &mut Map<String, Value>) {
    let mut entries: Vec<(String, Value)> = std::mem::take(m).into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (k, mut v) in entries {
        sort_keys(&mut v);
        m.insert(k, v);
    }
}

/// Serialises `v` as it stands (key order as given) with Go's escaping and number format.
pub fn to_vec(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    // A `Value` always serialises; writing into a Vec cannot fail.
    if v.serialize(&mut ser).is_err() {
        return b"null".to_vec();
    }
    out
}

/// [`sort_map`] then [`to_vec`] on a copy of `m`.
pub fn marshal_map(m: &Map<String, Value>) -> Vec<u8> {
    let mut m = m.clone();
    sort_map(&mut m);
    to_vec(&Value::Object(m))
}

/// Go's float64 text in JSON: the shortest round-trip digits, plain between 1e-6 and 1e21,
/// otherwise exponent form with an explicit sign (`1e+21`, `1e-7`).
pub fn format_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        return match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        };
    }
    format!("{f}")
}

struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_i64<W: ?Sized + Write>(&mut self, w: &mut W, v: i64) -> io::Result<()> {
        w.write_all(format_float(v as f64).as_bytes())
    }

    fn write_u64<W: ?Sized + Write>(&mut self, w: &mut W, v: u64) -> io::Result<()> {
        w.write_all(format_float(v as f64).as_bytes())
    }

    fn write_f64<W: ?Sized + Write>(&mut self, w: &mut W, v: f64) -> io::Result<()> {
        w.write_all(format_float(v).as_bytes())
    }

    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, s: &str) -> io::Result<()> {
        // serde_json has already escaped quotes, backslashes and control characters, the same way
        // Go does; what is left is Go's HTML-safe escaping.
        let mut start = 0;
        for (i, c) in s.char_indices() {
            let esc = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            w.write_all(&s.as_bytes()[start..i])?;
            w.write_all(esc.as_bytes())?;
            start = i + c.len_utf8();
        }
        w.write_all(&s.as_bytes()[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_as_go_float64() {
        for (f, want) in [
            (0.0, "0"),
            (1.0, "1"),
            (1472.0, "1472"),
            (-3.0, "-3"),
            (1.5, "1.5"),
            (0.000001, "0.000001"),
            (0.0000001, "1e-7"),
            (1.5e-10, "1.5e-10"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (-1.25e22, "-1.25e+22"),
        ] {
            assert_eq!(format_float(f), want, "{f}");
        }
        let v: Value = serde_json::from_str(r#"[1.0, 9007199254740993, -0.5, 2e0]"#).unwrap();
        assert_eq!(to_vec(&v), b"[1,9007199254740992,-0.5,2]");
    }

    #[test]
    fn escapes_like_go() {
        let v = json!({"k<&>": "a<b>&c\u{2028}\u{2029}\"\\\n\t\u{1}\u{8}\u{c}é"});
        assert_eq!(
            String::from_utf8(to_vec(&v)).unwrap(),
            r#"{"k\u003c\u0026\u003e":"a\u003cb\u003e\u0026c\u2028\u2029\"\\\n\t\u0001\b\fé"}"#
        );
    }

    #[test]
    fn sorts_keys_at_every_level() {
        let m: Map<String, Value> =
            serde_json::from_str(r#"{"b":{"z":1,"a":[{"y":1,"x":2}]},"a":true,"B":null}"#).unwrap();
        assert_eq!(
            String::from_utf8(marshal_map(&m)).unwrap(),
            r#"{"B":null,"a":true,"b":{"a":[{"x":2,"y":1}],"z":1}}"#
        );
    }
}
