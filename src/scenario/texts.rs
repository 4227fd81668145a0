//! Prose shipped inside xbench, by name (`text: botchan`, the default).

/// Built-in texts: (name, text).
pub const BUILTIN_TEXTS: &[(&str, &str)] = &[("botchan", include_str!("corpus/botchan.txt"))];

/// The built-in text called `name`.
pub fn builtin(name: &str) -> Option<&'static str> {
    BUILTIN_TEXTS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The names of the built-in texts.
pub fn names() -> Vec<&'static str> {
    BUILTIN_TEXTS.iter().map(|(n, _)| *n).collect()
}
