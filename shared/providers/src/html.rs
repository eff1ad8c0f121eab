//! HTML to plain text, for ZipMessage's Trix-editor message bodies.
//!
//! Deliberately small: tags are dropped, block-level tags and `<br>` become
//! line breaks, the common entities and numeric references are decoded, and
//! runs of blank space are folded. Script and style contents are dropped.

/// Converts an HTML fragment to readable plain text.
pub fn to_text(html: &str) -> String {
    to_text_counted(html).0
}

/// [`to_text`], and how many input bytes it examined: at most a small
/// constant times the input's length, whatever the input (every scan moves
/// forward; an entity is looked for within [`MAX_ENTITY`] bytes). Tests hold
/// the bound on hostile input; the benchmark reports the time.
pub fn to_text_counted(html: &str) -> (String, usize) {
    let mut out = String::with_capacity(html.len());
    let mut examined = 0;
    let mut rest = html;
    let mut skip_until: Option<&'static str> = None;
    while let Some(lt) = rest.find('<') {
        examined += lt + 1;
        if skip_until.is_none() {
            examined += push_text(&mut out, &rest[..lt]);
        }
        let after = &rest[lt + 1..];
        let Some(gt) = after.find('>') else {
            examined += after.len();
            // An unclosed '<' is text, not a tag.
            if skip_until.is_none() {
                examined += push_text(&mut out, &rest[lt..]);
            }
            rest = "";
            break;
        };
        examined += gt + 1;
        let tag = after[..gt].trim();
        let mut name_buf = [0u8; MAX_NAME];
        let name = tag_name(tag, &mut name_buf);
        let closing = tag.starts_with('/');
        match (skip_until, name, closing) {
            (Some(end), n, true) if n == end => skip_until = None,
            (Some(_), _, _) => {}
            (None, "script", false) => skip_until = Some("script"),
            (None, "style", false) => skip_until = Some("style"),
            (None, n, _) if is_block(n) => out.push('\n'),
            _ => {}
        }
        rest = &after[gt + 1..];
    }
    examined += rest.len();
    if skip_until.is_none() {
        examined += push_text(&mut out, rest);
    }
    (fold_whitespace(&out), examined)
}

/// The longest entity looked for after `&`, `;` included (`&#x10FFFF;`).
const MAX_ENTITY: usize = 10;

/// The longest tag name that matters here (`blockquote`, `figcaption`).
const MAX_NAME: usize = 10;

/// A tag's name in lower case, written into `buf` (no allocation per tag);
/// empty for names longer than any this module acts on.
fn tag_name<'b>(tag: &str, buf: &'b mut [u8; MAX_NAME]) -> &'b str {
    let tag = tag.trim_start_matches('/');
    let len = tag
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(tag.len());
    if len > MAX_NAME {
        return "";
    }
    buf[..len].copy_from_slice(&tag.as_bytes()[..len]);
    buf[..len].make_ascii_lowercase();
    std::str::from_utf8(&buf[..len]).unwrap_or_default()
}

fn is_block(name: &str) -> bool {
    matches!(
        name,
        "br" | "div"
            | "p"
            | "li"
            | "ul"
            | "ol"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "blockquote"
            | "pre"
            | "tr"
            | "figure"
            | "figcaption"
    )
}

/// Appends `text` with its entities decoded; returns the bytes examined.
fn push_text(out: &mut String, text: &str) -> usize {
    let mut examined = 0;
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        examined += amp + 1;
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        // Only the next few bytes can hold the entity's `;`: searching the
        // whole rest at every `&` made a body of `&`s quadratic.
        let window = &after.as_bytes()[..after.len().min(MAX_ENTITY + 1)];
        examined += window.len();
        let entity = window
            .iter()
            .position(|&b| b == b';')
            .and_then(|end| decode_entity(&after[..end]).map(|c| (c, end)));
        match entity {
            Some((c, end)) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    examined + rest.len()
}

fn decode_entity(entity: &str) -> Option<char> {
    match entity {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        _ => {
            let number = entity.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// Folds spaces within lines and collapses blank lines, in one pass (no
/// buffer per line: a body of `<div>`s makes tens of thousands of them).
fn fold_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if let Some(first) = words.next() {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(first);
            for word in words {
                out.push(' ');
                out.push_str(word);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_text;

    #[test]
    fn strips_the_zipmessage_seed_markup() {
        let html = "<div class=\"trix-content\">\n <div class=\"trix-content\">\n <div class=\"trix-content\">\n <div>asdf</div>\n</div>\n</div>\n</div>";
        assert_eq!(to_text(html), "asdf");
    }

    #[test]
    fn keeps_line_structure_and_decodes_entities() {
        assert_eq!(
            to_text(
                "<div>Hello &amp; welcome<br>line&nbsp;two &#x1F600; &#233;</div><p>3 &lt; 4</p>"
            ),
            "Hello & welcome\nline two 😀 é\n3 < 4"
        );
    }

    #[test]
    fn drops_scripts_and_survives_broken_markup() {
        assert_eq!(to_text("a<script>alert(1)</script>b"), "ab");
        assert_eq!(to_text("1 < 2 & 3"), "1 < 2 & 3");
        assert_eq!(to_text("plain text"), "plain text");
        assert_eq!(to_text("&bogus; &#xZZ;"), "&bogus; &#xZZ;");
    }

    #[test]
    fn tag_names_are_read_case_insensitively_and_long_ones_are_plain_tags() {
        assert_eq!(to_text("a<BR/>b<BlockQuote>c</BLOCKQUOTE>d"), "a\nb\nc\nd");
        assert_eq!(to_text("a<SCRIPT type=x>1</Script>b"), "ab");
        assert_eq!(to_text("a<blockquotes>b<figcaptionx/>c"), "abc");
    }
}
