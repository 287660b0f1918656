//! HTML pieces: escaping, the page frame and tables. Every text that comes
//! from the state (names, audit records, trail texts) goes through
//! [`escape`], so a name can never become markup.

use std::fmt::Write;

use super::Page;

/// `text` safe inside HTML text and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A table with `head` columns; each row's cells are HTML already (escape
/// text with [`escape`] first). Says `empty` instead when there are no rows.
pub fn table(head: &[&str], rows: &[Vec<String>], empty: &str) -> String {
    if rows.is_empty() {
        return format!(r#"<p class="empty">{}</p>"#, escape(empty));
    }
    let mut out = String::from("<table><thead><tr>");
    for h in head {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// A stat tile: a label, a value (with `id` on the value so tests and
/// scripts can find it, and the raw number in `data-value`).
pub fn tile(id: &str, label: &str, value: f64, shown: &str, class: &str) -> String {
    format!(
        r#"<div class="tile {class}"><div class="label">{}</div><div class="value" id="{id}" data-value="{value}">{}</div></div>"#,
        escape(label),
        escape(shown)
    )
}

/// A small coloured badge.
pub fn badge(text: &str, class: &str) -> String {
    format!(r#"<span class="badge {class}">{}</span>"#, escape(text))
}

/// A whole page: the frame, the navigation, and `parts` each in a section
/// whose id the live updates replace.
pub fn page(page: Page, who: &str, parts: &[(&'static str, String)]) -> String {
    let mut nav = String::new();
    for p in Page::ALL {
        let current = if p == page {
            r#" aria-current="page""#
        } else {
            ""
        };
        let _ = write!(nav, r#"<a href="{}"{current}>{}</a>"#, p.path(), p.title());
    }
    let mut body = String::new();
    for (id, html) in parts {
        let _ = write!(body, r#"<section id="{id}">{html}</section>"#);
    }
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>DWCP · {title}</title><link rel="stylesheet" href="/assets/dashboard.css"></head>
<body data-page="{name}"><header><a class="brand" href="/">DWCP</a><nav>{nav}</nav>
<span class="who">{who}</span><button id="logout" type="button">Log out</button></header>
<main><div class="heading"><h1>{title}</h1><span id="live" class="live">connecting…</span></div>{body}</main>
<script src="/assets/dashboard.js"></script></body></html>"#,
        title = page.title(),
        name = page.name(),
        who = escape(who),
    )
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn time(unix_ms: u64) -> String {
    let text = crate::slo::rfc3339::format_ms(unix_ms);
    text.get(..19).unwrap_or(&text).replace('T', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn tables_escape_headers_and_say_when_empty() {
        assert!(table(&["a<"], &[], "nothing <here>").contains("nothing &lt;here&gt;"));
        let t = table(&["a<"], &[vec!["1".into()]], "");
        assert!(t.contains("<th>a&lt;</th>") && t.contains("<td>1</td>"));
    }
}
