//! Plain-text tables for the terminal: columns padded to their widest cell,
//! the last one left ragged.

/// Renders rows (the first is the header) with two spaces between columns;
/// the columns in `right` are right-aligned.
pub(crate) fn render<const N: usize>(rows: &[[String; N]], right: &[usize]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, &width))| {
                if i + 1 == N {
                    cell.clone()
                } else if right.contains(&i) {
                    format!("{cell:>width$}")
                } else {
                    format!("{cell:<width$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
