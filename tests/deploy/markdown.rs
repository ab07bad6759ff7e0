//! Just enough Markdown for the runbook checks: the anchors GitHub gives headings, and fenced
//! code blocks by info string. Hand-written (a Markdown parser would be a new dependency for two
//! small functions); headings inside fenced blocks are not headings, and that is handled.

use std::collections::BTreeSet;

/// GitHub's anchor for a heading: lower case; letters, digits, `-` and `_` kept; spaces become
/// `-`; everything else dropped. Link targets (`[text](url)`) count only by their text.
pub fn anchor(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    while let Some(start) = rest.find("](") {
        text.push_str(&rest[..start]);
        rest = rest[start..]
            .find(')')
            .map_or("", |end| &rest[start + end + 1..]);
    }
    text.push_str(rest);
    text.trim()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

fn fence(line: &str) -> Option<(&str, &str)> {
    let t = line.trim_start();
    ["```", "~~~"]
        .into_iter()
        .find(|f| t.starts_with(f))
        .map(|f| (f, t.trim_start_matches(f.chars().next().unwrap()).trim()))
}

/// Every heading anchor in `markdown`, duplicates suffixed `-1`, `-2`, … as GitHub does.
pub fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut open_fence: Option<&str> = None;
    for line in markdown.lines() {
        if let Some((f, _)) = fence(line) {
            match open_fence {
                Some(open) if open == f => open_fence = None,
                None => open_fence = Some(f),
                _ => {}
            }
            continue;
        }
        if open_fence.is_some() {
            continue;
        }
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = anchor(line[hashes..].trim().trim_end_matches('#'));
        let mut candidate = base.clone();
        let mut n = 0;
        while out.contains(&candidate) {
            n += 1;
            candidate = format!("{base}-{n}");
        }
        out.insert(candidate);
    }
    out
}

/// The bodies of fenced code blocks whose info string is `info`.
pub fn code_blocks(markdown: &str, info: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<(&str, bool, String)> = None;
    for line in markdown.lines() {
        match (&mut current, fence(line)) {
            (None, Some((f, lang))) => current = Some((f, lang == info, String::new())),
            (Some((open, keep, body)), Some((f, _))) if *open == f => {
                if *keep {
                    out.push(std::mem::take(body));
                }
                current = None;
            }
            (Some((_, _, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}
