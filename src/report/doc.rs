//! A report as a list of blocks, rendered to Markdown (report.md) or to one self-contained HTML page.

use std::fmt::Write;

/// One block of a report. Texts may hold `code` spans and `\|` (an escaped bar in a table cell).
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Title(String),
    Heading(String),
    Bullets(Vec<String>),
    Table { head: Vec<String>, rows: Vec<Vec<String>> },
    Para(String),
    /// A figure: its PNG file (for Markdown), its SVG text (inlined in HTML), and a caption.
    Figure { png: String, alt: String, svg: String, caption: String },
}

fn md_row(out: &mut String, cols: &[String]) {
    let _ = writeln!(out, "| {} |", cols.join(" | "));
}

/// Markdown: every block followed by a blank line.
pub fn to_markdown(blocks: &[Block]) -> String {
    let mut out = String::new();
    for b in blocks {
        match b {
            Block::Title(t) => {
                let _ = writeln!(out, "# {t}");
            }
            Block::Heading(t) => {
                let _ = writeln!(out, "## {t}");
            }
            Block::Bullets(items) => {
                for i in items {
                    let _ = writeln!(out, "- {i}");
                }
            }
            Block::Table { head, rows } => {
                md_row(&mut out, head);
                let _ = writeln!(out, "|{}|", head.iter().map(|_| " --- ").collect::<Vec<_>>().join("|"));
                for r in rows {
                    md_row(&mut out, r);
                }
            }
            Block::Para(t) => {
                let _ = writeln!(out, "{t}");
            }
            Block::Figure { png, alt, caption, .. } => {
                let _ = writeln!(out, "![{alt}]({png})\n\n{caption}");
            }
        }
        out.push('\n');
    }
    out
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(ch),
        }
    }
    out
}

/// Escapes text for HTML and turns `code` spans into `<code>`.
fn inline(s: &str) -> String {
    let s = s.replace("\\|", "|");
    let mut out = String::new();
    for (i, part) in s.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", escape(part));
        } else {
            out.push_str(&escape(part));
        }
    }
    out
}

/// Whether a table cell reads as a number (right-aligned in HTML).
fn numeric(cell: &str) -> bool {
    cell.chars().next().is_some_and(|c| c.is_ascii_digit() || c == '+' || c == '-' || c == '—')
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;color:#1f2328;background:#fff;margin:0;line-height:1.5}
main{max-width:1100px;margin:0 auto;padding:1.5rem}
h1{font-size:1.6rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #eaeef2;padding-bottom:.2rem}
code{font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:.9em;background:#f6f8fa;padding:.1em .3em;border-radius:4px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:.88rem;margin:.5rem 0}
th,td{border:1px solid #d0d7de;padding:.25rem .5rem;vertical-align:top}
th{background:#f6f8fa;text-align:left}
tr:nth-child(even) td{background:#fbfcfd}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
figure{margin:1rem 0 2rem}
figure svg{max-width:100%;height:auto;border:1px solid #eaeef2}
figcaption{font-size:.9rem;color:#57606a;max-width:900px}";

/// One HTML page holding everything: styles, tables, SVG figures. No external resource.
pub fn to_html(title: &str, blocks: &[Block]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>\n{CSS}\n</style>\n</head>\n<body>\n<main>\n",
        escape(title)
    );
    for b in blocks {
        match b {
            Block::Title(t) => {
                let _ = writeln!(out, "<h1>{}</h1>", inline(t));
            }
            Block::Heading(t) => {
                let _ = writeln!(out, "<h2>{}</h2>", inline(t));
            }
            Block::Bullets(items) => {
                out.push_str("<ul>\n");
                for i in items {
                    let _ = writeln!(out, "<li>{}</li>", inline(i));
                }
                out.push_str("</ul>\n");
            }
            Block::Table { head, rows } => {
                out.push_str("<div class=\"scroll\"><table>\n<thead><tr>");
                for h in head {
                    let _ = write!(out, "<th>{}</th>", inline(h));
                }
                out.push_str("</tr></thead>\n<tbody>\n");
                for r in rows {
                    out.push_str("<tr>");
                    for (i, c) in r.iter().enumerate() {
                        let class = if i > 0 && numeric(c) { " class=\"num\"" } else { "" };
                        let _ = write!(out, "<td{class}>{}</td>", inline(c));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</tbody>\n</table></div>\n");
            }
            Block::Para(t) => {
                let _ = writeln!(out, "<p>{}</p>", inline(t));
            }
            Block::Figure { svg, caption, .. } => {
                let _ = writeln!(out, "<figure>\n{}\n<figcaption>{}</figcaption>\n</figure>", svg.trim(), inline(caption));
            }
        }
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Block> {
        vec![
            Block::Title("r".into()),
            Block::Bullets(vec!["a `x<y`".into(), "b".into()]),
            Block::Table { head: vec!["k".into(), "v (ms)".into()], rows: vec![vec!["m".into(), "1.00".into()], vec!["a\\|b".into(), "—".into()]] },
            Block::Para("end".into()),
        ]
    }

    #[test]
    fn markdown_separates_blocks_with_a_blank_line() {
        let md = to_markdown(&sample());
        assert_eq!(md, "# r\n\n- a `x<y`\n- b\n\n| k | v (ms) |\n| --- | --- |\n| m | 1.00 |\n| a\\|b | — |\n\nend\n\n");
    }

    #[test]
    fn html_escapes_text_and_keeps_code_spans() {
        let html = to_html("t & u", &sample());
        assert!(html.contains("<title>t &amp; u</title>"));
        assert!(html.contains("<li>a <code>x&lt;y</code></li>"));
        assert!(html.contains("<td>a|b</td><td class=\"num\">—</td>"));
        assert!(!html.contains("http"), "no external resource");
    }
}
