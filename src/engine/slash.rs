//! Slash commands in prompts: built-ins (`/new`, `/sessions`, `/cancel`,
//! `/compact`, `/help`) and the user's own from config — `prompt` templates with `{args}`
//! and `alias` entries that rewrite to another command, forwarding the
//! arguments. An alias loop is an error, never a hang.

use std::collections::BTreeMap;

use crate::config::CommandDef;

/// What a prompt asks for once slash commands are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// Send this text to the model.
    Prompt(String),
    /// Start a new session (with an optional first prompt).
    New(Option<String>),
    /// List sessions, optionally matching a query.
    Sessions(Option<String>),
    /// Cancel the session's running turn.
    Cancel,
    /// Show the commands.
    Help,
    /// Compact the session's context now.
    Compact,
}

const MAX_ALIAS_DEPTH: usize = 16;

fn split(text: &str) -> Option<(&str, &str)> {
    let rest = text.trim_start().strip_prefix('/')?;
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let (name, args) = rest.split_at(end);
    if name.is_empty() || name.contains('/') {
        // "/" alone, or a path like "/usr/bin": not a command.
        return None;
    }
    Some((name, args.trim()))
}

fn some(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// Resolves `text`. Text that does not start with `/NAME` is a prompt as is.
pub fn resolve(text: &str, commands: &BTreeMap<String, CommandDef>) -> Result<Resolved, String> {
    let mut current = text.to_string();
    let mut seen: Vec<String> = Vec::new();
    loop {
        let Some((name, args)) = split(&current) else {
            return Ok(Resolved::Prompt(current));
        };
        let (name, args) = (name.to_string(), args.to_string());
        match name.as_str() {
            "new" => return Ok(Resolved::New(some(&args))),
            "sessions" => return Ok(Resolved::Sessions(some(&args))),
            "cancel" => return Ok(Resolved::Cancel),
            "help" => return Ok(Resolved::Help),
            "compact" => return Ok(Resolved::Compact),
            _ => {}
        }
        let Some(def) = commands.get(&name) else {
            return Err(format!(
                "unknown command /{name}; /help lists the commands (define your own under [commands.{name}] in config.toml)"
            ));
        };
        if seen.contains(&name) || seen.len() >= MAX_ALIAS_DEPTH {
            seen.push(name);
            return Err(format!(
                "alias loop: {}",
                seen.iter()
                    .map(|s| format!("/{s}"))
                    .collect::<Vec<_>>()
                    .join(" → ")
            ));
        }
        seen.push(name.clone());
        if let Some(alias) = &def.alias {
            let target = if alias.contains("{args}") {
                alias.replace("{args}", &args)
            } else if args.is_empty() {
                alias.clone()
            } else {
                format!("{alias} {args}")
            };
            if !target.trim_start().starts_with('/') {
                return Ok(Resolved::Prompt(target));
            }
            current = target;
            continue;
        }
        if let Some(template) = &def.prompt {
            let prompt = if template.contains("{args}") {
                template.replace("{args}", &args)
            } else if args.is_empty() {
                template.clone()
            } else {
                format!("{template}\n\n{args}")
            };
            return Ok(Resolved::Prompt(prompt));
        }
        return Err(format!(
            "command /{name} has neither `prompt` nor `alias` in config"
        ));
    }
}

/// The `/help` text.
pub fn help(commands: &BTreeMap<String, CommandDef>) -> String {
    let mut s = String::from(
        "Commands:\n\
         /new [prompt]      start a new session\n\
         /sessions [query]  list (or search) sessions\n\
         /cancel            cancel the running turn\n\
         /compact           summarise the conversation so far to free the model's context\n\
         /help              this list\n",
    );
    for (name, def) in commands {
        let what = def.summary();
        s.push_str(&format!("/{name:<17} {what}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmds() -> BTreeMap<String, CommandDef> {
        let mut m = BTreeMap::new();
        m.insert(
            "review".into(),
            CommandDef {
                prompt: Some("Review {args} for bugs.".into()),
                ..Default::default()
            },
        );
        m.insert(
            "r".into(),
            CommandDef {
                alias: Some("/review".into()),
                ..Default::default()
            },
        );
        m.insert(
            "a".into(),
            CommandDef {
                alias: Some("/b {args}".into()),
                ..Default::default()
            },
        );
        m.insert(
            "b".into(),
            CommandDef {
                alias: Some("/a".into()),
                ..Default::default()
            },
        );
        m
    }

    #[test]
    fn resolves_builtins_templates_and_aliases() {
        let c = cmds();
        assert_eq!(resolve("hello", &c), Ok(Resolved::Prompt("hello".into())));
        assert_eq!(
            resolve("/usr/bin/env is odd", &c),
            Ok(Resolved::Prompt("/usr/bin/env is odd".into()))
        );
        assert_eq!(
            resolve("/new fix it", &c),
            Ok(Resolved::New(Some("fix it".into())))
        );
        assert_eq!(resolve("/help", &c), Ok(Resolved::Help));
        assert_eq!(resolve("/compact", &c), Ok(Resolved::Compact));
        assert_eq!(
            resolve("/r src/main.rs", &c),
            Ok(Resolved::Prompt("Review src/main.rs for bugs.".into()))
        );
        let e = resolve("/a x", &c).expect_err("loop");
        assert!(
            e.contains("alias loop") && e.contains("/a → /b → /a"),
            "{e}"
        );
        assert!(resolve("/nope", &c).expect_err("unknown").contains("/help"));
        assert!(help(&c).contains("/review"));
    }
}
