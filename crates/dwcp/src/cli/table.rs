//! Plain-text tables for the client commands: left-aligned columns two
//! spaces apart, no trailing blanks, so that output diffs and greps cleanly.

/// Renders `headers` and `rows` as lines, each ending in a newline.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            line.extend(std::iter::repeat_n(
                ' ',
                width.saturating_sub(cell.chars().count()),
            ));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A cell for an optional number: the number, or `-` when unknown.
pub fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_without_trailing_blanks() {
        let rows = vec![
            vec!["1".to_string(), "a-long-name".to_string(), "x".to_string()],
            vec!["22".to_string(), "b".to_string(), String::new()],
        ];
        assert_eq!(
            render(&["ID", "NAME", "NOTE"], &rows),
            "ID  NAME         NOTE\n1   a-long-name  x\n22  b\n"
        );
        assert_eq!(or_dash(Some(3)), "3");
        assert_eq!(or_dash(None::<u64>), "-");
    }
}
