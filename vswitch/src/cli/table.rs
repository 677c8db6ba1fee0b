//! Plain-text tables with aligned columns. Widths are display widths (unicode-width): a
//! CJK character takes two columns, a combining accent none, so columns still line up
//! on a terminal whatever labels or names hold. Control characters (a newline or tab in
//! a value would break the row) are shown as `?`.

use unicode_width::UnicodeWidthStr;

/// Renders rows under headers, each column as wide as its widest cell, two spaces apart.
/// A row shorter than the headers leaves its last columns empty; cells beyond the
/// headers are not shown.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect()
    };
    let headers: Vec<String> = headers.iter().map(|h| clean(h)).collect();
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().take(headers.len()).map(|c| clean(c)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.width()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.width());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, w) in widths.iter().enumerate() {
            let c = cells.get(i).map(String::as_str).unwrap_or("");
            s.push_str(c);
            if i + 1 < widths.len() {
                s.push_str(&" ".repeat(w - c.width() + 2));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(&headers);
    out.push('\n');
    for row in &rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use unicode_width::UnicodeWidthStr;

    fn cells(s: &[&str]) -> Vec<String> {
        s.iter().map(|c| c.to_string()).collect()
    }

    /// The display column each line's `n`-th cell starts at.
    fn starts(table: &str, n: usize) -> Vec<usize> {
        table
            .lines()
            .map(|l| {
                let mut col = 0;
                let mut seen = 0;
                let mut prev_space = 0;
                for ch in l.chars() {
                    if ch == ' ' {
                        prev_space += 1;
                    } else {
                        if prev_space >= 2 || (col == 0 && seen == 0) {
                            seen += 1;
                            if seen == n {
                                return col;
                            }
                        }
                        prev_space = 0;
                    }
                    col += ch.to_string().width();
                }
                usize::MAX
            })
            .collect()
    }

    #[test]
    fn columns_line_up() {
        let t = super::render(&["A", "LONG"], &[cells(&["xyz", "1"]), cells(&["q", "22"])]);
        assert_eq!(t, "A    LONG\nxyz  1\nq    22\n");
    }

    #[test]
    fn wide_and_combining_characters_line_up_by_display_width() {
        let t = super::render(
            &["NAME", "SUBNET", "STATE"],
            &[
                cells(&["网络", "10.0.0.0/24", "up"]),
                cells(&["cafe\u{301}", "10.1.0.0/24", "up"]),
                cells(&["plain-name", "10.2.0.0/24", "down"]),
            ],
        );
        for n in [2, 3] {
            let s = starts(&t, n);
            assert!(s.windows(2).all(|w| w[0] == w[1]), "column {n}: {s:?}\n{t}");
        }
        assert_eq!(starts(&t, 2)[0], "plain-name".len() + 2);
    }

    #[test]
    fn control_characters_and_short_rows_do_not_break_rows() {
        let t = super::render(&["A", "B", "C"], &[cells(&["x\ny", "1"]), cells(&["\t"])]);
        assert_eq!(t.lines().count(), 3, "{t}");
        assert_eq!(t, "A    B  C\nx?y  1\n?\n");
    }
}
