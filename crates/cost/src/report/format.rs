//! Rendering rows of cells as an aligned text table, CSV or a Markdown table, and the number
//! formats the cost commands share.
//!
//! Written here rather than pulled in (comfy-table, csv): the tables are plain ASCII with one
//! header row, CSV needs only RFC 4180 quoting, and both fit in a few lines without a new
//! dependency.

use rust_decimal::{Decimal, RoundingStrategy};

/// How a command prints its result (stdout); progress and errors go to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    Table,
    /// One JSON document; money as exact decimal strings, counts as integers.
    Json,
    /// RFC 4180 CSV with a header row; money as exact decimals.
    Csv,
    /// A GitHub-flavoured Markdown table (what the README's cost table is made of).
    Markdown,
}

/// Column alignment in the text and Markdown tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A header row, data rows and an optional emphasised last row (totals).
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<String>,
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(columns: &[(&str, Align)]) -> Self {
        Table {
            headers: columns.iter().map(|(h, _)| (*h).to_owned()).collect(),
            align: columns.iter().map(|(_, a)| *a).collect(),
            rows: Vec::new(),
        }
    }

    /// `REQUEST ID` → `request_id` (headers for machine formats).
    pub fn snake_case_headers(&mut self) {
        for h in &mut self.headers {
            *h = h.to_lowercase().replace([' ', '-', '/'], "_");
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.headers.len(), "row width = header width");
        self.rows.push(row);
    }

    /// Columns padded to their widest cell, two spaces apart; a rule under the header and one
    /// before the last row when `total_last` (the totals row).
    pub fn aligned(&self, total_last: bool) -> String {
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| r[i].chars().count())
                    .chain([self.headers[i].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            let parts: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| match self.align[i] {
                    Align::Left => format!("{c:<w$}", w = widths[i]),
                    Align::Right => format!("{c:>w$}", w = widths[i]),
                })
                .collect();
            parts.join("  ").trim_end().to_owned()
        };
        let rule = widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  ");
        let mut out = vec![line(&self.headers), rule.clone()];
        for (i, row) in self.rows.iter().enumerate() {
            if total_last && i + 1 == self.rows.len() && i > 0 {
                out.push(rule.clone());
            }
            out.push(line(row));
        }
        out.join("\n") + "\n"
    }

    pub fn csv(&self) -> String {
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let cells: Vec<String> = row.iter().map(|c| csv_field(c)).collect();
            out.push_str(&cells.join(","));
            out.push_str("\r\n");
        }
        out
    }

    pub fn markdown(&self) -> String {
        let esc = |c: &str| c.replace('|', "\\|");
        let mut out = format!(
            "| {} |\n",
            self.headers
                .iter()
                .map(|h| esc(h))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let rule: Vec<&str> = self
            .align
            .iter()
            .map(|a| match a {
                Align::Left => "---",
                Align::Right => "---:",
            })
            .collect();
        out.push_str(&format!("| {} |\n", rule.join(" | ")));
        for row in &self.rows {
            let cells: Vec<String> = row.iter().map(|c| esc(c)).collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        out
    }
}

/// RFC 4180: quote a field holding a comma, quote or line break; double inner quotes.
fn csv_field(cell: &str) -> String {
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_owned()
    }
}

/// `1234567` → `1,234,567`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A decimal rounded (half away from zero) and printed with exactly `dp` decimals.
pub fn fixed(d: Decimal, dp: u32) -> String {
    let r = d.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
    format!("{r:.prec$}", prec = dp as usize)
}

/// The exact form for machine formats: no exponent, no trailing zeros.
pub fn exact(d: Decimal) -> String {
    d.normalize().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn sample() -> Table {
        let mut t = Table::new(&[("NAME", Align::Left), ("USD", Align::Right)]);
        t.push(vec!["a, \"quoted\"".into(), "1.5".into()]);
        t.push(vec!["TOTAL".into(), "12.25".into()]);
        t
    }

    #[test]
    fn aligned_pads_and_rules_the_total() {
        let text = sample().aligned(true);
        assert_eq!(
            text,
            "NAME           USD\n\
             -----------  -----\n\
             a, \"quoted\"    1.5\n\
             -----------  -----\n\
             TOTAL        12.25\n"
        );
    }

    #[test]
    fn csv_quotes_per_rfc_4180() {
        assert_eq!(
            sample().csv(),
            "NAME,USD\r\n\"a, \"\"quoted\"\"\",1.5\r\nTOTAL,12.25\r\n"
        );
    }

    #[test]
    fn markdown_aligns_numbers_right() {
        let md = sample().markdown();
        assert!(md.starts_with("| NAME | USD |\n| --- | ---: |\n"), "{md}");
    }

    #[test]
    fn numbers() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(10_000_000), "10,000,000");
        let d = Decimal::from_str("0.000056").unwrap();
        assert_eq!(fixed(d, 4), "0.0001");
        assert_eq!(fixed(d, 8), "0.00005600");
        assert_eq!(exact(Decimal::from_str("0.5600").unwrap()), "0.56");
    }
}
