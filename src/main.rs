//! The `tether` binary: `tether` / `tether lsp` serve LSP on stdio, `tether acp`
//! serves the Agent Client Protocol,
//! `tether exec` runs one headless turn, `tether sessions` and `tether rules`
//! inspect the store, `tether doctor` checks the setup, `tether mcp list` shows the MCP servers, `tether check` says what the gate
//! would do with a command.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tether",
    version,
    about = "A coding agent that lives inside the editor (LSP over stdio)"
)]
struct Cli {
    /// Accepted and ignored (VS Code's client appends it).
    #[arg(long, global = true, hide = true)]
    stdio: bool,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum McpCmd {
    /// Start each configured server, list its status and tools, stop it.
    List {
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
        /// Workspace root whose `.tether/config.toml` to include (default: the current directory).
        #[arg(long)]
        root: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the Language Server Protocol on stdin/stdout (the default).
    Lsp,
    /// Serve the Agent Client Protocol (v1) on stdin/stdout (Zed, JetBrains,
    /// codecompanion.nvim, avante.nvim, …).
    Acp,
    /// Run one turn without an editor: reply on stdout, events on stderr.
    Exec {
        /// The prompt.
        prompt: String,
        /// Continue this session.
        #[arg(long)]
        session: Option<String>,
        /// Run what would ask for approval (forbidden commands still never run).
        #[arg(long, conflicts_with = "deny")]
        approve: bool,
        /// Deny what would ask for approval (the default).
        #[arg(long)]
        deny: bool,
        /// Workspace root (default: the current directory).
        #[arg(long)]
        root: Option<std::path::PathBuf>,
    },
    /// List, show, search, delete or export stored sessions.
    Sessions {
        #[command(subcommand)]
        action: tether::exec::SessionsCmd,
    },
    /// List or remove "Always allow" rules.
    Rules {
        #[command(subcommand)]
        action: tether::exec::RulesCmd,
    },
    /// Check the setup: config sources, model endpoint and key, data dir,
    /// and how to hook Tether into the editors on PATH.
    Doctor {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Workspace root whose `.tether/config.toml` to include (default: the current directory).
        #[arg(long)]
        root: Option<std::path::PathBuf>,
    },
    /// MCP tool servers: `tether mcp list` starts the configured servers and
    /// shows their status, tools and last error.
    Mcp {
        #[command(subcommand)]
        action: McpCmd,
    },
    /// Say what the approval gate would do with a command or a file edit
    /// (exit 0 safe, 3 ask, 4 forbidden; see `tether check --help`).
    #[command(
        after_help = "Exit codes: 0 safe, 3 ask, 4 forbidden for one command or edit; \
with --jsonl 0 when every line was judged, 1 when some line was an error; \
1 when stdin cannot be read; 2 usage error.\n\
--jsonl reads {\"command\": \"...\"} or {\"edit\": \"PATH\"} per line and writes \
{\"command\", \"class\", \"reason\"} per line; a bad line gets {\"line\", \"error\"}."
    )]
    Check {
        /// Print the answer as one JSON object.
        #[arg(long)]
        json: bool,
        /// Judge one JSON object per stdin line; write one JSON answer per line.
        #[arg(long)]
        jsonl: bool,
        /// Judge a file write to PATH instead of a command.
        #[arg(long, value_name = "PATH")]
        edit: Option<std::path::PathBuf>,
        /// Workspace root for --edit (default: the current directory).
        #[arg(long)]
        root: Option<std::path::PathBuf>,
        /// The command (words are joined with spaces).
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Internal: lead a command's process group (see tools::supervise).
    #[command(hide = true)]
    Supervise {
        #[arg(long)]
        parent: i32,
        /// Run the command in the OS sandbox (see tether::sandbox).
        #[arg(long)]
        sandbox: bool,
        /// A path the sandboxed command may write beneath (repeated).
        #[arg(long = "sandbox-write")]
        sandbox_write: Vec<std::path::PathBuf>,
        /// Leave the network on in the sandbox.
        #[arg(long = "sandbox-net")]
        sandbox_net: bool,
        #[arg(last = true, required = true)]
        argv: Vec<String>,
    },
}

/// Logs go to stderr only (`TETHER_LOG` filters them); stdout belongs to the
/// protocol, the reply or the listing.
fn init_tracing(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TETHER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Cmd::Supervise {
        parent,
        sandbox,
        sandbox_write,
        sandbox_net,
        argv,
    }) = &cli.command
    {
        let policy = sandbox.then(|| tether::sandbox::Policy {
            writable: sandbox_write.clone(),
            network: *sandbox_net,
        });
        // No runtime, no threads: the supervisor must stay tiny.
        return tether::tools::supervise::run(*parent, policy.as_ref(), argv);
    }
    let command = match cli.command {
        // Pure and synchronous: no runtime needed.
        Some(Cmd::Check {
            json,
            jsonl,
            edit,
            root,
            command,
        }) => {
            return tether::check::run(tether::check::Args {
                json,
                jsonl,
                edit,
                root,
                command,
            })
        }
        other => other,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tether")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return tether::term::CliError::failed(format!("cannot start the async runtime: {e}"))
                .report();
        }
    };
    let command = command.unwrap_or(Cmd::Lsp);
    match &command {
        Cmd::Lsp => init_tracing("info"),
        Cmd::Acp
        | Cmd::Exec { .. }
        | Cmd::Sessions { .. }
        | Cmd::Rules { .. }
        | Cmd::Mcp { .. } => init_tracing("warn"),
        // The report is the output; nothing else is written.
        Cmd::Doctor { .. } | Cmd::Check { .. } | Cmd::Supervise { .. } => {}
    }
    // The commands return their failure; it is printed here, once (a closed
    // stdout, as in `tether rules list | head -1`, is success).
    let result = match command {
        Cmd::Lsp => Ok(runtime.block_on(tether::lsp::serve_stdio())),
        Cmd::Acp => Ok(runtime.block_on(tether::acp::serve_stdio())),
        Cmd::Exec {
            prompt,
            session,
            approve,
            deny: _,
            root,
        } => runtime.block_on(tether::exec::run(prompt, session, approve, root)),
        Cmd::Sessions { action } => runtime.block_on(tether::exec::sessions(action)),
        Cmd::Rules { action } => runtime.block_on(tether::exec::rules(action)),
        Cmd::Doctor { json, root } => runtime.block_on(tether::doctor::run(json, root)),
        Cmd::Mcp {
            action: McpCmd::List { json, root },
        } => runtime.block_on(tether::mcp::list_cli(json, root)),
        Cmd::Supervise { .. } | Cmd::Check { .. } => Ok(ExitCode::SUCCESS),
    };
    let code = result.unwrap_or_else(tether::term::CliError::report);
    // Do not wait for blocking tasks (a stuck read must not hold the exit).
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    code
}
