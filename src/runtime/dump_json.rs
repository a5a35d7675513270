//! `gort::dump_json()`: the goroutine dump as JSON, for tools.
//!
//! Written by hand (no serde dependency): the shape is small and fixed.
//!
//! ```text
//! {"goroutines":[
//!   {"id":1,"name":"main","state":"chan receive","waiting_ns":1502000000,
//!    "spawned_at":{"file":"src/main.rs","line":12,"column":5}},
//!   {"id":7,"name":null,"state":"running","waiting_ns":null,"spawned_at":{...}}
//! ]}
//! ```
//!
//! Strings are escaped per RFC 8259: `"` and `\` with a backslash, control characters
//! (below U+0020) as `\n`, `\t`, ... or `\u00XX`; everything else is passed through as UTF-8.

use std::fmt::Write;

use super::dump::{records, Record};

/// The goroutine dump as a JSON document: an object with a `goroutines` array, one object per
/// live goroutine, in id order, each with:
///
/// - `id` (number), `name` (string or null);
/// - `state`: Go's words, as in [`dump`](crate::dump): a wait reason such as
///   `"chan receive"`, `"select"`, `"sleep"`, `"IO wait"`, `"block_on"`, or `"running"`,
///   `"runnable"`, `"syscall"`;
/// - `waiting_ns`: how long it has been parked, in nanoseconds (null when not parked);
/// - `spawned_at`: `{"file", "line", "column"}` of the `go!` / `spawn` / `Builder::spawn`
///   call that created it.
///
/// ```
/// let h = gort::spawn(|| gort::time::sleep(std::time::Duration::from_millis(50)));
/// let json = gort::dump_json();
/// assert!(json.starts_with("{\"goroutines\":["));
/// h.join().unwrap();
/// ```
pub fn dump_json() -> String {
    to_json(&records())
}

fn to_json(records: &[Record]) -> String {
    let mut out = String::from("{\"goroutines\":[");
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{{\"id\":{},\"name\":", r.id);
        match &r.name {
            Some(n) => push_str(&mut out, n),
            None => out.push_str("null"),
        }
        out.push_str(",\"state\":");
        push_str(&mut out, &r.state);
        match r.waited_ns {
            Some(w) => {
                let _ = write!(out, ",\"waiting_ns\":{w}");
            }
            None => out.push_str(",\"waiting_ns\":null"),
        }
        out.push_str(",\"spawned_at\":{\"file\":");
        push_str(&mut out, r.spawned_at.file());
        let _ = write!(
            out,
            ",\"line\":{},\"column\":{}}}}}",
            r.spawned_at.line(),
            r.spawned_at.column()
        );
    }
    out.push_str("]}");
    out
}

/// Appends `s` as a JSON string literal.
pub(crate) fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
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

    fn lit(s: &str) -> String {
        let mut out = String::new();
        push_str(&mut out, s);
        out
    }

    #[test]
    fn escapes() {
        assert_eq!(lit("plain"), r#""plain""#);
        assert_eq!(lit("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(lit("l1\nl2\tt\r"), r#""l1\nl2\tt\r""#);
        assert_eq!(lit("\u{1}\u{1f}\u{7f}"), "\"\\u0001\\u001f\u{7f}\"");
        assert_eq!(lit("héllo ☃"), "\"héllo ☃\"");
    }

    #[test]
    fn record_shape() {
        let site = std::panic::Location::caller();
        let r = Record {
            id: 3,
            name: Some("we\"ird\nname".into()),
            state: "chan receive".into(),
            waited_ns: Some(1500),
            spawned_at: site,
        };
        let unnamed = Record {
            id: 4,
            name: None,
            state: "running".into(),
            waited_ns: None,
            spawned_at: site,
        };
        let j = to_json(&[r, unnamed]);
        let want = format!(
            "{{\"goroutines\":[{{\"id\":3,\"name\":\"we\\\"ird\\nname\",\"state\":\"chan receive\",\
             \"waiting_ns\":1500,\"spawned_at\":{{\"file\":\"{f}\",\"line\":{l},\"column\":{c}}}}},\
             {{\"id\":4,\"name\":null,\"state\":\"running\",\"waiting_ns\":null,\
             \"spawned_at\":{{\"file\":\"{f}\",\"line\":{l},\"column\":{c}}}}}]}}",
            f = site.file(),
            l = site.line(),
            c = site.column()
        );
        assert_eq!(j, want);
        assert_eq!(to_json(&[]), "{\"goroutines\":[]}");
    }
}
