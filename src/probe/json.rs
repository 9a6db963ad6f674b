//! Just enough JSON output for reports: flat objects of strings, numbers,
//! booleans and nulls, and arrays of such objects, in about eighty lines.
//!
//! `serde_json` would do it too, and without its `derive` feature it needs
//! no proc macro (see `.cargo/config.toml`); it is not used because it would
//! bring six crates into the normal dependency tree (`serde_json`, `serde`,
//! `serde_core`, `itoa`, `memchr`, `zmij`) for what these lines do, and a
//! crate is added only where it does the job better than our code. The
//! tests parse this output with `serde_json`, so the two agree on it.

use std::fmt::Write;

/// A JSON object being written.
pub(crate) struct Object {
    out: String,
}

impl Object {
    pub(crate) fn new() -> Object {
        Object {
            out: String::from("{"),
        }
    }

    fn key(&mut self, key: &str) -> &mut String {
        if self.out.len() > 1 {
            self.out.push(',');
        }
        escape_into(&mut self.out, key);
        self.out.push(':');
        &mut self.out
    }

    pub(crate) fn str(&mut self, key: &str, value: &str) -> &mut Object {
        let out = self.key(key);
        escape_into(out, value);
        self
    }

    pub(crate) fn opt_str(&mut self, key: &str, value: Option<&str>) -> &mut Object {
        match value {
            Some(v) => self.str(key, v),
            None => self.raw(key, "null"),
        }
    }

    pub(crate) fn num(&mut self, key: &str, value: u64) -> &mut Object {
        let out = self.key(key);
        let _ = write!(out, "{value}");
        self
    }

    pub(crate) fn opt_num(&mut self, key: &str, value: Option<u64>) -> &mut Object {
        match value {
            Some(v) => self.num(key, v),
            None => self.raw(key, "null"),
        }
    }

    pub(crate) fn opt_bool(&mut self, key: &str, value: Option<bool>) -> &mut Object {
        match value {
            Some(true) => self.raw(key, "true"),
            Some(false) => self.raw(key, "false"),
            None => self.raw(key, "null"),
        }
    }

    /// A value that is already JSON (an array or object).
    pub(crate) fn raw(&mut self, key: &str, json: &str) -> &mut Object {
        self.key(key).push_str(json);
        self
    }

    pub(crate) fn finish(&mut self) -> String {
        self.out.push('}');
        std::mem::take(&mut self.out)
    }
}

/// `[a,b,...]` of values that are already JSON.
pub(crate) fn array<I: IntoIterator<Item = String>>(items: I) -> String {
    let mut out = String::from("[");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&item);
    }
    out.push(']');
    out
}

/// Appends `s` as a JSON string literal.
pub(crate) fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings are escaped so that any message yields valid JSON.
    #[test]
    fn escaping() {
        let mut s = String::new();
        escape_into(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001é""#);
    }

    /// Objects and arrays are well formed, nulls included.
    #[test]
    fn objects_and_arrays() {
        let o = Object::new()
            .str("a", "x")
            .num("b", 3)
            .opt_num("c", None)
            .opt_bool("d", Some(true))
            .finish();
        assert_eq!(o, r#"{"a":"x","b":3,"c":null,"d":true}"#);
        assert_eq!(array(vec![o.clone(), o.clone()]), format!("[{o},{o}]"));
        assert_eq!(array(Vec::<String>::new()), "[]");
    }
}
