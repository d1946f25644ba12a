//! A query string read as `application/x-www-form-urlencoded`, and a
//! client's value as an error repeats it: one reading for every route that
//! takes parameters (`/metrics`, `/actors/top`, `/actors`).

use std::borrow::Cow;

/// One `name=value` pair of a query string.
#[derive(Debug)]
pub struct Pair<'q> {
    /// The name, percent-decoded (lossily: a name that is not UTF-8 names
    /// no parameter).
    pub name: Cow<'q, str>,
    /// The value as sent, for an error to repeat ([`shown`]).
    pub raw: &'q str,
    /// The value decoded: `+` is a space, then `%XX`. Not necessarily
    /// UTF-8: a parameter that names something refuses it rather than read
    /// it lossily and select nothing.
    pub bytes: Vec<u8>,
}

/// The pairs of `query` in order, empty ones skipped; a pair without `=`
/// has an empty value.
pub fn pairs(query: &str) -> impl Iterator<Item = Pair<'_>> {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (name, raw) = pair.split_once('=').unwrap_or((pair, ""));
        Pair {
            name: percent_encoding::percent_decode_str(name).decode_utf8_lossy(),
            raw,
            bytes: percent_encoding::percent_decode_str(&raw.replace('+', " ")).collect(),
        }
    })
}

/// Bytes of a client's value an error message repeats.
const SHOWN: usize = 64;

/// `value` as an error message repeats it: whole up to 64 bytes, else its
/// start (cut at a char boundary) and how long it was, so a huge bad value
/// gets a short answer.
pub fn shown(value: &str) -> Cow<'_, str> {
    if value.len() <= SHOWN {
        return value.into();
    }
    let cut = (0..=SHOWN)
        .rev()
        .find(|&i| value.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}… ({} bytes)", &value[..cut], value.len()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_value_is_shown_cut_at_a_char_boundary_with_its_length() {
        assert_eq!(shown("short"), "short");
        let long = format!("{}é{}", "a".repeat(63), "b".repeat(1000));
        assert_eq!(shown(&long), format!("{}… (1065 bytes)", "a".repeat(63)));
    }

    #[test]
    fn pairs_decode_plus_and_percent_and_keep_what_was_sent() {
        let got: Vec<_> = pairs("a%20b=c+d%2B&&flag&x=%FF")
            .map(|p| (p.name.into_owned(), p.raw, p.bytes))
            .collect();
        assert_eq!(
            got,
            [
                ("a b".to_owned(), "c+d%2B", b"c d+".to_vec()),
                ("flag".to_owned(), "", Vec::new()),
                ("x".to_owned(), "%FF", vec![0xFF]),
            ]
        );
    }
}
