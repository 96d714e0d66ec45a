//! Media types as web actions need them: parsed from a `Content-Type`, classified as binary
//! or text the way OpenWhisk's HTTP layer (Pekko) classifies them, and rendered with the
//! charset Pekko adds to text types.

/// A parsed `type/subtype; params` value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MediaType {
    main: String,
    sub: String,
    /// The parameters as written, without the leading `;`.
    params: Vec<(String, String)>,
}

impl MediaType {
    /// Parses a media type; `None` when it is not `type/subtype` with token characters.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split(';');
        let essence = parts.next()?.trim();
        let (main, sub) = essence.split_once('/')?;
        let token = |t: &str| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+*".contains(&b))
        };
        if !token(main) || !token(sub) {
            return None;
        }
        let mut params = Vec::new();
        for p in parts {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            let (k, v) = p.split_once('=')?;
            params.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
        Some(Self {
            main: main.to_ascii_lowercase(),
            sub: sub.to_ascii_lowercase(),
            params,
        })
    }

    /// `type/subtype`, lowercase.
    pub(crate) fn essence(&self) -> String {
        format!("{}/{}", self.main, self.sub)
    }

    fn has_charset(&self) -> bool {
        self.params.iter().any(|(k, _)| k == "charset")
    }

    /// The `Content-Type` to send for a text body: text types without a charset get
    /// `charset=UTF-8`, as Pekko adds it; JSON keeps its fixed charset implicit.
    pub(crate) fn render_text(&self) -> String {
        let mut s = self.essence();
        for (k, v) in &self.params {
            s.push_str(&format!("; {k}={v}"));
        }
        if !self.has_charset() && !is_json_family(self) {
            s.push_str("; charset=UTF-8");
        }
        s
    }

    /// The `Content-Type` to send for a binary body: as parsed.
    pub(crate) fn render(&self) -> String {
        let mut s = self.essence();
        for (k, v) in &self.params {
            s.push_str(&format!("; {k}={v}"));
        }
        s
    }
}

/// `application/json` or any `+json` type.
pub(crate) fn is_json_family(mt: &MediaType) -> bool {
    (mt.main == "application" && mt.sub == "json") || mt.sub.ends_with("+json")
}

/// True for binary media types, whose bodies travel base64-encoded: everything except text
/// types, the JSON and XML families, JavaScript, forms, SVG, and any type declaring a charset.
pub(crate) fn is_binary(mt: &MediaType) -> bool {
    if mt.main == "text" || mt.has_charset() || is_json_family(mt) {
        return false;
    }
    let textual = [
        "xml",
        "javascript",
        "x-javascript",
        "ecmascript",
        "x-www-form-urlencoded",
        "graphql",
    ];
    let is_textual =
        textual.contains(&mt.sub.as_str()) || mt.sub.ends_with("+xml") || mt.sub == "svg+xml";
    !is_textual
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mt(s: &str) -> MediaType {
        MediaType::parse(s).unwrap()
    }

    #[test]
    fn images_and_octet_streams_are_binary_and_text_like_types_are_not() {
        for b in ["image/png", "application/octet-stream", "application/pdf"] {
            assert!(is_binary(&mt(b)), "{b}");
        }
        for t in [
            "text/plain",
            "application/json",
            "application/ld+json",
            "application/xml",
            "image/svg+xml",
            "application/javascript",
            "application/x-custom; charset=utf-8",
        ] {
            assert!(!is_binary(&mt(t)), "{t}");
        }
    }

    #[test]
    fn text_types_get_a_utf8_charset_unless_they_declare_one() {
        assert_eq!(mt("text/html").render_text(), "text/html; charset=UTF-8");
        assert_eq!(
            mt("Text/Plain; charset=iso-8859-1").render_text(),
            "text/plain; charset=iso-8859-1"
        );
        assert_eq!(mt("application/json").render_text(), "application/json");
        assert_eq!(mt("image/png").render(), "image/png");
    }

    #[test]
    fn malformed_media_types_do_not_parse() {
        for bad in ["", "text", "text/", "/html", "te xt/html", "text/html; x"] {
            assert!(MediaType::parse(bad).is_none(), "{bad}");
        }
    }
}
