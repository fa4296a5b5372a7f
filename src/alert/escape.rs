//! Neutralising attacker-controlled strings for each place they are shown. Every string from
//! a log (user agent, app name, user name, any field) passes through one of these before it
//! reaches a terminal, Slack mrkdwn or HTML.

/// The longest field shown anywhere, in characters; longer ones are cut with an ellipsis.
pub const MAX_FIELD_CHARS: usize = 256;

fn is_bidi_or_invisible(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}'   // zero-width, LRM, RLM
        | '\u{202A}'..='\u{202E}' // embeddings and overrides
        | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}' // isolates
        | '\u{FEFF}'
        | '\u{061C}')
}

/// Cuts a string to `max` characters, marking the cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// For terminals: control characters (ANSI escapes, CR, BEL...) and bidi overrides become
/// visible `\u{..}` escapes; long values are truncated.
pub fn terminal(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_FIELD_CHARS * 4));
    for c in s.chars() {
        if c.is_control() || is_bidi_or_invisible(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    truncate(&out, MAX_FIELD_CHARS)
}

/// For HTML text and attribute values.
pub fn html(s: &str) -> String {
    let s = terminal(s);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

/// For Slack mrkdwn: `&`, `<`, `>` escaped (so no `<!channel>`, `<@U..>` or `<url|text>` can be
/// formed), `@` broken with a zero-width-free look-alike so `@here` does not notify, and the
/// formatting characters `*`, `_`, `~`, `` ` `` neutralised with their full-width forms.
pub fn slack(s: &str) -> String {
    let s = terminal(s);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '@' => out.push('＠'),
            '*' => out.push('∗'),
            '_' => out.push('＿'),
            '~' => out.push('∼'),
            '`' => out.push('ˋ'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_controls_and_bidi() {
        assert_eq!(terminal("a\x1b[31mred"), "a\\u{1b}[31mred");
        assert_eq!(terminal("x\u{202E}gpj.exe"), "x\\u{202e}gpj.exe");
        assert_eq!(terminal("line\nbreak"), "line\\u{a}break");
    }

    #[test]
    fn html_escapes_markup() {
        assert_eq!(
            html("<img src=x onerror=alert(1)>"),
            "&lt;img src=x onerror=alert(1)&gt;"
        );
    }

    #[test]
    fn slack_neutralises_mentions_links_and_formatting() {
        let s = slack("<!channel> *x* <https://evil|click> @here");
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('*') && !s.contains('@'));
        assert!(s.contains("&lt;!channel&gt;"));
    }

    #[test]
    fn long_fields_are_truncated() {
        let long = "a".repeat(10_000);
        assert_eq!(terminal(&long).chars().count(), MAX_FIELD_CHARS);
    }
}
